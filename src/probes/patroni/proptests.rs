//! Property tests of the Patroni decoders and of what a bad answer turns into: any bytes, any
//! JSON, and the captured answers with one part removed or retyped never panic; a shape
//! error names the field; an answer that cannot be read makes the probe `Unknown`
//! (`unreadable_answer`) and holds every Patroni action, whatever the other members say.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::Value;

use super::decode::UNREADABLE;
use super::*;
use crate::actuators::patroni::gate::{failover_target, reinitialize_target};
use crate::hostile_json::{Edit, any_body, any_json, config, edited, edited_once, nearest_key};
use crate::probes::Outcome;

fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/patroni")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Captured `/patroni` answers, in their variety (leader, replica, paused, crashed…).
const STATUS_FIXTURES: [&str; 6] = [
    "healthy.leader.GET_patroni.200.json",
    "healthy.replica.GET_patroni.200.json",
    "lagging.replica.GET_patroni.200.json",
    "paused.leader.GET_patroni.200.json",
    "scheduled.leader.GET_patroni.200.json",
    "etcd-down.old-leader.GET_patroni.200.json",
];

/// Captured `/cluster` answers.
const CLUSTER_FIXTURES: [&str; 5] = [
    "healthy.leader.GET_cluster.200.json",
    "lagging.leader.GET_cluster.200.json",
    "scheduled.leader.GET_cluster.200.json",
    "replica-stopped.leader.GET_cluster.200.json",
    "leader-crashed.replica.GET_cluster.200.json",
];

fn one_of(names: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::sample::select(names).prop_map(fixture)
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

/// Checks that a decode error about an edit names the edited field.
fn names_the_field(err: &DecodeError, path: &[crate::hostile_json::Step], edit: &Edit) {
    let DecodeError::Shape(message) = err else {
        panic!("a JSON document is never malformed: {err}");
    };
    let field = match edit {
        Edit::AddKey(k, _) => Some(k.as_str()),
        _ => nearest_key(path),
    };
    if let Some(field) = field {
        assert!(message.contains(field), "`{field}` not named in: {message}");
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn any_bytes_decode_or_fail_with_a_code(body in any_body()) {
        for e in [decode_status(&body).err(), decode_cluster(&body).err()].into_iter().flatten() {
            prop_assert!(UNREADABLE.contains(&e.kind()), "{e}");
            prop_assert!(!e.to_string().is_empty());
        }
    }

    #[test]
    fn any_json_decodes_or_fails_with_a_code(v in any_json()) {
        let body = bytes(&v);
        for e in [decode_status(&body).err(), decode_cluster(&body).err()].into_iter().flatten() {
            prop_assert_eq!(e.kind(), "bad_json");
        }
    }

    #[test]
    fn an_edited_status_answer_decodes_or_names_the_field(
        (doc, path, edit) in one_of(&STATUS_FIXTURES).prop_flat_map(edited_once)
    ) {
        if let Err(e) = decode_status(&bytes(&doc)) {
            names_the_field(&e, &path, &edit);
        }
    }

    #[test]
    fn an_edited_cluster_answer_decodes_or_names_the_field(
        (doc, path, edit) in one_of(&CLUSTER_FIXTURES).prop_flat_map(edited_once)
    ) {
        if let Err(e) = decode_cluster(&bytes(&doc)) {
            names_the_field(&e, &path, &edit);
        }
    }
}

/// What one member answered this run, as bytes.
#[derive(Clone)]
struct Answers {
    status: Vec<u8>,
    cluster: Vec<u8>,
}

impl std::fmt::Debug for Answers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answers")
            .field("status", &String::from_utf8_lossy(&self.status))
            .field("cluster", &String::from_utf8_lossy(&self.cluster))
            .finish()
    }
}

/// An answer that is the captured one, an edited one, or anything at all.
fn answer(doc: Value) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => Just(bytes(&doc)),
        3 => edited(doc).prop_map(|d| bytes(&d)),
        1 => any_body(),
    ]
}

/// A healthy three-member cluster's answers, each possibly broken.
fn cluster_answers() -> impl Strategy<Value = Vec<Answers>> {
    let member = |status: &'static str| {
        (
            answer(fixture(status)),
            answer(fixture("healthy.leader.GET_cluster.200.json")),
        )
            .prop_map(|(status, cluster)| Answers { status, cluster })
    };
    (
        member("healthy.leader.GET_patroni.200.json"),
        member("healthy.replica.GET_patroni.200.json"),
        member("healthy.replica.GET_patroni.200.json"),
    )
        .prop_map(|(a, b, c)| vec![a, b, c])
}

