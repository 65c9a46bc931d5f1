//! Fault matrix of issue #10, the Kubernetes API rows, with the real daemon binary against the
//! Kubernetes API test server, the network to it cut for real, at the TCP level, by a proxy
//! (`support::tcp_proxy`: refuse, drop, or blackhole, where connections are accepted and
//! never answered and open ones go silent).
//!
//! Row A, "the API server unreachable for 2 min": 90 s of blackhole, then 15 s of resets, then
//! 15 s of refused connections, 2 minutes in all, real time, while an HTTP target fails so that
//! a restart rule would fire. Node and workload probes say `Unknown` with a named reason, the
//! replica stops leading within lease duration + renew, no call reaches the API, nothing is
//! journaled; when the API is back, it leads again, the probes recover, and it acts once.
//!
//! Row B, "two replicas, the network to the API flaps": two daemons, each behind its own
//! proxy flapping up and down (1–8 s periods, seeded, replayable with
//! `ASTREINTE_FLAP_SEED`), share the Lease and the journal ConfigMap while a failing target
//! keeps an `http` action wanted (2 s cooldown); then one handover for sure (the leader's
//! network blackholed). No two actions overlap (journal and action target), each was taken
//! by the Lease holder (the server's Lease history), and no journal entry is lost (the
//! server's write log, each replica's `astreinte_remediation_actions_total`, the target).
//!
//! Row C, "a replica started while the API is unreachable": the daemon starts with the
//! connections to the API refused, so its journal (a ConfigMap holding an earlier replica's
//! action) cannot be read; it runs, holds, and reads the journal again with the backoff. The
//! API comes back with one more 503 on the journal: the replica leads, holds
//! `journal_unavailable`, then reads the journal (keeping the earlier action) and acts once.
//!
//! The rows run at once (about 2 min 10 s in all; row C about 20 s).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use astreinte::journal::ActionResult;
use support::action_sink::ActionSink;
use support::http_target::HttpTarget;
use support::journal_audit::{assert_one_at_a_time, settle, stored_journal};
use support::kube_api::{KubeApi, Rollout, objects, write_kubeconfig};
use support::replica::Replica;
use support::tcp_proxy::{Flap, Mode, Rng, TcpProxy, flap_schedule, play};
use support::wait_for;

const NS: &str = "rag-production";
const JOURNAL: &str = "astreinte-journal";

fn addr_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// The `[kubernetes]` section: the API through `proxy`, the journal in a ConfigMap.
fn kube_section(dir: &Path, proxy: &TcpProxy, lease: Duration, renew: Duration) -> String {
    let kubeconfig = dir.join("kubeconfig");
    write_kubeconfig(&kubeconfig, &proxy.url());
    format!(
        "[kubernetes]\nkubeconfig = \"{}\"\njournal_configmap = \"{JOURNAL}\"\n\n\
         [kubernetes.lease]\nduration = \"{}ms\"\nrenew = \"{}ms\"\n\n",
        kubeconfig.display(),
        lease.as_millis(),
        renew.as_millis()
    )
}

mod row_a {
    use super::*;

    const LEASE: Duration = Duration::from_secs(3);
    const RENEW: Duration = Duration::from_millis(500);
    const STALE: Duration = Duration::from_secs(3);
    /// astreinte's bound on a journal call (`journal::KubeStore`), during which the engine
    /// (and so `/status`) may lag.
    const STORE_CALL: Duration = Duration::from_secs(5);

    fn probes(kube: &str, target: &HttpTarget) -> String {
        format!(
            "{kube}[incidents]\ngreen_period = \"2s\"\n\n\
             [[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nstale_after = \"{}s\"\n\n\
             [[probe]]\nid = \"rag-api-workload\"\nkind = \"workload\"\nnamespace = \"{NS}\"\ndeployment = \"rag-api\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
             [[probe]]\nid = \"rag-api-health\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            STALE.as_secs(),
            target.url("/switchable")
        )
    }

