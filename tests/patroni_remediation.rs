//! Patroni remediation end to end against a real 3-member Patroni 3.0.2 cluster (ttl 10 s):
//! a real `Engine` with a `Remediator` in `enforce` mode, one cluster for the binary,
//! scenarios in sequence, health restored (and the incident resolved) between them.
//!
//! - the REST calls themselves: wrong password refused as `authentication`, an unknown
//!   candidate refused with Patroni's text, a real failover answered 200;
//! - a leader node crash: Patroni fails over by itself; astreinte holds
//!   (`patroni_handling_it` or `recovered`), never fails over, and the incident resolves;
//! - etcd frozen: holds with `dcs_unavailable`, no failover;
//! - split brain (only the leader's Patroni killed): holds with `split_brain`, the page rule
//!   pages (an `Event::Paged`, P1);
//! - a stuck replica (walreceiver frozen with SIGSTOP, the leader's `wal_sender_timeout`
//!   lowered so the leader drops it from its `replication` list while Patroni still says
//!   `running`): the lagging replica is not a failover candidate, then `patroni_reinitialize`
//!   re-clones it and it streams again (verified by the rule's verify probe).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::engine_driver;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use astreinte::actuators::{ActionError, patroni};
use astreinte::config::{Config, ProbeSpec, RestAuth, SecretRef, load_dir};
use astreinte::engine::Engine;
use astreinte::incident::Event;
use astreinte::journal::{ActionResult, FileStore};
use astreinte::probes::Prober;
use astreinte::testbed::PatroniCluster;
use tokio::sync::mpsc;

const FAILOVER: &str = "pg-failover";
const SPLIT_PAGE: &str = "pg-split-brain";
const REINIT: &str = "pg-reinitialize";

fn write_config(dir: &Path, cluster: &PatroniCluster) -> Arc<Config> {
    let creds = cluster.credentials();
    std::fs::write(dir.join("pg-password"), &creds.superuser.1).unwrap();
    std::fs::write(dir.join("rest-password"), &creds.rest.1).unwrap();
    // Patroni's ttl is 10 s and loop_wait 2 s: it has elected a new leader about 12 s after
    // the old one died; `ttl` here is that plus a margin.
    std::fs::write(
        dir.join("probes.toml"),
        format!(
            r#"[incidents]
green_period = "2s"

[[probe]]
id = "main"
kind = "patroni"
interval = "3s"
timeout = "2s"
ttl = "15s"
members = {members}
sql = {{ user = "postgres", password = {{ file = "{pg}" }} }}
auth = {{ username = "{user}", password = {{ file = "{rest}" }} }}
"#,
            members = cluster.members_toml(),
            pg = dir.join("pg-password").display(),
            rest = dir.join("rest-password").display(),
            user = creds.rest.0,
        ),
    )
    .unwrap();
    // The failover rule also triggers on a leader the DCS still names (`leader_unreachable`),
    // a lost DCS and a split brain, to show that its gates hold there (the shipped rule
    // triggers on `no_leader` only).
    std::fs::write(
        dir.join("remediations.toml"),
        format!(
            r#"[policy]
mode = "enforce"

[[rule]]
id = "{FAILOVER}"
trigger = {{ probe = "main", min_level = "P2", reasons = ["no_leader", "leader_unreachable", "dcs_unreachable", "split_brain"], for = "3s" }}
action = {{ kind = "patroni_failover", probe = "main" }}
budget = {{ max = 1, per = "1h" }}
deadline = "40s"
verify = {{ probe = "main", within = "60s" }}

[[rule]]
id = "{SPLIT_PAGE}"
trigger = {{ probe = "main", min_level = "P1", reasons = ["split_brain"] }}
action = {{ kind = "page", message = "split brain: fence the old primary by hand" }}
budget = {{ max = 5, per = "1h" }}

[[rule]]
id = "{REINIT}"
trigger = {{ probe = "main", min_level = "P3", reasons = ["replica_not_streaming"], for = "2s" }}
action = {{ kind = "patroni_reinitialize", probe = "main" }}
budget = {{ max = 1, per = "1h" }}
deadline = "30s"
verify = {{ probe = "main", within = "90s" }}
"#
        ),
    )
    .unwrap();
    Arc::new(load_dir(dir).unwrap())
}

