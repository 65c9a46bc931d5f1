//! Property tests of `rollout_state` on hostile Deployments: the real shape with one part
//! removed or retyped, or a count negative or at the `i32` limits. Never a panic, and never
//! "complete" unless the status has seen the current generation and every count equals the
//! (non-negative) desired replicas: a garbled object must not verify a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Repeated from the parent's `#[cfg(test)] mod`: this whole file is test code.
#[cfg(test)]
use k8s_openapi::api::apps::v1::Deployment;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::rollout_state;
use crate::hostile_json::{config, deployment_json, edited};

const COUNTS: [&str; 6] = [
    "/spec/replicas",
    "/status/availableReplicas",
    "/status/updatedReplicas",
    "/status/readyReplicas",
    "/status/observedGeneration",
    "/metadata/generation",
];

fn deployments() -> impl Strategy<Value = Option<Deployment>> {
    let extreme = prop::sample::select(vec![-1i64, 0, 2, i64::from(i32::MIN), i64::from(i32::MAX)]);
    (0i32..4)
        .prop_flat_map(move |n| {
            let doc = deployment_json(n);
            let without_status = {
                let mut d = doc.clone();
                d.as_object_mut().unwrap().remove("status");
                d
            };
            let pointed = doc.clone();
            prop_oneof![
                Just(doc.clone()),
                edited(doc),
                Just(without_status),
                (prop::sample::select(&COUNTS[..]), extreme.clone()).prop_map(move |(at, v)| {
                    let mut d = pointed.clone();
                    *d.pointer_mut(at).unwrap() = json!(v);
                    d
                }),
            ]
        })
        .prop_map(|d: Value| serde_json::from_value(d).ok())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn complete_only_on_a_status_that_says_so(d in deployments()) {
        let Some(d) = d else {
            return Ok(());
        };
        let (done, sentence) = rollout_state(&d);
        prop_assert!(!sentence.is_empty());
        if done {
            let s = d.status.as_ref().unwrap();
            let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            prop_assert!(desired >= 0);
            prop_assert!(s.observed_generation.unwrap() >= d.metadata.generation.unwrap_or(0));
            for n in [s.updated_replicas, s.ready_replicas, s.available_replicas] {
                prop_assert_eq!(n.unwrap_or(0), desired);
            }
        }
    }
}

/// Found while writing `complete_only_on_a_status_that_says_so` (the old code, read against
/// the property): a Deployment without a
/// status at 0 replicas, or with `replicas: -1` and every count at -1, read as a complete
/// rollout (so a restart would be verified on nothing).
#[test]
fn no_status_or_negative_counts_never_complete() {
    let mut doc = deployment_json(0);
    doc.as_object_mut().unwrap().remove("status");
    doc["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("generation");
    let d: Deployment = serde_json::from_value(doc).unwrap();
    assert_eq!(
        rollout_state(&d),
        (false, "no status yet (generation 0)".to_owned())
    );
    let d: Deployment = serde_json::from_value(deployment_json(-1)).unwrap();
    assert!(!rollout_state(&d).0);
    let d: Deployment = serde_json::from_value(deployment_json(2)).unwrap();
    assert!(rollout_state(&d).0);
}

/// Issue 14, defect 1 (seen on a real kube-apiserver 1.26): 4 replicas in the status, 3
/// updated, 3 ready, 3 available of 3 desired, the old ReplicaSet still with a pod. The old
/// rule declared the rollout complete; kubectl's (`status.replicas` > updated: old replicas
/// pending termination) does not.
#[test]
fn old_replicas_pending_termination_are_not_complete() {
    let mut doc = deployment_json(3);
    doc["status"]["replicas"] = json!(4);
    let d: Deployment = serde_json::from_value(doc).unwrap();
    let (done, sentence) = rollout_state(&d);
    assert!(!done, "{sentence}");
    assert!(sentence.contains("1 old pending termination"), "{sentence}");
    let mut doc = deployment_json(3);
    doc["status"]["availableReplicas"] = json!(2);
    let d: Deployment = serde_json::from_value(doc).unwrap();
    assert!(!rollout_state(&d).0, "an updated replica not yet available");
}

/// kubectl fails `rollout status` on a Progressing condition `ProgressDeadlineExceeded`.
#[test]
fn a_progress_deadline_exceeded_condition_fails_the_rollout() {
    let mut doc = deployment_json(3);
    doc["status"]["conditions"][1] = json!({
        "type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
        "message": "ReplicaSet \"api-5d\" has timed out progressing."
    });
    let d: Deployment = serde_json::from_value(doc).unwrap();
    let why = super::progress_deadline_exceeded(&d).unwrap();
    assert!(
        why.starts_with("progress deadline exceeded: ReplicaSet"),
        "{why}"
    );
    let d: Deployment = serde_json::from_value(deployment_json(3)).unwrap();
    assert_eq!(super::progress_deadline_exceeded(&d), None);
}
