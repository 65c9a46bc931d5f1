//! `assess` for every reason, the precedence between them, and views built from captured
//! Patroni answers.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use super::super::decode::{
    ClusterDoc, ClusterMember, Lag, MemberStatus, ReplicationRow, Tags, decode_cluster,
    decode_status,
};
use super::super::view::{Failure, MemberInput, PatroniView};
use super::*;

const MIB: u64 = 1024 * 1024;

fn status(role: &str, state: &str, timeline: Option<u64>, streaming: &[&str]) -> MemberStatus {
    MemberStatus {
        state: state.into(),
        role: role.into(),
        name: None,
        timeline,
        replication: streaming
            .iter()
            .map(|n| ReplicationRow {
                application_name: Some((*n).into()),
                state: Some("streaming".into()),
                sync_state: Some("async".into()),
            })
            .collect(),
        pause: false,
        tags: Tags::default(),
        cluster_unlocked: false,
        patroni: None,
    }
}

fn listed(name: &str, role: &str, lag: Option<Lag>) -> ClusterMember {
    ClusterMember {
        name: name.into(),
        role: role.into(),
        state: "running".into(),
        api_url: None,
        host: Some("127.0.0.1".into()),
        port: Some(5432),
        timeline: Some(3),
        lag,
        tags: Tags::default(),
    }
}

/// A healthy 3-member cluster that each case then breaks.
struct Case {
    inputs: Vec<MemberInput>,
    /// What every member's `/cluster` says, except for the members in `cluster_fails`.
    doc: Result<ClusterDoc, Failure>,
    cluster_fails: Vec<&'static str>,
    max_lag: u64,
}

impl Case {
    fn healthy() -> Case {
        let input = |name: &str, s: MemberStatus| MemberInput {
            url: format!("http://{name}:8008"),
            name: name.into(),
            status: Ok(s),
            cluster: Err(Failure::new("unset", "set by view()")),
            sql_primary: None,
        };
        Case {
            inputs: vec![
                input("pg1", status("master", "running", Some(3), &["pg2", "pg3"])),
                input("pg2", status("replica", "running", Some(3), &[])),
                input("pg3", status("replica", "running", Some(3), &[])),
            ],
            doc: Ok(ClusterDoc {
                members: vec![
                    listed("pg1", "leader", None),
                    listed("pg2", "replica", Some(Lag::Bytes(0))),
                    listed("pg3", "replica", Some(Lag::Bytes(0))),
                ],
                pause: false,
                scheduled_switchover: None,
            }),
            cluster_fails: Vec::new(),
            max_lag: MIB,
        }
    }

    fn status(&mut self, name: &str) -> &mut MemberStatus {
        let i = self.inputs.iter_mut().find(|i| i.name == name).unwrap();
        i.status.as_mut().unwrap()
    }

    fn down(&mut self, name: &str, sql_primary: Option<bool>) -> &mut Self {
        let i = self.inputs.iter_mut().find(|i| i.name == name).unwrap();
        i.status = Err(Failure::new("connection_refused", "connection refused"));
        i.sql_primary = sql_primary;
        self
    }

    fn listed(&mut self, name: &str) -> &mut ClusterMember {
        let doc = self.doc.as_mut().unwrap();
        doc.members.iter_mut().find(|m| m.name == name).unwrap()
    }

    fn dcs_down(&mut self) -> &mut Self {
        self.doc = Err(Failure::new("connection_closed", "connection closed"));
        self
    }

    /// Only `name`'s `/cluster` fails (its DCS requests fail; the others serve a cache).
    fn dcs_down_on(&mut self, name: &'static str) -> &mut Self {
        self.cluster_fails.push(name);
        self
    }

    fn view(mut self) -> PatroniView {
        for input in &mut self.inputs {
            input.cluster =
                if input.status.is_err() || self.cluster_fails.contains(&input.name.as_str()) {
                    Err(Failure::new("connection_closed", "connection closed"))
                } else {
                    self.doc.clone()
                };
        }
        PatroniView::assemble("main".into(), self.max_lag, self.inputs)
    }
}

