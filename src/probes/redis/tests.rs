//! Decoding every captured `INFO replication` fixture, and judging assembled views.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::time::Duration;

use super::assess::{InstanceRead, Persistence, assemble, judge};
use super::hit_ratio::WindowedLookups;
use super::info::{self, InfoError, Role, Stats};
use crate::config::RedisSpec;
use crate::metrics::GaugeName;
use crate::probes::Outcome;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/redis");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}.txt")).unwrap()
}

fn replication(name: &str) -> info::Replication {
    info::parse_replication(&fixture(name)).unwrap()
}

fn answered(name: &str) -> InstanceRead {
    let replication = replication(name);
    let persistence = (replication.role == Role::Master).then(|| Persistence {
        aof_enabled: false,
        rdb_save_rules: Some(String::new()),
    });
    InstanceRead::Answered {
        replication,
        stats: Some(Stats {
            keyspace_hits: 0,
            keyspace_misses: 0,
        }),
        persistence,
        dataset: None,
    }
}

fn spec() -> RedisSpec {
    RedisSpec {
        instances: vec![],
        username: None,
        password: None,
        max_lag_bytes: 1024,
        min_hit_ratio: 0.8,
        hit_ratio_window: Duration::from_secs(60),
        min_lookups: 10,
    }
}

fn outcome(reads: Vec<InstanceRead>, lookups: Option<WindowedLookups>) -> Outcome {
    let reads: Vec<(String, InstanceRead)> = reads
        .into_iter()
        .enumerate()
        .map(|(i, r)| (format!("127.0.0.1:{}", 26379 + i), r))
        .collect();
    judge(
        "r",
        &assemble(&reads),
        &spec(),
        lookups,
        &Default::default(),
    )
    .outcome
}

#[test]
fn every_fixture_decodes() {
    let mut names: Vec<_> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 8, "{names:?}");
    for path in names {
        let raw = std::fs::read(&path).unwrap();
        let r = info::parse_replication(&raw).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        // The files were saved by redis-cli with `\n`; the server sends `\r\n`.
        let crlf = String::from_utf8(raw).unwrap().replace('\n', "\r\n");
        assert_eq!(
            info::parse_replication(crlf.as_bytes()).unwrap(),
            r,
            "{path:?}"
        );
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let expected = if file.starts_with("master.") {
            Role::Master
        } else {
            Role::Replica
        };
        assert_eq!(r.role, expected, "{file}");
        assert_eq!(r.upstream.is_some(), expected == Role::Replica, "{file}");
    }
}

#[test]
fn fixtures_say_what_happened() {
    let m = replication("master.healthy");
    assert_eq!((m.connected_replicas, m.master_repl_offset), (1, 154));
    assert_eq!(m.replicas[0].offset, 154);
    assert_eq!(replication("master.replica-broken").connected_replicas, 0);
    assert_eq!(replication("master.restarted").master_repl_offset, 0);

    let up = replication("replica.healthy").upstream.unwrap();
    assert!(up.link_up && !up.sync_in_progress);
    assert_eq!((up.master_port, up.offset), (26379, 154));
    assert_eq!(up.last_io_seconds_ago, Some(6));
    assert_eq!(up.link_down_since_seconds, None);

    let broken = replication("replica.broken-replicaof-dead-port")
        .upstream
        .unwrap();
    assert!(!broken.link_up);
    assert_eq!(broken.master_port, 26999);
    assert_eq!(broken.last_io_seconds_ago, None, "-1 means never");
    assert_eq!(broken.link_down_since_seconds, Some(1));

    let down = replication("replica.master-down").upstream.unwrap();
    assert!(!down.link_up);
    assert!(replication("replica.fixed").upstream.unwrap().link_up);
    let after = replication("replica.after-master-restart");
    assert_eq!(after.upstream.unwrap().offset, 0);
}

#[test]
fn truncated_and_garbled_fixtures_fail_with_a_name() {
    let raw = fixture("replica.healthy");
    // Cut just before the replica's offset: the field we need is gone.
    let cut = String::from_utf8(raw.clone()).unwrap();
    let cut = &cut[..cut.find("slave_read_repl_offset").unwrap()];
    assert_eq!(
        info::parse_replication(cut.as_bytes()).unwrap_err(),
        InfoError::Missing("slave_repl_offset")
    );
    let garbled = String::from_utf8(raw)
        .unwrap()
        .replace("master_port:26379", "master_port:x");
    assert!(matches!(
        info::parse_replication(garbled.as_bytes()).unwrap_err(),
        InfoError::BadValue {
            field: "master_port",
            ..
        }
    ));
    // Every prefix of a real reply is either decoded or refused, never a panic.
    let raw = fixture("master.healthy");
    for n in 0..raw.len() {
        let _ = info::parse_replication(&raw[..n]);
    }
    let huge = "x:y\r\n".repeat(100_000);
    assert!(matches!(
        info::parse_replication(huge.as_bytes()),
        Err(InfoError::TooLarge(_))
    ));
}