/// The engine and what it was seen doing, across rounds.
struct Driver {
    engine: Engine<FileStore>,
    events: mpsc::Receiver<Event>,
    prober: Prober,
    seen: Vec<Event>,
    /// Every (rule, decision reason) seen, in order, deduplicated per rule change.
    reasons: Vec<(String, String)>,
    /// The probe's reasons, in order.
    outcomes: Vec<String>,
}

impl Driver {
    /// One round the way `Engine::run` does it.
    async fn round(&mut self) {
        let config = self.engine.config.clone();
        for p in config.enabled_probes() {
            let o = self.prober.observe(&config, p).await;
            if self.outcomes.last() != Some(&o.outcome.reason().to_owned()) {
                self.outcomes.push(o.outcome.reason().to_owned());
            }
            self.engine.handle(&o);
        }
        let now = jiff::Timestamp::now();
        self.engine.tick(now);
        self.engine.remediate(now).await;
        let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
        while let Ok(Some(r)) =
            tokio::time::timeout_at(deadline, self.engine.next_task_result()).await
        {
            self.engine.on_task_result(r, jiff::Timestamp::now());
        }
        self.engine.persist().await;
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
        for d in self.engine.decisions() {
            let pair = (d.rule.clone(), d.decision.reason().to_owned());
            if !self.reasons.contains(&pair) {
                eprintln!("    {}: {}", d.rule, d.line);
                self.reasons.push(pair);
            }
        }
    }

    /// Rounds until `done`, for at most `within`.
    async fn until(&mut self, what: &str, within: Duration, done: impl Fn(&Driver) -> bool) {
        let started = Instant::now();
        loop {
            self.round().await;
            if done(self) {
                eprintln!("  {what} after {:?}", started.elapsed());
                return;
            }
            assert!(
                started.elapsed() < within,
                "not {what} within {within:?}; probe said {:?}; decisions {:?}; actions {:?}",
                self.outcomes,
                self.reasons,
                self.engine.journal.doc.actions
            );
        }
    }

    fn held(&self, rule: &str, reason: &str) -> bool {
        self.reasons.iter().any(|(r, c)| r == rule && c == reason)
    }

    /// Actions of `action` that ran (succeeded, failed, or still running).
    fn ran(&self, action: &str) -> Vec<&astreinte::journal::ActionRecord> {
        self.engine
            .journal
            .doc
            .actions
            .iter()
            .filter(|a| a.action == action)
            .collect()
    }

    /// Restores the cluster, then rounds until no incident is open; starts the next
    /// scenario with a clean slate.
    async fn settle(&mut self, cluster: &PatroniCluster) {
        cluster.wait_healthy(Duration::from_secs(90)).await.unwrap();
        self.until("healthy and resolved", Duration::from_secs(60), |d| {
            d.outcomes.last().map(String::as_str) == Some("ok")
                && d.engine.journal.doc.incidents.open.is_empty()
        })
        .await;
        self.seen.clear();
        self.reasons.clear();
        self.outcomes.clear();
    }
}

