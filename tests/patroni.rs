//! The `patroni` probe against a real 3-member Patroni 3.0.2 cluster (PostgreSQL 15, etcd):
//! one cluster for the whole binary, scenarios in sequence, health restored between them.
//! Each fault is injected for real (SIGSTOP, SIGKILL, write load) and the probe is polled
//! until it says what it must, within a bound.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use astreinte::config::{Config, ProbeSpec, load_dir};
use astreinte::metrics::GaugeName;
use astreinte::probes::{Observation, Outcome, Prober};
use astreinte::testbed::{PatroniCluster, procfs};

/// The probe under test, built from TOML as an operator would write it.
struct Probe {
    prober: Prober,
    config: Config,
    _dir: tempfile::TempDir,
}

impl Probe {
    /// Members named and with their postgres addresses, and a `sql` login, so that the old
    /// primary of a split brain is seen even after it left the DCS.
    fn new(cluster: &PatroniCluster, extra: &str) -> Probe {
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("pg-password");
        std::fs::write(&password, &cluster.credentials().superuser.1).unwrap();
        let toml = format!(
            "[[probe]]\nid = \"main\"\nkind = \"patroni\"\ninterval = \"10s\"\ntimeout = \"5s\"\n\
             members = {}\nsql = {{ user = \"postgres\", password = {{ file = \"{}\" }} }}\n{extra}\n",
            cluster.members_toml(),
            password.display()
        );
        std::fs::write(dir.path().join("probes.toml"), toml).unwrap();
        std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
        let config = load_dir(dir.path()).unwrap();
        Probe {
            prober: Prober::new().unwrap(),
            config,
            _dir: dir,
        }
    }

    async fn run(&self) -> Observation {
        self.prober
            .observe(&self.config, &self.config.probes[0])
            .await
    }