    const RULES: &str = r#"
[policy]
mode = "enforce"
allow = ["rag-production/*/*"]

[[rule]]
id = "api-restart"
trigger = { probe = "rag-api-health", min_level = "P2" }
action = { kind = "rollout_restart", namespace = "rag-production", deployment = "rag-api" }
budget = { max = 1, per = "1h" }
verify = { probe = "rag-api-health", within = "10s" }
deadline = "10s"
"#;

    async fn outcome(d: &Replica, probe: &str) -> Option<(String, String)> {
        let s = d.probe_status(probe).await?;
        Some((
            s["outcome"].as_str()?.to_owned(),
            s["reason"].as_str()?.to_owned(),
        ))
    }

    fn restart_patches(api: &KubeApi) -> Vec<support::kube_api::Request> {
        api.requests_to("patch", &format!("/namespaces/{NS}/deployments/rag-api"))
    }

    /// The 2-minute outage, and every invariant checked every 2 s through it.
    async fn outage(d: &Replica, proxy: &TcpProxy, cut_at: Instant) -> Vec<String> {
        let phases = [
            (Mode::Blackhole, Duration::from_secs(90)),
            (Mode::Drop, Duration::from_secs(15)),
            (Mode::Refuse, Duration::from_secs(15)),
        ];
        let mut seen = vec![];
        let mut until = cut_at;
        for (mode, lasts) in phases {
            proxy.set(mode);
            until += lasts;
            while Instant::now() < until {
                let leader = d.sample("astreinte_leader").await;
                assert_eq!(leader, Some(0.0), "{mode:?}: leads without the API");
                for probe in ["nodes", "rag-api-workload"] {
                    let (o, reason) = outcome(d, probe).await.unwrap();
                    assert_eq!(o, "unknown", "{mode:?}: {probe} is {o} {reason}");
                    let line = format!("{mode:?} {probe}: unknown {reason}");
                    if !seen.contains(&line) {
                        seen.push(line);
                    }
                }
                tokio::time::sleep(Duration::from_secs(2).min(until - Instant::now())).await;
            }
        }
        seen
    }

    /// Row A. Real time: 2 minutes of outage (the row's own figure). Every timeout involved
    /// is far shorter (lease 3 s, node staleness 3 s, probe timeouts 0.5 s, journal calls
    /// 5 s, backoffs ≤ 10 s), so the outage outlasts each of them many times over, and each
    /// failure mode (blackhole, reset, refused) lasts longer than all of them together.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn api_unreachable_for_two_minutes() {
        // Fake: request recording (no call reaches the API during the cut, what is written when it is back).
        let api = KubeApi::start().await;
        api.put(objects::node("node-a", true));
        api.put(objects::deployment(NS, "rag-api", 3, 3));
        for i in 0..3 {
            let pod = objects::pod(NS, &format!("rag-api-{i}"), "rag-api", "Running", 0, None);
            api.put(pod);
        }
        api.set_rollout(Rollout::Completes(Duration::from_millis(300)));
        let proxy = TcpProxy::start(addr_of(&api.url)).await;
        let target = HttpTarget::start().await;
        let dir = tempfile::tempdir().unwrap();
        let kube = kube_section(dir.path(), &proxy, LEASE, RENEW);
        let d = Replica::start(
            "astreinte-a",
            &dir.path().join("a"),
            &probes(&kube, &target),
            RULES,
        );

        wait_for(
            "leadership and healthy probes",
            Duration::from_secs(20),
            || async {
                let leads = d.sample("astreinte_leader").await? == 1.0;
                let nodes = outcome(&d, "nodes").await?.0 == "healthy";
                let workload = outcome(&d, "rag-api-workload").await?.0 == "healthy";
                (leads && nodes && workload).then_some(())
            },
        )
        .await;

