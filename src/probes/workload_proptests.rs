//! Property tests of the workload judgement on hostile Deployment and Pod objects: the real
//! shapes with one part removed or retyped (no status, negative or huge replica counts,
//! restart counts at `i32::MAX`, unknown phases). Never a panic; a Deployment whose status
//! cannot be read is `Unknown`, never `Failed`/`Degraded` (which a rule acts on) nor
//! `Healthy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::hostile_json::{config, deployment_json, edited};

fn pod_json(name: &str) -> Value {
    json!({
        "metadata": { "name": name, "labels": { "app": "api" } },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                { "name": "api", "ready": true, "restartCount": 0, "image": "api:1",
                  "imageID": "x", "state": { "running": { "startedAt": "2026-11-23T10:00:00Z" } } },
                { "name": "sidecar", "ready": true, "restartCount": 2, "image": "s:1",
                  "imageID": "y", "state": { "running": {} } }
            ]
        }
    })
}

fn maybe_edited(doc: Value) -> BoxedStrategy<Value> {
    prop_oneof![1 => Just(doc.clone()), 3 => edited(doc)].boxed()
}

/// The replica counts, where a bad value does the most harm.
const COUNTS: [&str; 5] = [
    "/spec/replicas",
    "/status/availableReplicas",
    "/status/updatedReplicas",
    "/status/readyReplicas",
    "/status/observedGeneration",
];

/// A Deployment with its status gone, or one count negative, zero or at the `i32` limits.
fn bad_counts(doc: Value) -> BoxedStrategy<Value> {
    let extreme = prop::sample::select(vec![-1i64, 0, i64::from(i32::MIN), i64::from(i32::MAX)]);
    prop_oneof![
        Just({
            let mut d = doc.clone();
            d.as_object_mut().unwrap().remove("status");
            d
        }),
        (prop::sample::select(&COUNTS[..]), extreme).prop_map(move |(at, n)| {
            let mut d = doc.clone();
            *d.pointer_mut(at).unwrap() = json!(n);
            d
        }),
    ]
    .boxed()
}

/// A Deployment and its pods, each the real shape or edited; objects Kubernetes' own types
/// refuse are dropped (the API client would not return them).
fn objects() -> impl Strategy<Value = Option<(Deployment, Vec<Pod>)>> {
    (
        (0i32..5).prop_flat_map(|n| {
            let doc = deployment_json(n);
            prop_oneof![maybe_edited(doc.clone()), bad_counts(doc)]
        }),
        prop::collection::vec(
            "[a-z]{1,5}".prop_flat_map(|n| maybe_edited(pod_json(&n))),
            0..4,
        ),
    )
        .prop_map(|(d, pods)| {
            let d: Deployment = serde_json::from_value(d).ok()?;
            let pods = pods
                .into_iter()
                .filter_map(|p| serde_json::from_value(p).ok())
                .collect();
            Some((d, pods))
        })
}

/// Whether the counts a judgement needs are there and make sense.
fn readable(d: &Deployment) -> bool {
    let Some(status) = &d.status else {
        return false;
    };
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    [
        Some(desired),
        status.available_replicas,
        status.updated_replicas,
    ]
    .into_iter()
    .flatten()
    .all(|n| n >= 0)
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn an_unreadable_deployment_is_unknown(objects in objects()) {
        let Some((d, pods)) = objects else {
            return Ok(());
        };
        let restarted: Vec<String> = pods.iter().map(pod_name).take(1).collect();
        let f = assess("w", &d, &pods, &restarted);
        prop_assert!(!f.detail.is_empty());
        if !readable(&d) {
            prop_assert_eq!(&f.outcome, &Outcome::unknown("deployment_status_unreadable"), "{}", f.detail);
        } else if f.outcome.is_healthy() {
            let s = d.status.clone().unwrap();
            let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            prop_assert!(s.available_replicas.unwrap_or(0) >= desired);
        }
    }

    #[test]
    fn restart_counts_never_overflow(counts in prop::collection::vec(any::<i32>(), 0..4)) {
        let statuses: Vec<Value> = counts
            .iter()
            .enumerate()
            .map(|(i, n)| json!({ "name": format!("c{i}"), "ready": true, "restartCount": n,
                                  "image": "", "imageID": "" }))
            .collect();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": { "name": "p" }, "status": { "containerStatuses": statuses }
        }))
        .unwrap();
        let total = restart_count(&pod);
        let expected: i64 = counts.iter().map(|n| i64::from(*n).max(0)).sum();
        prop_assert_eq!(i64::from(total), expected.min(i64::from(i32::MAX)));
    }
}

/// Found by `an_unreadable_deployment_is_unknown` before the fix: a Deployment with no
/// status (just created, or a garbled object) was `Failed no_replicas_available` (or
/// `Healthy` with 0 replicas); `replicas: 2147483647` with `availableReplicas: -1` panicked
/// on `desired - available` (an overflow; a wrapped negative value in release builds).
#[test]
fn no_status_or_negative_counts_are_unknown_and_never_overflow() {
    let mut doc = deployment_json(3);
    doc.as_object_mut().unwrap().remove("status");
    let d: Deployment = serde_json::from_value(doc).unwrap();
    let f = assess("w", &d, &[], &[]);
    assert_eq!(f.outcome, Outcome::unknown("deployment_status_unreadable"));
    assert_eq!(f.detail, "deployment api has no status yet");
    let mut doc = deployment_json(i32::MAX);
    doc["status"]["availableReplicas"] = json!(-1);
    let d: Deployment = serde_json::from_value(doc).unwrap();
    let f = assess("w", &d, &[], &[]);
    assert_eq!(f.outcome, Outcome::unknown("deployment_status_unreadable"));
    let mut doc = deployment_json(i32::MAX);
    doc["status"]["availableReplicas"] = json!(0);
    let d: Deployment = serde_json::from_value(doc).unwrap();
    assert_eq!(
        assess("w", &d, &[], &[]).outcome,
        Outcome::failed("no_replicas_available")
    );
}

/// Found by `restart_counts_never_overflow`: two containers at `restartCount: 2147483647`
/// overflowed the sum (a panic in debug builds).
#[test]
fn restart_counts_saturate() {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "p" }, "status": { "containerStatuses": [
            { "name": "a", "ready": true, "restartCount": i32::MAX, "image": "", "imageID": "" },
            { "name": "b", "ready": true, "restartCount": i32::MAX, "image": "", "imageID": "" },
            { "name": "c", "ready": true, "restartCount": -5, "image": "", "imageID": "" }
        ] }
    }))
    .unwrap();
    assert_eq!(restart_count(&pod), i32::MAX);
}