#[test]
fn healthy_pair_is_healthy_and_measured() {
    let reads = vec![
        ("127.0.0.1:26379".to_owned(), answered("master.healthy")),
        ("127.0.0.1:26380".to_owned(), answered("replica.healthy")),
    ];
    let view = assemble(&reads);
    assert_eq!(view.masters, ["127.0.0.1:26379"]);
    assert_eq!(view.instances[1].lag_bytes, Some(0));
    assert_eq!(
        view.master_keeps_data,
        Some(false),
        "no AOF, no save points"
    );
    let f = judge("r", &view, &spec(), None, &Default::default());
    assert_eq!(f.outcome, Outcome::Healthy, "{}", f.detail);
    assert!(
        f.detail
            .contains("127.0.0.1:26380 replica, link up, lag 0 B"),
        "{}",
        f.detail
    );
    let link: Vec<_> = f
        .measurements
        .iter()
        .filter(|m| m.gauge == GaugeName::RedisMasterLinkUp)
        .collect();
    assert_eq!(link.len(), 1);
    assert_eq!(link[0].value, 1.0);
    assert_eq!(
        link[0].labels,
        [("instance".to_owned(), "127.0.0.1:26380".to_owned())]
    );
}

#[test]
fn each_fault_has_its_reason() {
    let down = || InstanceRead::Down {
        why: "connection_refused",
    };
    assert_eq!(
        outcome(
            vec![
                answered("master.replica-broken"),
                answered("replica.broken-replicaof-dead-port")
            ],
            None
        ),
        Outcome::degraded(1.0, "master_link_down")
    );
    assert_eq!(
        outcome(vec![down(), answered("replica.master-down")], None),
        Outcome::failed("no_master")
    );
    assert_eq!(
        outcome(
            vec![answered("master.healthy"), answered("master.restarted")],
            None
        ),
        Outcome::failed("multiple_masters")
    );
    assert_eq!(
        outcome(vec![answered("master.healthy"), down()], None),
        Outcome::degraded(1.0, "instance_down")
    );
    assert_eq!(
        outcome(vec![down(), down()], None),
        Outcome::failed("no_master")
    );
    let garbled = InstanceRead::ProtocolError {
        what: "the reply is not valid RESP".into(),
    };
    assert_eq!(
        outcome(vec![garbled, answered("replica.master-down")], None),
        Outcome::unknown("protocol_error")
    );
    assert_eq!(
        outcome(
            vec![InstanceRead::AuthFailed, InstanceRead::AuthFailed],
            None
        ),
        Outcome::unknown("auth_failed")
    );
}

#[test]
fn lag_is_master_offset_minus_replica_offset() {
    let mut master = replication("master.healthy");
    master.master_repl_offset = 154 + 5000;
    let reads = vec![
        InstanceRead::Answered {
            replication: master,
            stats: None,
            persistence: None,
            dataset: None,
        },
        answered("replica.healthy"),
    ];
    assert_eq!(
        outcome(reads, None),
        Outcome::degraded(5000.0, "replica_lag")
    );
}

#[test]
fn cache_misses_over_the_window_degrade() {
    let pair = || vec![answered("master.healthy"), answered("replica.healthy")];
    let l = |hits, misses| Some(WindowedLookups { hits, misses });
    assert_eq!(
        outcome(pair(), l(50, 50)),
        Outcome::degraded(0.5, "cache_miss_high")
    );
    assert_eq!(outcome(pair(), l(90, 10)), Outcome::Healthy);
    // Too few lookups to judge: an idle cache is not a missing one.
    assert_eq!(outcome(pair(), l(0, 5)), Outcome::Healthy);
}

#[test]
fn persistence_is_known_only_when_it_can_be() {
    let p = |aof, rules: Option<&str>| {
        Persistence {
            aof_enabled: aof,
            rdb_save_rules: rules.map(str::to_owned),
        }
        .keeps_data()
    };
    assert_eq!(p(true, None), Some(true));
    assert_eq!(p(false, Some("3600 1 300 100")), Some(true));
    assert_eq!(p(false, Some("")), Some(false));
    assert_eq!(p(false, None), None);
}