        // The network goes silent; the replica stops leading within duration + renew.
        let cut = jiff::Timestamp::now();
        let cut_at = Instant::now();
        proxy.set(Mode::Blackhole);
        wait_for("leadership lost", LEASE + RENEW, || async {
            (d.sample("astreinte_leader").await? == 0.0).then_some(())
        })
        .await;
        // Now the service fails: the restart rule would fire if the replica led.
        target.status.store(500, Ordering::SeqCst);
        let bound = STALE + STORE_CALL + Duration::from_secs(3);
        let node = wait_for("node probe unknown", bound, || async {
            outcome(&d, "nodes").await.filter(|(o, _)| o == "unknown")
        })
        .await;
        assert_eq!(node.1, "watch_stale", "{node:?}");
        let workload = wait_for("workload probe unknown", bound, || async {
            outcome(&d, "rag-api-workload")
                .await
                .filter(|(o, _)| o == "unknown")
        })
        .await;
        assert_eq!(workload.1, "api_timeout", "{workload:?}");
        wait_for("the service seen failing", bound, || async {
            outcome(&d, "rag-api-health")
                .await
                .filter(|(o, _)| o == "failed")
        })
        .await;

        let seen = outage(&d, &proxy, cut_at).await;
        let heal = jiff::Timestamp::now();
        proxy.set(Mode::Up);
        eprintln!("outage of {:?}: {seen:#?}", cut_at.elapsed());
        assert!(
            seen.iter()
                .any(|l| l.contains("rag-api-workload: unknown api_unreachable")),
            "refused and reset connections are named: {seen:#?}"
        );
        let hold = "astreinte_remediation_decisions_total{rule=\"api-restart\",decision=\"hold\",reason=\"not_leader\"}";
        assert!(
            d.sample(hold).await.unwrap_or(0.0) >= 1.0,
            "{}",
            d.metrics().await.unwrap()
        );
        // Nothing reached the API while it was cut off (a second of margin for the requests
        // already on the wire), so no actuator call either.
        let reached: Vec<_> = api
            .requests()
            .into_iter()
            .filter(|r| r.at > cut + Duration::from_secs(1) && r.at < heal)
            .map(|r| format!("{} {}", r.verb, r.path))
            .collect();
        assert!(reached.is_empty(), "requests got through: {reached:#?}");
        assert!(restart_patches(&api).is_empty(), "no actuator call");

        // Back: leads again, the probes recover, and the rule acts once (still needed).
        wait_for("leadership back", Duration::from_secs(15), || async {
            (d.sample("astreinte_leader").await? == 1.0).then_some(())
        })
        .await;
        wait_for("probes back", Duration::from_secs(15), || async {
            let nodes = outcome(&d, "nodes").await?.0 == "healthy";
            let workload = outcome(&d, "rag-api-workload").await?.0 == "healthy";
            (nodes && workload).then_some(())
        })
        .await;
        wait_for("the restart", Duration::from_secs(30), || async {
            (!restart_patches(&api).is_empty()).then_some(())
        })
        .await;
        target.status.store(200, Ordering::SeqCst);
        let journal = wait_for(
            "the verified action in the journal",
            Duration::from_secs(30),
            || async {
                let j = stored_journal(&api, JOURNAL)?;
                j.actions
                    .iter()
                    .any(|a| a.verified == Some(true))
                    .then_some(j)
            },
        )
        .await;
        let actions: Vec<_> = journal
            .actions
            .iter()
            .map(|a| {
                (
                    a.rule.as_str(),
                    &a.result,
                    a.by.as_deref(),
                    a.started_at > heal,
                )
            })
            .collect();
        assert_eq!(
            actions,
            [(
                "api-restart",
                &ActionResult::Succeeded,
                Some("astreinte-a"),
                true
            )],
            "one action, after the API came back"
        );
        let patches = restart_patches(&api);
        assert_eq!(patches.len(), 1, "acted once: {patches:#?}");
        assert!(patches[0].at > heal);
    }
}

mod row_b {
    use super::*;

    const LEASE: Duration = Duration::from_secs(4);
    const RENEW: Duration = Duration::from_millis(500);
    const FLAP_FOR: Duration = Duration::from_secs(70);

    fn probes(kube: &str, target: &HttpTarget) -> String {
        format!(
            "{kube}[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            target.url("/switchable")
        )
    }

