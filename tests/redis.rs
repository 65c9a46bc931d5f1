//! The redis probe against real redis-server 7 instances (a master and a replica started by
//! the testbed), with faults injected: a replica pointed at a dead port, a killed replica, a
//! killed master, cache misses, AUTH, a server that does not speak RESP or closes mid-reply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use astreinte::config::{Config, ProbeSpec, load_dir};
use astreinte::metrics::GaugeName;
use astreinte::probes::{Observation, Outcome, Prober};
use astreinte::testbed::redis::RedisPair;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "s3cret-redis-pass";

fn config(probes: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    (dir, config)
}

fn redis_probe(id: &str, instances: &[String], extra: &str) -> String {
    let list: Vec<String> = instances.iter().map(|i| format!("{i:?}")).collect();
    format!(
        "[[probe]]\nid = \"{id}\"\nkind = \"redis\"\ninstances = [{}]\ninterval = \"10s\"\ntimeout = \"2s\"\n{extra}\n",
        list.join(", ")
    )
}

fn prober() -> Prober {
    astreinte::app::install_crypto();
    Prober::new().unwrap()
}

async fn observe(prober: &Prober, probe_toml: &str) -> Observation {
    let (_dir, config) = config(probe_toml);
    prober.observe(&config, &config.probes[0]).await
}

