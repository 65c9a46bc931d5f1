//! Decoding every captured Patroni 3.0.2 answer in `tests/fixtures/patroni/`, and bad input.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::path::PathBuf;

use super::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/patroni")
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(name)).unwrap()
}

fn files(pred: impl Fn(&str) -> bool) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| pred(n))
        .collect();
    names.sort();
    names
}

#[test]
fn every_captured_status_answer_decodes() {
    // /patroni and every endpoint that answers with the same status document.
    let names = files(|n| n.ends_with(".json") && n.contains(".GET_") && !n.contains("_cluster"));
    assert!(names.len() >= 30, "{names:?}");
    for name in names {
        let s = decode_status(&fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!s.state.is_empty() && !s.role.is_empty(), "{name}");
        if s.role == "master" {
            assert!(
                s.timeline.is_some(),
                "{name}: a running primary has a timeline"
            );
        }
        assert!(
            s.replication.iter().all(|r| r.application_name.is_some()),
            "{name}"
        );
    }
}

#[test]
fn every_captured_cluster_answer_decodes() {
    let names = files(|n| n.contains("GET_cluster") && n.ends_with(".json"));
    assert_eq!(names.len(), 9, "{names:?}");
    for name in names {
        let c = decode_cluster(&fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let leaders = c.members.iter().filter(|m| m.role == "leader").count();
        assert_eq!(leaders, 1, "{name}");
        for m in &c.members {
            assert_eq!(m.lag.is_none(), m.role == "leader", "{name}: {}", m.name);
            assert!(
                m.api_url
                    .as_deref()
                    .is_some_and(|u| u.ends_with("/patroni"))
            );
        }
    }
}

#[test]
fn every_text_answer_is_a_clear_error() {
    // Liveness/readiness (empty), metrics (text), POST answers (text/html), the etcd-down
    // /cluster (no answer at all): none is a status or a cluster, none panics.
    let names = files(|n| n.ends_with(".txt"));
    assert!(names.len() >= 30, "{names:?}");
    for name in names {
        let body = fixture(&name);
        let e = decode_status(&body).unwrap_err();
        assert!(
            matches!(e.kind(), "empty_body" | "not_json" | "bad_json"),
            "{name}: {e}"
        );
        assert!(decode_cluster(&body).is_err(), "{name}");
    }
}

#[test]
fn leader_status_lists_replication_by_application_name() {
    let s = decode_status(&fixture("healthy.leader.GET_patroni.200.json")).unwrap();
    assert_eq!(s.role, "master");
    assert_eq!(s.timeline, Some(1));
    let names: Vec<_> = s
        .replication
        .iter()
        .map(|r| r.application_name.as_deref().unwrap())
        .collect();
    assert_eq!(names, ["pg2", "pg3"]);
    assert!(
        s.replication
            .iter()
            .all(|r| r.state.as_deref() == Some("streaming"))
    );
    assert_eq!(s.patroni.unwrap().version.as_deref(), Some("3.0.2"));
}

#[test]
fn unknown_lag_and_missing_timeline_are_kept() {
    let c = decode_cluster(&fixture("replica-stopped.leader.GET_cluster.200.json")).unwrap();
    let pg3 = c.members.iter().find(|m| m.name == "pg3").unwrap();
    assert_eq!(pg3.state, "stopped");
    assert_eq!(pg3.lag, Some(Lag::Unknown));
    assert_eq!(pg3.timeline, None);
    assert_eq!(pg3.port, Some(25434));
}

#[test]
fn lagging_replica_shows_its_bytes() {
    let c = decode_cluster(&fixture("lagging.leader.GET_cluster.200.json")).unwrap();
    let pg2 = c.members.iter().find(|m| m.name == "pg2").unwrap();
    assert_eq!(pg2.lag, Some(Lag::Bytes(28_054_768)));
}

#[test]
fn pause_and_scheduled_switchover_are_read() {
    let c = decode_cluster(&fixture("paused.leader.GET_cluster.200.json")).unwrap();
    assert!(c.pause);
    let s = decode_status(&fixture("paused.leader.GET_patroni.200.json")).unwrap();
    assert!(s.pause);
    let c = decode_cluster(&fixture("scheduled.leader.GET_cluster.200.json")).unwrap();
    assert!(!c.pause);
    assert_eq!(
        c.scheduled_switchover,
        Some(ScheduledSwitchover {
            at: "2099-01-01T00:00:00+00:00".into(),
            from: Some("pg1".into()),
            to: Some("pg2".into()),
        })
    );
}

#[test]
fn demoted_leader_without_dcs_says_unlocked() {
    let s = decode_status(&fixture("etcd-down.old-leader.GET_patroni.200.json")).unwrap();
    assert_eq!(s.role, "replica");
    assert!(s.cluster_unlocked);
    let s = decode_status(&fixture("reinitializing.replica.GET_patroni.200.json")).unwrap();
    assert_eq!((s.state.as_str(), s.timeline), ("stopping", None));
}

#[test]
fn etcd_down_cluster_answer_is_empty() {
    let e = decode_cluster(&fixture("etcd-down.old-leader.GET_cluster.000.txt")).unwrap_err();
    assert_eq!(e, DecodeError::Empty);
}

#[test]
fn html_error_page_is_named() {
    let e = decode_status(&fixture("switchover.bad-json.400.txt")).unwrap_err();
    assert_eq!(
        e,
        DecodeError::NotJson {
            looks_like: "an HTML page"
        }
    );
    assert_eq!(
        e.to_string(),
        "answer is not JSON (it looks like an HTML page)"
    );
}

#[test]
fn malformed_json_is_named() {
    let e = decode_status(br#"{"state": "running", "role": "#).unwrap_err();
    assert_eq!(e.kind(), "bad_json");
    assert!(e.to_string().starts_with("malformed JSON"), "{e}");
}

#[test]
fn wrong_types_are_named() {
    let e =
        decode_status(br#"{"state": "running", "role": "master", "timeline": "one"}"#).unwrap_err();
    assert!(e.to_string().contains("invalid type"), "{e}");
    let e = decode_cluster(
        br#"{"members": [{"name": "a", "role": "replica", "state": "running", "lag": "lots"}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("byte count or \"unknown\""), "{e}");
    let e = decode_cluster(
        br#"{"members": [{"name": "a", "role": "replica", "state": "running", "lag": -5}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.kind(), "bad_json");
    let e = decode_cluster(br#"{"members": {"name": "a"}}"#).unwrap_err();
    assert_eq!(e.kind(), "bad_json");
    let e = decode_status(br#"{"role": "master"}"#).unwrap_err();
    assert!(e.to_string().contains("missing field `state`"), "{e}");
    let e = decode_status(b"[1, 2]").unwrap_err();
    assert_eq!(e.kind(), "bad_json");
    let e = decode_status(b"no auth header received").unwrap_err();
    assert_eq!(
        e,
        DecodeError::NotJson {
            looks_like: "plain text"
        }
    );
}

#[test]
fn huge_body_is_refused_before_parsing() {
    let mut body = b"{\"state\": \"running\", \"role\": \"master\", \"x\": \"".to_vec();
    body.extend(std::iter::repeat_n(b'x', MAX_BODY_BYTES));
    body.extend(b"\"}");
    let e = decode_status(&body).unwrap_err();
    assert_eq!(
        e,
        DecodeError::TooLarge {
            limit: MAX_BODY_BYTES
        }
    );
    assert_eq!(e.kind(), "body_too_large");
}

#[test]
fn tags_are_read_as_patroni_reads_them() {
    for (json, expected) in [
        (r#"{"nofailover": true}"#, true),
        (r#"{"nofailover": "true"}"#, true),
        (r#"{"nofailover": 1}"#, true),
        (r#"{"nofailover": false}"#, false),
        (r#"{"nofailover": "nonsense"}"#, false),
        (r#"{"clonefrom": true}"#, false),
    ] {
        let tags: Tags = serde_json::from_str(json).unwrap();
        assert_eq!(tags.nofailover, expected, "{json}");
    }
}

#[test]
fn patroni_4_primary_role_decodes() {
    let s = decode_status(
        br#"{"state": "running", "role": "primary", "name": "pg1", "timeline": 3,
             "replication": [{"application_name": "pg2", "state": "streaming"}]}"#,
    )
    .unwrap();
    assert_eq!(s.role, "primary");
    assert_eq!(s.name.as_deref(), Some("pg1"));
}
