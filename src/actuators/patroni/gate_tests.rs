//! Table-driven tests of the Patroni action gates, on hand-built views.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::time::Duration;

use super::*;
use crate::probes::patroni::{Failure, Lag, Role};

const MAX_LAG: u64 = 1_048_576;
const TTL: Duration = Duration::from_secs(30);

fn member(name: &str) -> MemberView {
    MemberView {
        name: name.to_owned(),
        url: format!("http://{name}:8008"),
        down: None,
        role: Role::Replica,
        state: Some("running".into()),
        timeline: Some(2),
        lag: Some(Lag::Bytes(0)),
        streaming: None,
        nofailover: false,
        sql_primary: None,
        dcs_leader: false,
    }
}

fn leader(name: &str) -> MemberView {
    MemberView {
        role: Role::Leader,
        lag: None,
        ..member(name)
    }
}

fn down(name: &str) -> MemberView {
    MemberView {
        down: Some(Failure::new("connection_refused", "connection refused")),
        role: Role::Unknown,
        state: None,
        lag: None,
        ..member(name)
    }
}

fn lag(mut m: MemberView, bytes: u64) -> MemberView {
    m.lag = Some(Lag::Bytes(bytes));
    m
}

fn view(members: Vec<MemberView>) -> PatroniView {
    PatroniView {
        cluster: "pg".into(),
        max_lag_bytes: MAX_LAG,
        members,
        dcs: Dcs::Answered,
        paused: false,
        scheduled_switchover: None,
        unreadable: Vec::new(),
    }
}

fn code(r: Result<impl std::fmt::Debug, Hold>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(h) => h.code().to_owned(),
    }
}

/// The old leader's node crashed: pg1 down, pg2 and pg3 replicas.
fn leaderless() -> Vec<MemberView> {
    vec![
        down("pg1"),
        lag(member("pg2"), 300),
        lag(member("pg3"), 100),
    ]
}