    /// Polls until the outcome's reason is `reason`; returns that run and every reason seen
    /// on the way. Fails after `within` with the last detail.
    async fn until(&self, reason: &str, within: Duration) -> (Observation, Vec<String>) {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let o = self.run().await;
            seen.push(o.outcome.reason().to_owned());
            if o.outcome.reason() == reason {
                let mut path = seen.clone();
                path.dedup();
                eprintln!("  {reason} after {:?} (seen {path:?})", started.elapsed());
                return (o, seen);
            }
            assert!(
                started.elapsed() < within,
                "no `{reason}` within {within:?}; seen {seen:?}; last: {}",
                o.detail
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn gauge(o: &Observation, gauge: GaugeName, member: Option<&str>) -> Option<f64> {
    o.measurements
        .iter()
        .find(|m| {
            m.gauge == gauge
                && member.is_none_or(|n| m.labels.iter().any(|(k, v)| k == "member" && v == n))
        })
        .map(|m| m.value)
}

async fn restore(cluster: &PatroniCluster, probe: &Probe) -> String {
    let leader = cluster.wait_healthy(Duration::from_secs(60)).await.unwrap();
    probe.until("ok", Duration::from_secs(30)).await;
    leader
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patroni_cluster_scenarios() {
    support::require("/usr/bin/patroni", "patroni");
    support::require("/usr/bin/etcd", "etcd-server");
    let started = Instant::now();
    let mut cluster = PatroniCluster::start(&["pg1", "pg2", "pg3"]).await.unwrap();
    eprintln!("cluster up after {:?}", started.elapsed());
    let probe = Probe::new(&cluster, "");
    let lag_probe = Probe::new(&cluster, "max_lag_bytes = 65536");

    eprintln!("healthy");
    let leader = cluster.wait_healthy(Duration::from_secs(5)).await.unwrap();
    let (o, _) = probe.until("ok", Duration::from_secs(20)).await;
    assert_eq!(o.outcome, Outcome::Healthy);
    assert!(
        o.detail.starts_with(&format!("leader {leader};")),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("failover ready"), "{}", o.detail);
    assert_eq!(gauge(&o, GaugeName::PatroniLeaders, None), Some(1.0));
    assert_eq!(gauge(&o, GaugeName::PatroniFailoverReady, None), Some(1.0));
    for name in cluster.member_names() {
        assert_eq!(
            gauge(&o, GaugeName::PatroniMemberUp, Some(&name)),
            Some(1.0)
        );
        assert_eq!(
            gauge(&o, GaugeName::PatroniTimeline, Some(&name)),
            Some(1.0)
        );
    }
    let ProbeSpec::Patroni(spec) = &probe.config.probes[0].spec else {
        panic!("not a patroni probe")
    };
    let view = probe
        .prober
        .patroni_view("main", spec, Duration::from_secs(5))
        .await;
    assert_eq!(
        view.leader().map(|l| l.name.as_str()),
        Some(leader.as_str())
    );
    assert_eq!(view.candidates().len(), 2);
    assert!(view.dcs_ok() && !view.paused);
    assert!(!o.detail.contains(&cluster.credentials().superuser.1));

    eprintln!("replica lag");
    let replica = cluster
        .member_names()
        .into_iter()
        .find(|n| *n != leader)
        .unwrap();
    let walreceiver = cluster.freeze_walreceiver(&replica).await.unwrap();
    cluster.write_load(&leader, 20_000).await.unwrap();
    let (o, _) = lag_probe
        .until("replica_lag", Duration::from_secs(30))
        .await;
    match o.outcome {
        Outcome::Degraded { value, .. } => assert!(value > 65536.0, "{value}"),
        ref other => panic!("{other:?}"),
    }
    assert!(o.detail.contains(&replica), "{}", o.detail);
    let lag = gauge(&o, GaugeName::PatroniLagBytes, Some(&replica)).unwrap();
    assert!(lag > 65536.0, "{lag}");
    cluster.thaw_process(walreceiver);
    restore(&cluster, &probe).await;

    eprintln!("DCS lost");
    cluster.freeze_dcs();
    let (o, seen) = probe
        .until("dcs_unreachable", Duration::from_secs(20))
        .await;
    assert_eq!(o.outcome, Outcome::failed("dcs_unreachable"));
    // Past Patroni's demotion of the leader (4-6 s): still the DCS, never "no leader".
    let frozen = Instant::now();
    let mut later = Vec::new();
    while frozen.elapsed() < Duration::from_secs(8) {
        later.push(probe.run().await.outcome.reason().to_owned());
    }
    cluster.thaw_dcs();
    assert!(
        !seen.iter().chain(&later).any(|r| r == "no_leader"),
        "{seen:?} then {later:?}"
    );
    assert!(later.iter().all(|r| r == "dcs_unreachable"), "{later:?}");
    let leader = restore(&cluster, &probe).await;

    eprintln!("split brain: only the leader's Patroni dies");
    cluster.kill_patroni(&leader).unwrap();
    let (o, seen) = probe.until("split_brain", Duration::from_secs(40)).await;
    assert!(o.detail.contains(&leader), "{}", o.detail);
    assert!(
        o.detail.contains("its postgres runs as primary"),
        "{}",
        o.detail
    );
    assert_eq!(gauge(&o, GaugeName::PatroniLeaders, None), Some(2.0));
    assert!(!seen.iter().any(|r| r == "no_leader"), "{seen:?}");
    cluster.start_member(&leader).unwrap();
    let leader = restore(&cluster, &probe).await;

    eprintln!("leader node crash");
    cluster.crash(&leader).unwrap();
    // The DCS still names the crashed leader until its key expires: a leader loss at once.
    let (o, _) = probe
        .until("leader_unreachable", Duration::from_secs(15))
        .await;
    assert!(
        o.detail.starts_with(&format!(
            "{leader} holds the leader key but its REST API does not answer"
        )),
        "{}",
        o.detail
    );
    assert_eq!(gauge(&o, GaugeName::PatroniLeaders, None), Some(0.0));
    assert_eq!(
        gauge(&o, GaugeName::PatroniMemberUp, Some(&leader)),
        Some(0.0)
    );
    let (o, _) = probe.until("member_down", Duration::from_secs(30)).await;
    assert!(
        o.detail.contains(&format!("{leader} does not answer")),
        "{}",
        o.detail
    );
    cluster.start_member(&leader).unwrap();
    restore(&cluster, &probe).await;

    let seen = cluster.processes();
    let dir = cluster.dir().display().to_string();
    drop(cluster);
    support::wait_for("every process to exit", Duration::from_secs(10), || async {
        (procfs::still_running(&seen).is_empty() && procfs::processes_mentioning(&dir).is_empty())
            .then_some(())
    })
    .await;
    eprintln!("done after {:?}", started.elapsed());
}
