//! The `postgres` probe against a real PostgreSQL 15 primary and its streaming replica.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use astreinte::config::{Config, load_dir};
use astreinte::metrics::GaugeName;
use astreinte::probes::{Observation, Outcome, Prober};
use astreinte::testbed::{PgServer, procfs};

struct Probe {
    dir: tempfile::TempDir,
    prober: Prober,
}

impl Probe {
    fn new() -> Probe {
        astreinte::app::install_crypto();
        Probe {
            dir: tempfile::tempdir().unwrap(),
            prober: Prober::new().unwrap(),
        }
    }

    /// A password file the probe reads (`password = { file = … }`).
    fn password_file(&self, name: &str, password: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{password}\n")).unwrap();
        path.display().to_string()
    }

    async fn run(&self, port: u16, extra: &str) -> Observation {
        let toml = format!(
            "[[probe]]\nid = \"db\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             user = \"postgres\"\ninterval = \"10s\"\ntimeout = \"2s\"\n{extra}\n"
        );
        let config = config_with(&toml);
        self.prober.observe(&config, &config.probes[0]).await
    }
}

fn config_with(probes: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    load_dir(dir.path()).unwrap()
}

fn gauge(o: &Observation, gauge: GaugeName) -> Option<f64> {
    o.measurements
        .iter()
        .find(|m| m.gauge == gauge)
        .map(|m| m.value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_primary_replica_long_queries_and_logins() {
    support::require("/usr/lib/postgresql/15/bin/postgres", "postgresql-15");
    let primary = PgServer::primary().await.unwrap();
    let probe = Probe::new();
    let good = format!(
        "password = {{ file = \"{}\" }}",
        probe.password_file("good", primary.password())
    );

    // A healthy primary.
    let o = probe.run(primary.port, &good).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert!(o.detail.starts_with("primary; "), "{}", o.detail);
    assert_eq!(gauge(&o, GaugeName::PostgresInRecovery), Some(0.0));
    assert_eq!(gauge(&o, GaugeName::PostgresLongQueries), Some(0.0));
    let ratio = gauge(&o, GaugeName::PostgresConnectionsUsedRatio).unwrap();
    assert!(ratio > 0.0 && ratio < 0.5, "{ratio}");
    assert!(!o.detail.contains(primary.password()));

    // A 30 s query in another session, with a 1 s threshold: reported without its text.
    let sleeper = primary.connect().await.unwrap();
    let sleeping = tokio::spawn(async move {
        let _ = sleeper
            .simple_query("SELECT pg_sleep(30) /* secret-literal */")
            .await;
    });
    let with_threshold = format!("{good}\nlong_query_threshold = \"1s\"");
    let o = support::wait_for("a long query", Duration::from_secs(15), || async {
        let o = probe.run(primary.port, &with_threshold).await;
        (o.outcome.reason() == "long_queries").then_some(o)
    })
    .await;
    assert_eq!(o.outcome, Outcome::degraded(1.0, "long_queries"));
    assert!(
        o.detail
            .contains("1 queries running longer than 1s, oldest: pid "),
        "{}",
        o.detail
    );
    assert!(!o.detail.contains("secret-literal") && !o.detail.contains("pg_sleep"));
    assert_eq!(gauge(&o, GaugeName::PostgresLongQueries), Some(1.0));
    // The default threshold (5 min) does not count it.
    let o = probe.run(primary.port, &good).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    let admin = primary.connect().await.unwrap();
    admin
        .simple_query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%secret-literal%' AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    sleeping.await.unwrap();

    // Connections over the ratio.
    let o = probe
        .run(
            primary.port,
            &format!("{good}\nmax_connections_ratio = 0.01"),
        )
        .await;
    assert!(
        matches!(o.outcome, Outcome::Degraded { ref reason, value } if reason == "connections_high" && value > 0.01),
        "{:?}",
        o.outcome
    );

    // A streaming replica is in recovery; the primary reports its lag.
    let replica = PgServer::replica_of(&primary).await.unwrap();
    let o = probe.run(replica.port, &good).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert!(
        o.detail.starts_with("replica (in recovery)"),
        "{}",
        o.detail
    );
    assert_eq!(gauge(&o, GaugeName::PostgresInRecovery), Some(1.0));
    let o = support::wait_for(
        "the replica in pg_stat_replication",
        Duration::from_secs(10),
        || async {
            let o = probe.run(primary.port, &good).await;
            gauge(&o, GaugeName::PostgresReplicationLagBytes).map(|_| o)
        },
    )
    .await;
    let lag = o
        .measurements
        .iter()
        .find(|m| m.gauge == GaugeName::PostgresReplicationLagBytes)
        .unwrap();
    assert_eq!(lag.labels[0], ("probe".to_owned(), "db".to_owned()));
    assert_eq!(lag.labels[1].0, "replica");
    assert!(lag.value >= 0.0);

    // Wrong password, no password, unreadable secret.
    let wrong = format!(
        "password = {{ file = \"{}\" }}",
        probe.password_file("wrong", "not-the-password")
    );
    let o = probe.run(primary.port, &wrong).await;
    assert_eq!(o.outcome, Outcome::failed("auth_failed"), "{}", o.detail);
    assert!(
        o.detail.contains("password authentication failed"),
        "{}",
        o.detail
    );
    assert!(!o.detail.contains("not-the-password"));
    let o = probe.run(primary.port, "").await;
    assert_eq!(o.outcome, Outcome::failed("auth_failed"), "{}", o.detail);
    let o = probe
        .run(
            primary.port,
            "password = { file = \"/nonexistent/astreinte\" }",
        )
        .await;
    assert_eq!(o.outcome, Outcome::unknown("secret_unavailable"));

    let seen: Vec<_> = primary
        .processes()
        .into_iter()
        .chain(replica.processes())
        .collect();
    assert!(seen.len() > 4, "{seen:?}");
    drop(replica);
    drop(primary);
    support::wait_for(
        "every postgres process to exit",
        Duration::from_secs(5),
        || async { procfs::still_running(&seen).is_empty().then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn postgres_closed_port_is_connection_refused() {
    let probe = Probe::new();
    let port = support::free_port();
    let o = probe.run(port, "").await;
    assert_eq!(
        o.outcome,
        Outcome::failed("connection_refused"),
        "{}",
        o.detail
    );
}

#[tokio::test]
async fn postgres_silent_server_times_out() {
    // Accepts TCP connections (the kernel does) but never answers the startup message.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = Probe::new();
    let o = probe.run(port, "").await;
    assert_eq!(o.outcome, Outcome::failed("timeout"), "{}", o.detail);
    drop(listener);
}