    fn rules(sink: &ActionSink, who: &str) -> String {
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"act\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\n\
             budget = {{ max = 1000, per = \"1h\" }}\ncooldown = \"2s\"\ndeadline = \"5s\"\n",
            sink.url(who)
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_on_a_flapping_network_never_act_at_once() {
        // Fake: request recording (no call reaches the API during the cut, what is written when it is back).
        let seed = std::env::var("ASTREINTE_FLAP_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| jiff::Timestamp::now().as_nanosecond() as u64);
        let mut rng = Rng::new(seed);
        let flaps: Vec<Vec<Flap>> = (0..2).map(|_| flap_schedule(&mut rng, FLAP_FOR)).collect();
        let replay =
            format!("flap seed {seed} (replay: ASTREINTE_FLAP_SEED={seed}); schedules {flaps:?}");
        eprintln!("{replay}");

        let api = KubeApi::start().await;
        let target = HttpTarget::start().await;
        target.status.store(500, Ordering::SeqCst);
        let sink = ActionSink::start(Duration::from_millis(800)).await;
        let dir = tempfile::tempdir().unwrap();
        let mut proxies = vec![];
        let mut replicas = vec![];
        for who in ["a", "b"] {
            let proxy = TcpProxy::start(addr_of(&api.url)).await;
            let home = dir.path().join(who);
            std::fs::create_dir_all(&home).unwrap();
            let kube = kube_section(&home, &proxy, LEASE, RENEW);
            replicas.push(Replica::start(
                who,
                &home,
                &probes(&kube, &target),
                &rules(&sink, who),
            ));
            proxies.push(proxy);
        }
        wait_for("a first action", Duration::from_secs(30), || async {
            (!sink.calls().is_empty()).then_some(())
        })
        .await;

        tokio::join!(play(&proxies[0], &flaps[0]), play(&proxies[1], &flaps[1]));
        // Random flaps may leave the Lease where it was: one handover for sure, the nasty
        // way (the leader's network goes silent, its last writes land late).
        let leader = wait_for(
            "a leader after the flaps",
            Duration::from_secs(15),
            || async {
                for (i, r) in replicas.iter().enumerate() {
                    if r.sample("astreinte_leader").await == Some(1.0) {
                        return Some(i);
                    }
                }
                None
            },
        )
        .await;
        proxies[leader].set(Mode::Blackhole);
        let other = &replicas[1 - leader];
        wait_for("the other replica to lead", LEASE * 3, || async {
            (other.sample("astreinte_leader").await? == 1.0).then_some(())
        })
        .await;
        proxies[leader].set(Mode::Up);
        // The network is back for good; the service too, so actions stop being wanted.
        target.status.store(200, Ordering::SeqCst);
        let journal = settle(&api, JOURNAL, &sink, &replicas, &replay).await;
        let history = api.lease_history("astreinte", "astreinte-leader");
        let holders: Vec<&str> = history.iter().filter_map(|(_, h)| h.as_deref()).collect();
        let context = format!(
            "{replay}\njournal: {:#?}\nsink: {:#?}\nlease: {history:?}\n--- a ---\n{}\n--- b ---\n{}",
            journal.actions,
            sink.calls(),
            replicas[0].log_tail(30),
            replicas[1].log_tail(30)
        );
        assert!(
            journal.actions.len() >= 5,
            "too few actions to judge: {context}"
        );
        assert!(
            holders.contains(&"a") && holders.contains(&"b"),
            "the Lease never changed hands: {context}"
        );
        assert_one_at_a_time(&api, JOURNAL, &journal, &sink, &history, &context);
        eprintln!(
            "{} actions: a {}, b {}; lease writes {}",
            journal.actions.len(),
            journal
                .actions
                .iter()
                .filter(|a| a.by.as_deref() == Some("a"))
                .count(),
            journal
                .actions
                .iter()
                .filter(|a| a.by.as_deref() == Some("b"))
                .count(),
            history.len()
        );
    }
}

mod row_c {
    use super::*;

    const LEASE: Duration = Duration::from_secs(3);
    const RENEW: Duration = Duration::from_millis(500);

    fn probes(kube: &str, target: &HttpTarget) -> String {
        format!(
            "{kube}[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            target.url("/switchable")
        )
    }

    fn rules(sink: &ActionSink) -> String {
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"act\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\n\
             budget = {{ max = 1, per = \"1h\" }}\ndeadline = \"5s\"\n",
            sink.url("c")
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_started_while_the_api_is_unreachable_reads_its_journal_when_it_is_back() {
        // Fake: request recording (no call reaches the API during the cut, what is written when it is back).
        let api = KubeApi::start().await;
        let earlier = serde_json::json!({
            "schema": 1,
            "actions": [{
                "id": 1, "rule": "older", "action": "http", "target": "x", "key": "k",
                "started_at": "2026-01-01T00:00:00Z", "result": { "state": "succeeded" },
                "by": "astreinte-old"
            }]
        });
        api.put(objects::configmap(
            "astreinte",
            JOURNAL,
            serde_json::json!({ "journal.json": earlier.to_string() }),
        ));
        let proxy = TcpProxy::start(addr_of(&api.url)).await;
        proxy.set(Mode::Refuse);
        let target = HttpTarget::start().await;
        target.status.store(500, Ordering::SeqCst);
        let sink = ActionSink::start(Duration::from_millis(50)).await;
        let dir = tempfile::tempdir().unwrap();
        let kube = kube_section(dir.path(), &proxy, LEASE, RENEW);
        let d = Replica::start(
            "astreinte-c",
            &dir.path().join("c"),
            &probes(&kube, &target),
            &rules(&sink),
        );
        let started = Instant::now();

        // Up without the API: it probes, sees the failure, holds, and says why.
        wait_for(
            "the service seen failing",
            Duration::from_secs(10),
            || async {
                let s = d.probe_status("api").await?;
                (s["outcome"] == "failed").then_some(())
            },
        )
        .await;
        assert!(
            d.log_tail(200)
                .contains("the journal could not be read yet"),
            "{}",
            d.log_tail(50)
        );
        assert_eq!(d.sample("astreinte_leader").await, Some(0.0));
        assert!(sink.calls().is_empty());

        // Back, with one more 503 on the journal: it leads, and holds on the journal.
        api.fail_next("get", "configmaps", JOURNAL, 1, 503);
        proxy.set(Mode::Up);
        let hold = "astreinte_remediation_decisions_total{rule=\"act\",decision=\"hold\",reason=\"journal_unavailable\"}";
        wait_for(
            "the journal_unavailable hold",
            Duration::from_secs(15),
            || async { (d.sample(hold).await? >= 1.0).then_some(()) },
        )
        .await;
        assert!(
            sink.calls().is_empty(),
            "no action before the journal is read"
        );

        // Read: it acts, once, and the earlier replica's action is still there.
        wait_for("the action", Duration::from_secs(20), || async {
            (!sink.calls().is_empty()).then_some(())
        })
        .await;
        let journal = wait_for(
            "the action's end stored",
            Duration::from_secs(10),
            || async {
                let j = stored_journal(&api, JOURNAL)?;
                j.actions
                    .iter()
                    .any(|a| a.rule == "act" && a.result == ActionResult::Succeeded)
                    .then_some(j)
            },
        )
        .await;
        let actions: Vec<_> = journal
            .actions
            .iter()
            .map(|a| (a.id, a.rule.as_str(), a.by.as_deref()))
            .collect();
        assert_eq!(
            actions,
            [
                (1, "older", Some("astreinte-old")),
                (2, "act", Some("astreinte-c"))
            ],
            "read, not overwritten"
        );
        assert!(
            d.log_tail(400)
                .contains("journal read, remediation resumes"),
            "{}",
            d.log_tail(50)
        );
        let budget = "astreinte_remediation_decisions_total{rule=\"act\",decision=\"hold\",reason=\"budget_exhausted\"}";
        wait_for("the budget holds", Duration::from_secs(5), || async {
            (d.sample(budget).await? >= 1.0).then_some(())
        })
        .await;
        assert_eq!(sink.calls().len(), 1, "acted once");
        eprintln!("row C took {:?}", started.elapsed());
    }
}