/// Runs the probe every 100 ms until `pred` holds, for at most `within`.
async fn until(
    prober: &Prober,
    probe_toml: &str,
    within: Duration,
    pred: impl Fn(&Outcome) -> bool,
) -> Observation {
    let started = Instant::now();
    loop {
        let o = observe(prober, probe_toml).await;
        if pred(&o.outcome) {
            return o;
        }
        assert!(
            started.elapsed() < within,
            "still {:?} after {within:?}: {}",
            o.outcome,
            o.detail
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn gauge(o: &Observation, name: GaugeName, instance: &str) -> Option<f64> {
    o.measurements
        .iter()
        .find(|m| m.gauge == name && m.labels.iter().any(|(_, v)| v == instance))
        .map(|m| m.value)
}

fn reason_is(reason: &'static str) -> impl Fn(&Outcome) -> bool {
    move |o| o.reason() == reason
}

/// One pair, the faults in sequence: each scenario leaves the pair healthy again.
#[tokio::test]
async fn replication_faults_are_seen_and_cleared() {
    support::require("/usr/bin/redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let mut pair = RedisPair::start(dir.path(), None).await.unwrap();
    let (master, replica) = (pair.master_addr(), pair.replica_addr());
    let prober = prober();
    let probe = redis_probe("pair", &[master.clone(), replica.clone()], "");

    // Healthy: one master, the replica linked, no lag, gauges per instance.
    let o = observe(&prober, &probe).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert!(
        o.detail.contains("1 replica(s) connected, no persistence"),
        "{}",
        o.detail
    );
    assert_eq!(gauge(&o, GaugeName::RedisUp, &master), Some(1.0));
    assert_eq!(gauge(&o, GaugeName::RedisMasterLinkUp, &replica), Some(1.0));
    assert_eq!(
        gauge(&o, GaugeName::RedisConnectedReplicas, &master),
        Some(1.0)
    );
    assert!(gauge(&o, GaugeName::RedisReplicationLagBytes, &replica).is_some());

    // The assembled view says the master would lose its data on a restart.
    let (_d, cfg) = config(&probe);
    let ProbeSpec::Redis(spec) = &cfg.probes[0].spec else {
        panic!("redis spec")
    };
    let view = astreinte::probes::redis::observe_set(spec, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(view.masters, std::slice::from_ref(&master));
    assert_eq!(view.master_keeps_data, Some(false), "{view:?}");
    // RDB save points configured at run time: read back through CONFIG GET save.
    let port = pair.master_port;
    pair.command(port, &["CONFIG", "SET", "save", "3600 1"])
        .await
        .unwrap();
    let view = astreinte::probes::redis::observe_set(spec, Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(view.master_keeps_data, Some(true), "{view:?}");
    pair.command(port, &["CONFIG", "SET", "save", ""])
        .await
        .unwrap();

    // The replica follows a dead port: master_link_down, within a bounded time.
    pair.point_replica_at_dead_port().await.unwrap();
    let o = until(
        &prober,
        &probe,
        Duration::from_secs(10),
        reason_is("master_link_down"),
    )
    .await;
    assert_eq!(o.outcome, Outcome::degraded(1.0, "master_link_down"));
    assert_eq!(gauge(&o, GaugeName::RedisMasterLinkUp, &replica), Some(0.0));
    pair.restore_replica().await.unwrap();
    until(
        &prober,
        &probe,
        Duration::from_secs(10),
        Outcome::is_healthy,
    )
    .await;

    // The replica dies: instance_down, and the next run after its restart is healthy.
    pair.kill_replica();
    let o = observe(&prober, &probe).await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(1.0, "instance_down"),
        "{}",
        o.detail
    );
    assert_eq!(gauge(&o, GaugeName::RedisUp, &replica), Some(0.0));
    assert!(o.detail.contains("connection_refused"), "{}", o.detail);
    pair.restart_replica().await.unwrap();
    until(
        &prober,
        &probe,
        Duration::from_secs(10),
        Outcome::is_healthy,
    )
    .await;

    // The master dies: no master at all. A fresh connection per run sees it at once.
    pair.kill_master();
    let o = observe(&prober, &probe).await;
    assert_eq!(o.outcome, Outcome::failed("no_master"), "{}", o.detail);
    pair.restart_master().await.unwrap();
    let o = until(
        &prober,
        &probe,
        Duration::from_secs(10),
        Outcome::is_healthy,
    )
    .await;
    assert_eq!(gauge(&o, GaugeName::RedisUp, &master), Some(1.0));
}

/// Sends `GET key` to `addr` every 10 ms until `stop` is set.
fn load(addr: String, key: &'static str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    tokio::spawn(async move {
        let client = redis::Client::open(format!("redis://{addr}")).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            let _: Option<String> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut con)
                .await
                .unwrap();
            sent += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    })
}

/// Misses over the window degrade, even after a lifetime of hits; hits clear it again.
#[tokio::test]
async fn cache_misses_over_the_window_are_cache_miss_high() {
    support::require("/usr/bin/redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let pair = RedisPair::start(dir.path(), None).await.unwrap();
    let prober = prober();
    let probe = redis_probe(
        "cache",
        &[pair.master_addr(), pair.replica_addr()],
        "hit_ratio_window = \"1s\"\nmin_lookups = 20\nmin_hit_ratio = 0.8",
    );
    let port = pair.master_port;
    pair.command(port, &["SET", "present", "1"]).await.unwrap();
    // A long past of hits: the lifetime ratio stays above 0.9 through the whole test.
    for _ in 0..1000 {
        pair.command(port, &["GET", "present"]).await.unwrap();
    }
    // No ratio until the window is covered: the first run cannot judge.
    let o = observe(&prober, &probe).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert!(o.detail.contains("collecting"), "{}", o.detail);

    let stop = Arc::new(AtomicBool::new(false));
    let misses = load(pair.master_addr(), "missing", stop.clone());
    let o = until(
        &prober,
        &probe,
        Duration::from_secs(10),
        reason_is("cache_miss_high"),
    )
    .await;
    match o.outcome {
        Outcome::Degraded { value, .. } => assert!(value < 0.1, "ratio {value}"),
        ref other => panic!("{other:?}"),
    }
    let ratio = o
        .measurements
        .iter()
        .find(|m| m.gauge == GaugeName::RedisKeyspaceHitRatio)
        .unwrap();
    assert_eq!(ratio.labels, [("probe".to_owned(), "cache".to_owned())]);
    stop.store(true, Ordering::Relaxed);
    assert!(misses.await.unwrap() >= 20);

    // Hits only: once the misses have left the window, healthy again.
    let stop = Arc::new(AtomicBool::new(false));
    let hits = load(pair.master_addr(), "present", stop.clone());
    let o = until(
        &prober,
        &probe,
        Duration::from_secs(10),
        Outcome::is_healthy,
    )
    .await;
    let ratio = o
        .measurements
        .iter()
        .find(|m| m.gauge == GaugeName::RedisKeyspaceHitRatio)
        .unwrap();
    assert!(ratio.value >= 0.8, "{}", o.detail);
    stop.store(true, Ordering::Relaxed);
    hits.await.unwrap();
}

/// One password-protected pair: AUTH with the password from a file, and from an environment
/// variable (end to end through `astreinte check`), works; a wrong or missing one is
/// `auth_failed`, with neither password anywhere in the observation.
#[tokio::test]
async fn auth_from_a_file_or_the_environment_and_wrong_passwords() {
    support::require("/usr/bin/redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let pair = RedisPair::start(dir.path(), Some(PASSWORD)).await.unwrap();
    let instances = [pair.master_addr(), pair.replica_addr()];
    let prober = prober();
    let right = dir.path().join("right");
    std::fs::write(&right, format!("{PASSWORD}\n")).unwrap();
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-pass-word").unwrap();

    let with = |path: &std::path::Path| {
        format!("password = {{ file = {:?} }}", path.display().to_string())
    };
    let o = observe(&prober, &redis_probe("auth", &instances, &with(&right))).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);

    for probe in [
        redis_probe("auth", &instances, &with(&wrong)),
        redis_probe("auth", &instances, ""),
    ] {
        let o = observe(&prober, &probe).await;
        assert_eq!(o.outcome, Outcome::unknown("auth_failed"), "{}", o.detail);
        assert!(o.detail.contains("authentication failed"), "{}", o.detail);
        let all = format!("{o:?}");
        assert!(
            !all.contains(PASSWORD) && !all.contains("not-the-pass-word"),
            "{all}"
        );
    }
    // A password that cannot be read: the probe could not see, and says which variable.
    let unset = "password = { env = \"ASTREINTE_TEST_REDIS_PASSWORD_NOT_SET\" }";
    let o = observe(&prober, &redis_probe("auth", &instances, unset)).await;
    assert_eq!(o.outcome, Outcome::unknown("secret_unavailable"));
    assert!(
        o.detail.contains("ASTREINTE_TEST_REDIS_PASSWORD_NOT_SET"),
        "{}",
        o.detail
    );

    // From an environment variable: the daemon's own process reads it.
    let conf = tempfile::tempdir().unwrap();
    let probe = redis_probe(
        "env-auth",
        &instances,
        "password = { env = \"ASTREINTE_TEST_REDIS_PASSWORD\" }",
    );
    std::fs::write(conf.path().join("probes.toml"), probe).unwrap();
    std::fs::write(conf.path().join("remediations.toml"), "").unwrap();
    let run = |password: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_astreinte"))
            .args(["check", "--output", "json", "--config"])
            .arg(conf.path())
            .env("ASTREINTE_TEST_REDIS_PASSWORD", password)
            .output()
            .unwrap()
    };
    let ok = run(PASSWORD);
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(ok.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"healthy\""), "{stdout}");
    let bad = run("wrong-one");
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert!(stdout.contains("auth_failed"), "{stdout}");
    assert!(
        !stdout.contains("wrong-one") && !stdout.contains(PASSWORD),
        "{stdout}"
    );
}

/// A server that answers garbage, or closes mid-reply: `protocol_error`, an Unknown.
#[tokio::test]
async fn garbage_and_truncated_replies_are_protocol_errors() {
    for reply in [
        &b"HTTP/1.1 400 Bad Request\r\n\r\n"[..],
        &b"$500\r\n# Replication\r\nrole:mas"[..],
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(reply).await;
                // Dropping the socket closes it before the reply is complete.
            }
        });
        let prober = prober();
        let o = observe(&prober, &redis_probe("garbage", &[addr], "")).await;
        assert_eq!(
            o.outcome,
            Outcome::unknown("protocol_error"),
            "{}",
            o.detail
        );
        server.abort();
    }
}