fn resolved(seen: &[Event]) -> bool {
    seen.iter().any(|e| matches!(e, Event::Resolved(_)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patroni_remediation_scenarios() {
    support::require("/usr/bin/patroni", "patroni");
    support::require("/usr/bin/etcd", "etcd-server");
    let started = Instant::now();
    let mut cluster = PatroniCluster::start(&["pg1", "pg2", "pg3"]).await.unwrap();
    eprintln!("cluster up after {:?}", started.elapsed());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &cluster);
    let (engine, events) =
        engine_driver::engine(&dir.path().join("journal.json"), config.clone(), None).await;
    let mut d = Driver {
        engine,
        events,
        prober: Prober::new().unwrap(),
        seen: vec![],
        reasons: vec![],
        outcomes: vec![],
    };
    let rest_password = cluster.credentials().rest.1.clone();
    d.settle(&cluster).await;

    eprintln!("REST calls: auth, refusal, a real failover");
    let leader = cluster.wait_healthy(Duration::from_secs(5)).await.unwrap();
    let replica = cluster
        .member_names()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let ProbeSpec::Patroni(spec) = &config.probe("main").unwrap().spec else {
        panic!("not a patroni probe")
    };
    let http = reqwest::Client::new();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password").unwrap();
    let bad_auth = RestAuth {
        username: spec.auth.as_ref().unwrap().username.clone(),
        password: SecretRef {
            env: None,
            file: Some(wrong),
        },
    };
    let url = cluster.member(&replica).unwrap().rest_url();
    let body = format!(r#"{{"candidate":"{replica}"}}"#);
    match patroni::post(&http, &url, "failover", &body, Some(&bad_auth)).await {
        Err(ActionError::Refused(m)) => assert!(m.contains("authentication"), "{m}"),
        other => panic!("{other:?}"),
    }
    match patroni::post(
        &http,
        &url,
        "failover",
        r#"{"candidate":"nobody"}"#,
        spec.auth.as_ref(),
    )
    .await
    {
        Err(ActionError::Refused(m)) => {
            assert!(
                m.contains("412") && m.contains("candidate does not exists"),
                "{m}"
            );
            assert!(!m.contains(&rest_password), "{m}");
        }
        other => panic!("{other:?}"),
    }
    let answer = patroni::post(&http, &url, "failover", &body, spec.auth.as_ref())
        .await
        .unwrap();
    assert!(
        answer.contains(&format!("failed over to \"{replica}\"")),
        "{answer}"
    );
    let now_leader = cluster.wait_healthy(Duration::from_secs(60)).await.unwrap();
    assert_eq!(now_leader, replica);
    d.settle(&cluster).await;

    eprintln!("leader node crash: Patroni fails over by itself");
    let leader = cluster.wait_healthy(Duration::from_secs(5)).await.unwrap();
    cluster.crash(&leader).unwrap();
    d.until(
        "a new leader elected by Patroni",
        Duration::from_secs(45),
        |d| {
            d.outcomes
                .iter()
                .any(|o| o == "no_leader" || o == "leader_unreachable")
                && d.outcomes.last().map(String::as_str) == Some("member_down")
        },
    )
    .await;
    assert!(
        d.held(FAILOVER, "patroni_handling_it") || d.held(FAILOVER, "recovered"),
        "{:?}",
        d.reasons
    );
    assert!(
        d.ran("patroni_failover").is_empty(),
        "{:?}",
        d.ran("patroni_failover")
    );
    cluster.start_member(&leader).unwrap();
    d.settle_checked(&cluster).await;

    eprintln!("etcd frozen: no failover without the DCS");
    cluster.freeze_dcs();
    let frozen = d
        .until_result("a dcs_unavailable hold", Duration::from_secs(40), |d| {
            d.held(FAILOVER, "dcs_unavailable")
        })
        .await;
    cluster.thaw_dcs();
    frozen.unwrap();
    assert!(
        d.ran("patroni_failover").is_empty(),
        "{:?}",
        d.ran("patroni_failover")
    );
    d.settle(&cluster).await;

    eprintln!("split brain: only the leader's Patroni dies");
    let leader = cluster.wait_healthy(Duration::from_secs(5)).await.unwrap();
    cluster.kill_patroni(&leader).unwrap();
    d.until("split brain held and paged", Duration::from_secs(50), |d| {
        d.held(FAILOVER, "split_brain")
            && d.seen.iter().any(
                |e| matches!(e, Event::Paged { text, .. } if text.contains("fence the old primary")),
            )
    })
    .await;
    assert!(
        d.ran("patroni_failover").is_empty(),
        "{:?}",
        d.ran("patroni_failover")
    );
    let page = d.ran("page");
    assert!(
        page.iter().all(|a| a.result == ActionResult::Succeeded),
        "{page:?}"
    );
    cluster.start_member(&leader).unwrap();
    d.settle(&cluster).await;

    eprintln!("stuck replica: frozen walreceiver, dropped by the leader");
    let leader = cluster.wait_healthy(Duration::from_secs(5)).await.unwrap();
    let stuck = cluster
        .member_names()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let client = cluster.connect(&leader).await.unwrap();
    for sql in [
        "ALTER SYSTEM SET wal_sender_timeout = '2s'",
        "SELECT pg_reload_conf()",
    ] {
        client.batch_execute(sql).await.unwrap();
    }
    let walreceiver = cluster.freeze_walreceiver(&stuck).await.unwrap();
    cluster.write_load(&leader, 4_000).await.unwrap();
    // pg_basebackup (the re-clone) asks for a spread checkpoint: with the load's buffers
    // still dirty that takes about a minute; flush them now so that it does not.
    client.batch_execute("CHECKPOINT").await.unwrap();
    // A real view, the leader taken out: the frozen replica lags beyond the limit and is
    // never the candidate. (Right after the write both replicas look behind, until the
    // healthy one publishes its position in the DCS, every loop_wait: wait for that.)
    let other = cluster
        .member_names()
        .into_iter()
        .find(|n| *n != leader && *n != stuck)
        .unwrap();
    let leaderless = support::wait_for(
        "the frozen replica to lag, the other not",
        Duration::from_secs(30),
        || {
            let prober = d.prober.clone();
            let spec = spec.clone();
            let (stuck, leader) = (stuck.clone(), leader.clone());
            async move {
                let mut view = prober
                    .patroni_view("main", &spec, Duration::from_secs(2))
                    .await;
                // As Patroni's own view would be without a leader: nobody to say who streams,
                // so only the lag can rule the frozen replica out.
                view.members.retain(|m| m.name != leader);
                for m in &mut view.members {
                    m.streaming = None;
                }
                let lagging = view.lagging().iter().any(|(m, _)| m.name == stuck);
                (lagging && patroni::gate::failover_target(&view).is_ok()).then_some(view)
            }
        },
    )
    .await;
    let candidate = patroni::gate::failover_target(&leaderless).unwrap();
    assert_eq!(candidate.name, other, "{}", leaderless.summary());
    d.until(
        "reinitialized and verified",
        Duration::from_secs(120),
        |d| {
            d.ran("patroni_reinitialize")
                .iter()
                .any(|a| a.verified == Some(true))
        },
    )
    .await;
    let reinit = d.ran("patroni_reinitialize");
    assert_eq!(reinit.len(), 1, "{reinit:?}");
    eprintln!(
        "  reinitialize started {} ended {:?}",
        reinit[0].started_at, reinit[0].ended_at
    );
    if std::env::var_os("PATRONI_LOG").is_some() {
        let log = std::fs::read_to_string(cluster.member(&stuck).unwrap().log_path()).unwrap();
        let noise = ["Lock owner", "in progress", "no action."];
        log.lines()
            .skip_while(|l| !l.contains("reinitialize"))
            .filter(|l| !noise.iter().any(|n| l.contains(n)))
            .for_each(|l| eprintln!("    | {l}"));
    }
    assert_eq!(reinit[0].result, ActionResult::Succeeded);
    assert!(
        reinit[0]
            .detail
            .contains(&format!("reinitialized member {stuck}")),
        "{}",
        reinit[0].detail
    );
    cluster.thaw_process(walreceiver);
    let client = cluster.connect(&leader).await.unwrap();
    for sql in [
        "ALTER SYSTEM RESET wal_sender_timeout",
        "SELECT pg_reload_conf()",
    ] {
        client.batch_execute(sql).await.unwrap();
    }
    d.settle(&cluster).await;

    let journal = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
    assert!(!journal.contains(&rest_password));
    assert!(!journal.contains(&cluster.credentials().superuser.1));
    drop(cluster);
    eprintln!("done after {:?}", started.elapsed());
}

impl Driver {
    /// Like [`Driver::until`], but returns the failure instead of panicking, so that a fault
    /// can be undone first.
    async fn until_result(
        &mut self,
        what: &str,
        within: Duration,
        done: impl Fn(&Driver) -> bool,
    ) -> Result<(), String> {
        let started = Instant::now();
        loop {
            self.round().await;
            if done(self) {
                eprintln!("  {what} after {:?}", started.elapsed());
                return Ok(());
            }
            if started.elapsed() >= within {
                return Err(format!(
                    "not {what} within {within:?}; probe said {:?}; decisions {:?}",
                    self.outcomes, self.reasons
                ));
            }
        }
    }

    /// [`Driver::settle`], and the incident of the scenario resolved.
    async fn settle_checked(&mut self, cluster: &PatroniCluster) {
        cluster.wait_healthy(Duration::from_secs(90)).await.unwrap();
        self.until("the incident resolved", Duration::from_secs(60), |d| {
            resolved(&d.seen) && d.engine.journal.doc.incidents.open.is_empty()
        })
        .await;
        self.settle(cluster).await;
    }
}