#[test]
fn every_reason_and_its_precedence() {
    type Breaks = fn(&mut Case);
    let cases: Vec<(&str, Breaks, Outcome)> = vec![
        ("healthy", |_| {}, Outcome::Healthy),
        (
            "patroni 4 says primary",
            |c| c.status("pg1").role = "primary".into(),
            Outcome::Healthy,
        ),
        (
            "two members say master",
            |c| c.status("pg2").role = "master".into(),
            Outcome::failed("split_brain"),
        ),
        (
            "old primary's Patroni died, its postgres still primary, a new leader runs",
            |c| {
                c.down("pg1", Some(true));
                c.status("pg2").role = "master".into();
            },
            Outcome::failed("split_brain"),
        ),
        (
            "split brain outranks a lost DCS",
            |c| {
                c.status("pg2").role = "master".into();
                c.dcs_down();
            },
            Outcome::failed("split_brain"),
        ),
        (
            "nobody answers",
            |c| {
                c.down("pg1", None).down("pg2", None).down("pg3", None);
            },
            Outcome::failed("all_members_down"),
        ),
        (
            "nobody's Patroni answers, one postgres still primary",
            |c| {
                c.down("pg1", Some(true))
                    .down("pg2", None)
                    .down("pg3", None);
            },
            Outcome::failed("all_members_down"),
        ),
        (
            "DCS lost: the leader demoted itself",
            |c| {
                c.status("pg1").role = "replica".into();
                c.status("pg1").replication.clear();
                c.dcs_down();
            },
            Outcome::failed("dcs_unreachable"),
        ),
        (
            "DCS lost while the leader has not demoted yet",
            |c| {
                c.dcs_down();
            },
            Outcome::failed("dcs_unreachable"),
        ),
        (
            "etcd frozen: the leader demotes itself and its /cluster fails, replicas still serve a cached /cluster",
            |c| {
                c.status("pg1").state = "stopping".into();
                c.dcs_down_on("pg1");
            },
            Outcome::failed("dcs_unreachable"),
        ),
        (
            "the leader cannot reach the DCS yet still leads (it will demote)",
            |c| {
                c.dcs_down_on("pg1");
            },
            Outcome::degraded(1.0, "member_dcs_unreachable"),
        ),
        (
            "a replica cannot reach the DCS",
            |c| {
                c.dcs_down_on("pg3");
            },
            Outcome::degraded(1.0, "member_dcs_unreachable"),
        ),
        (
            "a member down outranks a replica without DCS",
            |c| {
                c.dcs_down_on("pg3").down("pg2", None);
            },
            Outcome::degraded(1.0, "member_down"),
        ),
        (
            "DCS lost and a member down",
            |c| {
                c.dcs_down().down("pg3", None);
            },
            Outcome::failed("dcs_unreachable"),
        ),
        (
            "leader node crashed, DCS still lists it",
            |c| {
                c.down("pg1", Some(false));
            },
            Outcome::failed("leader_unreachable"),
        ),
        (
            "every member a replica",
            |c| c.status("pg1").role = "replica".into(),
            Outcome::failed("no_leader"),
        ),
        (
            "leader's postgres crashed, Patroni restarts it",
            |c| c.status("pg1").state = "starting".into(),
            Outcome::failed("no_leader"),
        ),
        (
            "a replica's Patroni is down",
            |c| {
                c.down("pg3", None);
            },
            Outcome::degraded(1.0, "member_down"),
        ),
        (
            "member down outranks lag",
            |c| {
                c.down("pg3", None);
                c.listed("pg2").lag = Some(Lag::Bytes(5 * MIB));
            },
            Outcome::degraded(1.0, "member_down"),
        ),
        (
            "a replica's postgres is stopped",
            |c| {
                c.status("pg3").state = "stopped".into();
                c.status("pg3").timeline = None;
                c.status("pg1").replication.pop();
                c.listed("pg3").lag = Some(Lag::Unknown);
            },
            Outcome::degraded(1.0, "replica_not_streaming"),
        ),
        (
            "a replica missing from the leader's replication list",
            |c| {
                c.status("pg1").replication.remove(0);
            },
            Outcome::degraded(1.0, "replica_not_streaming"),
        ),
        (
            "a replica on an old timeline",
            |c| c.status("pg2").timeline = Some(2),
            Outcome::degraded(1.0, "replica_not_streaming"),
        ),
        (
            "a pg_basebackup row does not count as the replica",
            |c| {
                c.status("pg1").replication[1].application_name = Some("pg_basebackup".into());
            },
            Outcome::degraded(1.0, "replica_not_streaming"),
        ),
        (
            "a replica /cluster does not name cannot be judged on streaming",
            |c| {
                c.status("pg1").replication.pop();
                c.doc.as_mut().unwrap().members.pop();
            },
            Outcome::Healthy,
        ),
        (
            "a replica lags over the limit",
            |c| c.listed("pg2").lag = Some(Lag::Bytes(2 * MIB)),
            Outcome::degraded((2 * MIB) as f64, "replica_lag"),
        ),
        (
            "lag exactly at the limit is fine",
            |c| c.listed("pg2").lag = Some(Lag::Bytes(MIB)),
            Outcome::Healthy,
        ),
        (
            "lag outranks pause",
            |c| {
                c.listed("pg2").lag = Some(Lag::Bytes(3 * MIB));
                c.status("pg1").pause = true;
            },
            Outcome::degraded((3 * MIB) as f64, "replica_lag"),
        ),
        (
            "paused (seen in /cluster)",
            |c| c.doc.as_mut().unwrap().pause = true,
            Outcome::degraded(1.0, "paused"),
        ),
        (
            "paused (seen by a member only)",
            |c| c.status("pg2").pause = true,
            Outcome::degraded(1.0, "paused"),
        ),
        (
            "every replica tagged nofailover",
            |c| {
                c.listed("pg2").tags.nofailover = true;
                c.status("pg3").tags.nofailover = true;
            },
            Outcome::degraded(0.0, "failover_not_ready"),
        ),
        (
            "a leader alone",
            |c| {
                c.inputs.truncate(1);
                c.doc.as_mut().unwrap().members.truncate(1);
                c.status("pg1").replication.clear();
            },
            Outcome::degraded(0.0, "failover_not_ready"),
        ),
    ];
    for (name, breaks, expected) in cases {
        let mut case = Case::healthy();
        breaks(&mut case);
        let view = case.view();
        let finding = assess(&view);
        assert_eq!(finding.outcome, expected, "{name}: {}", finding.detail);
    }
}