/// A master whose first connection closes mid-reply (behind a proxy that cuts it, then passes
/// every later connection through): `Unknown protocol_error` on that run, and the next run
/// connects afresh (no pooled connection to stay broken) and judges the master as usual.
#[tokio::test]
async fn a_reply_cut_mid_way_is_unknown_then_the_next_run_reconnects() {
    support::require("/usr/bin/redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let pair = RedisPair::start(dir.path(), None).await.unwrap();
    let master = pair.master_addr();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy = listener.local_addr().unwrap().to_string();
    let upstream = master.clone();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    let server = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut buf = [0u8; 1024];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(b"$500\r\n# Replication\r\nrole:mas").await;
                continue; // dropped: closed mid-reply
            }
            let upstream = upstream.clone();
            tokio::spawn(async move {
                let mut real = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut socket, &mut real).await;
            });
        }
    });
    let prober = prober();
    let cut = observe(
        &prober,
        &redis_probe("cut", std::slice::from_ref(&proxy), ""),
    )
    .await;
    assert_eq!(
        cut.outcome,
        Outcome::unknown("protocol_error"),
        "{}",
        cut.detail
    );
    assert!(
        cut.detail
            .contains("the connection closed before the reply was complete"),
        "{}",
        cut.detail
    );
    let direct = observe(&prober, &redis_probe("direct", &[master], "")).await;
    let next = observe(&prober, &redis_probe("cut", &[proxy], "")).await;
    assert_eq!(next.outcome, direct.outcome, "{}", next.detail);
    assert_ne!(next.outcome.reason(), "protocol_error", "{}", next.detail);
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    server.abort();
}

