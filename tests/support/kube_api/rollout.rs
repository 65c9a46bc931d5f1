//! A simulated Deployment controller: after a write that moves `metadata.generation` (a
//! restart annotation, a scale, a resources patch), the status goes through the controller's
//! steps after a delay: first `observedGeneration` with one updated replica, then every
//! replica updated, ready and available. A stuck rollout never gets past the first step.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::Shared;
use super::store::Key;

/// How the simulated controller treats the next rollouts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rollout {
    /// Completes after this delay.
    Completes(Duration),
    /// Stays at one updated replica, never available.
    Stuck,
}

/// Called after every successful API write.
pub fn after_write(shared: &Arc<Shared>, key: &Key, before: Option<&Value>, after: &Value) {
    if key.resource != "deployments" {
        return;
    }
    let generation = |o: &Value| o["metadata"]["generation"].as_i64();
    if before.and_then(generation) == generation(after) {
        return;
    }
    let shared = shared.clone();
    let mode = *shared.rollout.lock().unwrap();
    let key = key.clone();
    tokio::spawn(async move {
        let step = match mode {
            Rollout::Completes(d) => d / 2,
            Rollout::Stuck => Duration::from_millis(50),
        };
        tokio::time::sleep(step).await;
        set_status(&shared, &key, |spec_replicas, status| {
            json!({
                "replicas": spec_replicas,
                "updatedReplicas": spec_replicas.min(1),
                "readyReplicas": status["readyReplicas"],
                "availableReplicas": status["availableReplicas"],
                "unavailableReplicas": spec_replicas.min(1),
            })
        });
        if mode == Rollout::Stuck {
            return;
        }
        tokio::time::sleep(step).await;
        set_status(&shared, &key, |spec_replicas, _| {
            json!({
                "replicas": spec_replicas,
                "updatedReplicas": spec_replicas,
                "readyReplicas": spec_replicas,
                "availableReplicas": spec_replicas,
            })
        });
    });
}

/// Writes a status built from (spec.replicas, old status), with the current generation
/// observed. A rollout overtaken by a newer generation leaves it to the newer one.
fn set_status(shared: &Arc<Shared>, key: &Key, build: impl Fn(i64, &Value) -> Value) {
    let mut store = shared.store.lock().unwrap();
    let Some(mut d) = store.get(key).cloned() else {
        return;
    };
    let replicas = d["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut status = build(replicas, &d["status"]);
    status["observedGeneration"] = d["metadata"]["generation"].clone();
    if let Some(map) = status.as_object_mut() {
        map.retain(|_, v| !v.is_null());
    }
    d["status"] = status;
    // Same resourceVersion: this is the controller's own read-modify-write.
    let _ = store.replace(key, d);
}
