//! What the real-plane tests share: deadlines, a Deployment's counts, the Events of a
//! namespace.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ListParams};
use tokio::time::Instant;

pub fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// (replicas, updated, ready, available) of a Deployment's status.
pub type Counts = (i32, i32, i32, i32);

pub fn counts(d: &Deployment) -> Counts {
    let s = d.status.clone().unwrap_or_default();
    (
        s.replicas.unwrap_or(0),
        s.updated_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

pub async fn event_reasons(client: &kube::Client, ns: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}