/// An instance that accepts and never answers is down (`timeout`) before the probe's own
/// timeout: alone, it leaves no master.
#[tokio::test]
async fn a_hung_instance_is_down_before_the_probe_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let o = observe(&prober(), &redis_probe("hung", &[addr], "")).await;
    assert_eq!(o.outcome, Outcome::failed("no_master"), "{}", o.detail);
    assert!(o.detail.contains("timeout"), "{}", o.detail);
    server.abort();
}

/// A name that does not resolve is a down instance with a DNS reason, not a protocol error.
#[tokio::test]
async fn an_unresolvable_instance_is_down_with_a_dns_error() {
    let probe = redis_probe(
        "dns",
        &["astreinte-no-such-host.invalid:6379".to_owned()],
        "",
    );
    let o = observe(&prober(), &probe).await;
    assert_eq!(o.outcome, Outcome::failed("no_master"), "{}", o.detail);
    assert!(o.detail.contains("dns_error"), "{}", o.detail);
}

/// Issue 15 #7: the master (no persistence) restarts empty, its run_id changes, the replica
/// resyncs the empty set: the probe says `data_loss` (P1, seed 000 "Perte de données"), not
/// healthy. While the master is down, the detail keeps saying the replica holds the only copy.
#[tokio::test]
async fn a_master_that_restarts_empty_is_data_loss() {
    support::require("/usr/bin/redis-server", "redis-server");
    let dir = tempfile::tempdir().unwrap();
    let mut pair = RedisPair::start(dir.path(), None).await.unwrap();
    let (master, replica) = (pair.master_addr(), pair.replica_addr());
    let prober = prober();
    let probe = redis_probe("cache", &[master.clone(), replica.clone()], "");
    let mut mset = vec!["MSET".to_owned()];
    for i in 0..3000 {
        mset.push(format!("k{i}"));
        mset.push("v".to_owned());
    }
    let args: Vec<&str> = mset.iter().map(String::as_str).collect();
    pair.command(pair.master_port, &args).await.unwrap();
    // The replica holds the 3,000 keys too.
    support::wait_for(
        "the replica to hold 3000 keys",
        Duration::from_secs(10),
        || async {
            let info = pair.info(pair.replica_port, "keyspace").await.ok()?;
            info.contains("db0:keys=3000").then_some(())
        },
    )
    .await;
    let o = observe(&prober, &probe).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);

    pair.kill_master();
    let o = observe(&prober, &probe).await;
    assert_eq!(o.outcome, Outcome::failed("no_master"), "{}", o.detail);
    assert!(
        o.detail.contains("the last master had no persistence"),
        "{}",
        o.detail
    );
    pair.restart_master().await.unwrap();
    let o = until(
        &prober,
        &probe,
        Duration::from_secs(10),
        reason_is("data_loss"),
    )
    .await;
    assert!(
        o.detail.contains("with 0 keys, it held 3000"),
        "{}",
        o.detail
    );
    let (_d, cfg) = config(&probe);
    assert_eq!(
        astreinte::score::level_of("redis", &o.outcome, 0.0, &cfg.probes[0].levels),
        Some(astreinte::level::Level::P1)
    );
    // It stays a data loss on the next runs (the keys did not come back).
    let o = observe(&prober, &probe).await;
    assert_eq!(o.outcome, Outcome::failed("data_loss"), "{}", o.detail);
}