#[test]
fn failover_readiness() {
    let ready = Case::healthy().view();
    assert!(ready.failover_ready());
    assert_eq!(ready.candidates().len(), 2);

    let mut one_lags = Case::healthy();
    one_lags.listed("pg2").lag = Some(Lag::Bytes(2 * MIB));
    let view = one_lags.view();
    assert!(view.failover_ready(), "pg3 can still take over");
    assert_eq!(view.candidates()[0].name, "pg3");

    let mut all_lag = Case::healthy();
    all_lag.listed("pg2").lag = Some(Lag::Bytes(2 * MIB));
    all_lag.listed("pg3").lag = Some(Lag::Unknown);
    assert!(!all_lag.view().failover_ready());

    let mut dcs = Case::healthy();
    dcs.dcs_down();
    let view = dcs.view();
    assert!(!view.failover_ready(), "no failover without the DCS");
    assert!(
        view.candidates().is_empty(),
        "no lag known without /cluster"
    );

    let mut paused = Case::healthy();
    paused.doc.as_mut().unwrap().pause = true;
    assert!(!paused.view().failover_ready());

    // The leader crashed: nobody streams, the replicas are still candidates.
    let mut crashed = Case::healthy();
    crashed.down("pg1", None);
    let view = crashed.view();
    assert!(view.failover_ready());
    assert_eq!(view.leader(), None);
}

#[test]
fn gauges_cover_every_member() {
    let mut case = Case::healthy();
    case.down("pg3", None);
    let finding = assess(&case.view());
    let value = |gauge: GaugeName, member: Option<&str>| {
        finding
            .measurements
            .iter()
            .find(|m| {
                m.gauge == gauge
                    && m.labels[0] == ("cluster".into(), "main".into())
                    && member.is_none_or(|n| m.labels.get(1).is_some_and(|l| l.1 == n))
            })
            .map(|m| m.value)
    };
    assert_eq!(value(GaugeName::PatroniLeaders, None), Some(1.0));
    assert_eq!(value(GaugeName::PatroniFailoverReady, None), Some(1.0));
    assert_eq!(value(GaugeName::PatroniMemberUp, Some("pg1")), Some(1.0));
    assert_eq!(value(GaugeName::PatroniMemberUp, Some("pg3")), Some(0.0));
    assert_eq!(value(GaugeName::PatroniLagBytes, Some("pg1")), Some(0.0));
    assert_eq!(value(GaugeName::PatroniLagBytes, Some("pg2")), Some(0.0));
    assert_eq!(value(GaugeName::PatroniTimeline, Some("pg2")), Some(3.0));
}

#[test]
fn detail_names_the_members_and_the_switchover() {
    let mut case = Case::healthy();
    case.doc.as_mut().unwrap().scheduled_switchover =
        Some(super::super::decode::ScheduledSwitchover {
            at: "2099-01-01T00:00:00+00:00".into(),
            from: Some("pg1".into()),
            to: Some("pg2".into()),
        });
    let finding = assess(&case.view());
    assert_eq!(finding.outcome, Outcome::Healthy);
    assert!(
        finding.detail.starts_with("leader pg1; pg1 leader running"),
        "{}",
        finding.detail
    );
    assert!(
        finding
            .detail
            .contains("switchover scheduled at 2099-01-01T00:00:00+00:00 from pg1 to pg2"),
        "{}",
        finding.detail
    );
    assert!(
        finding.detail.contains("failover ready (pg2, pg3)"),
        "{}",
        finding.detail
    );
}

#[path = "assess_captured_tests.rs"]
mod captured;

#[path = "assess_incomplete_tests.rs"]
mod incomplete;