#[test]
fn failover_gates() {
    let long = Some(Duration::from_secs(45));
    let cases: Vec<(&str, PatroniView, Option<Duration>, &str)> = vec![
        (
            "no leader past the ttl: lowest lag wins",
            view(leaderless()),
            long,
            "ok \"pg3\"",
        ),
        (
            "no leader for less than the ttl",
            view(leaderless()),
            Some(Duration::from_secs(12)),
            "patroni_handling_it",
        ),
        (
            "unknown duration holds",
            view(leaderless()),
            None,
            "patroni_handling_it",
        ),
        (
            "the DCS still names the crashed leader (its key has not expired): Patroni's move",
            view(vec![
                MemberView {
                    dcs_leader: true,
                    ..down("pg1")
                },
                lag(member("pg2"), 300),
                lag(member("pg3"), 100),
            ]),
            long,
            "patroni_handling_it",
        ),
        (
            "a leader appeared",
            view(vec![down("pg1"), leader("pg2"), member("pg3")]),
            long,
            "patroni_handling_it",
        ),
        (
            "split brain: two primaries",
            view(vec![leader("pg1"), leader("pg2"), member("pg3")]),
            long,
            "split_brain",
        ),
        (
            "split brain through a silent Patroni whose postgres is primary",
            view(vec![
                MemberView {
                    sql_primary: Some(true),
                    ..down("pg1")
                },
                leader("pg2"),
                member("pg3"),
            ]),
            long,
            "split_brain",
        ),
        (
            "the DCS does not answer",
            PatroniView {
                dcs: Dcs::Unreachable(Failure::new("timeout", "GET /cluster: timeout")),
                ..view(leaderless())
            },
            long,
            "dcs_unavailable",
        ),
        (
            "the DCS does not answer one member",
            PatroniView {
                dcs: Dcs::Partial {
                    members: vec!["pg2".into()],
                    failure: Failure::new("connection_closed", "closed"),
                },
                ..view(leaderless())
            },
            long,
            "dcs_unavailable",
        ),
        (
            "paused",
            PatroniView {
                paused: true,
                ..view(leaderless())
            },
            long,
            "paused",
        ),
        (
            "the down leader answered garbage: it may still lead",
            PatroniView {
                unreadable: vec![(
                    "pg1".into(),
                    Failure::new("bad_json", "GET /patroni: malformed JSON"),
                )],
                ..view(leaderless())
            },
            long,
            "unreadable_answer",
        ),
        (
            "every replica lags beyond the limit",
            view(vec![
                down("pg1"),
                lag(member("pg2"), MAX_LAG + 1),
                lag(member("pg3"), 50 * MAX_LAG),
            ]),
            long,
            "no_healthy_candidate",
        ),
        (
            "the lagging replica is never chosen",
            view(vec![
                down("pg1"),
                lag(member("pg2"), MAX_LAG + 1),
                lag(member("pg3"), MAX_LAG),
            ]),
            long,
            "ok \"pg3\"",
        ),
        (
            "nofailover is never chosen",
            view(vec![
                down("pg1"),
                MemberView {
                    nofailover: true,
                    ..member("pg2")
                },
                lag(member("pg3"), 5000),
            ]),
            long,
            "ok \"pg3\"",
        ),
        (
            "only nofailover or stopped replicas",
            view(vec![
                down("pg1"),
                MemberView {
                    nofailover: true,
                    ..member("pg2")
                },
                MemberView {
                    state: Some("stopped".into()),
                    lag: Some(Lag::Unknown),
                    ..member("pg3")
                },
            ]),
            long,
            "no_healthy_candidate",
        ),
        (
            "unknown lag is no candidate",
            view(vec![
                down("pg1"),
                MemberView {
                    lag: Some(Lag::Unknown),
                    ..member("pg2")
                },
                down("pg3"),
            ]),
            long,
            "no_healthy_candidate",
        ),
        (
            "ties go by name",
            view(vec![down("pg1"), member("pg3"), member("pg2")]),
            long,
            "ok \"pg2\"",
        ),
    ];
    for (what, v, no_leader_for, want) in cases {
        let got = code(failover_allowed(&v, no_leader_for, TTL));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn reinitialize_gates() {
    let stuck = |m: MemberView| MemberView {
        streaming: Some(false),
        ..m
    };
    let streaming = |m: MemberView| MemberView {
        streaming: Some(true),
        ..m
    };
    let cases: Vec<(&str, PatroniView, &str)> = vec![
        (
            "a running replica missing from the leader's replication list",
            view(vec![
                leader("pg1"),
                stuck(member("pg2")),
                streaming(member("pg3")),
            ]),
            "ok \"pg2\"",
        ),
        (
            "a replica on an old timeline",
            view(vec![
                leader("pg1"),
                streaming(member("pg2")),
                MemberView {
                    timeline: Some(1),
                    ..streaming(member("pg3"))
                },
            ]),
            "ok \"pg3\"",
        ),
        (
            "every replica streams",
            view(vec![
                leader("pg1"),
                streaming(member("pg2")),
                streaming(member("pg3")),
            ]),
            "no_stuck_replica",
        ),
        (
            "a stopped replica is Patroni's to restart",
            view(vec![
                leader("pg1"),
                MemberView {
                    state: Some("stopped".into()),
                    ..stuck(member("pg2"))
                },
                down("pg3"),
            ]),
            "no_stuck_replica",
        ),
        (
            "no leader to clone from",
            view(vec![down("pg1"), stuck(member("pg2")), member("pg3")]),
            "no_healthy_leader",
        ),
        (
            "split brain",
            view(vec![leader("pg1"), leader("pg2"), stuck(member("pg3"))]),
            "split_brain",
        ),
        (
            "the DCS does not answer",
            PatroniView {
                dcs: Dcs::Unreachable(Failure::new("timeout", "timeout")),
                ..view(vec![leader("pg1"), stuck(member("pg2"))])
            },
            "dcs_unavailable",
        ),
        (
            "paused",
            PatroniView {
                paused: true,
                ..view(vec![leader("pg1"), stuck(member("pg2"))])
            },
            "paused",
        ),
        (
            "a member answered garbage",
            PatroniView {
                unreadable: vec![(
                    "pg3".into(),
                    Failure::new("not_json", "GET /cluster: not JSON"),
                )],
                ..view(vec![leader("pg1"), stuck(member("pg2"))])
            },
            "unreadable_answer",
        ),
    ];
    for (what, v, want) in cases {
        let got = code(reinitialize_target(&v).map(|m| m.name.clone()));
        assert_eq!(got, want, "{what}");
    }
}

#[test]
fn the_leader_is_never_reinitialized() {
    // Even a leader on an "old" timeline or flagged not streaming is not a target.
    let v = view(vec![
        MemberView {
            streaming: Some(false),
            ..leader("pg1")
        },
        MemberView {
            streaming: Some(true),
            ..member("pg2")
        },
    ]);
    assert_eq!(code(reinitialize_target(&v)), "no_stuck_replica");
}

#[test]
fn every_hold_has_a_one_line_detail() {
    let holds = [
        failover_allowed(&view(leaderless()), None, TTL).unwrap_err(),
        failover_target(&view(vec![leader("a"), leader("b")])).unwrap_err(),
        reinitialize_target(&view(vec![down("a")])).unwrap_err(),
    ];
    for h in holds {
        let line = h.to_string();
        assert!(!line.contains('\n') && line.len() > 10, "{line}");
        assert!(line.starts_with(h.code()), "{line}");
    }
}