/// The view the probe builds from those answers (names configured, no SQL fallback).
fn view_of(answers: &[Answers]) -> PatroniView {
    let inputs = answers
        .iter()
        .enumerate()
        .map(|(i, a)| MemberInput {
            url: format!("http://127.0.0.1:{}", 28008 + i),
            name: format!("pg{}", i + 1),
            status: status_answer(200, &a.status),
            cluster: cluster_answer(200, &a.cluster),
            sql_primary: None,
        })
        .collect();
    PatroniView::assemble("pg".into(), 1024 * 1024, inputs)
}

#[test]
fn the_captured_answers_make_a_healthy_cluster() {
    let answers: Vec<Answers> = [
        "healthy.leader.GET_patroni.200.json",
        "healthy.replica.GET_patroni.200.json",
        "healthy.replica.GET_patroni.200.json",
    ]
    .into_iter()
    .map(|s| Answers {
        status: bytes(&fixture(s)),
        cluster: bytes(&fixture("healthy.leader.GET_cluster.200.json")),
    })
    .collect();
    let finding = assess(&view_of(&answers));
    assert_eq!(finding.outcome, Outcome::Healthy, "{}", finding.detail);
}

proptest! {
    #![proptest_config(config(128))]

    /// The property the issue asks for: a malformed answer never yields Healthy, Failed or
    /// Degraded (which rules act on), only `Unknown` with a named reason, and every action's
    /// preconditions hold. Two members that clearly say they are primary stay a split brain.
    #[test]
    fn an_unreadable_answer_is_unknown_and_holds_actions(answers in cluster_answers()) {
        let view = view_of(&answers);
        let finding = assess(&view);
        prop_assert!(!finding.detail.is_empty());
        if view.unreadable.is_empty() {
            return Ok(());
        }
        let split_brain = view.leaders().len() >= 2;
        if split_brain {
            prop_assert_eq!(&finding.outcome, &Outcome::failed("split_brain"));
        } else {
            prop_assert_eq!(&finding.outcome, &Outcome::unknown("unreadable_answer"), "{}", finding.detail);
            prop_assert!(finding.detail.contains(&view.unreadable[0].0), "{}", finding.detail);
        }
        prop_assert!(failover_target(&view).is_err());
        prop_assert!(reinitialize_target(&view).is_err());
    }

    /// Every undecodable answer is in the view's `unreadable` list, under its member.
    #[test]
    fn every_unreadable_answer_is_listed(answers in cluster_answers()) {
        let view = view_of(&answers);
        let expected: Vec<String> = answers
            .iter()
            .enumerate()
            .flat_map(|(i, a)| {
                let name = format!("pg{}", i + 1);
                let status = decode_status(&a.status).is_err().then(|| name.clone());
                let cluster = decode_cluster(&a.cluster).is_err().then_some(name);
                status.into_iter().chain(cluster)
            })
            .collect();
        let listed: Vec<&String> = view.unreadable.iter().map(|(n, _)| n).collect();
        prop_assert_eq!(listed.len(), expected.len());
        for (l, e) in listed.iter().zip(&expected) {
            prop_assert_eq!(*l, e);
        }
    }
}

/// Found by `an_unreadable_answer_is_unknown_and_holds_actions` before the fix: the leader's
/// `/patroni` answer had one field retyped (`"timeline": "1"`), so it counted as down; with the
/// replicas answering, the view had no leader and the probe said `Failed no_leader`, which
/// the failover rule acts on, and `failover_target` picked pg2.
#[test]
fn a_leader_answering_garbage_is_unknown_not_no_leader() {
    let mut leader = fixture("healthy.leader.GET_patroni.200.json");
    leader["timeline"] = Value::String("1".into());
    let answers: Vec<Answers> = [
        leader,
        fixture("healthy.replica.GET_patroni.200.json"),
        fixture("healthy.replica.GET_patroni.200.json"),
    ]
    .iter()
    .map(|s| Answers {
        status: bytes(s),
        cluster: bytes(&fixture("healthy.leader.GET_cluster.200.json")),
    })
    .collect();
    let view = view_of(&answers);
    let finding = assess(&view);
    assert_eq!(finding.outcome, Outcome::unknown("unreadable_answer"));
    assert!(
        finding.detail.starts_with(
            "cannot read the answer of pg1 (GET /patroni: unexpected JSON: timeline: invalid type"
        ),
        "{}",
        finding.detail
    );
    assert_eq!(
        failover_target(&view).unwrap_err().code(),
        "unreadable_answer"
    );
}
