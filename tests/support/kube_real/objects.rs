//! Creating the tests' objects on the real plane, from the same shapes the fake is seeded
//! with (`kube_api::objects`): the server drops a status sent on create and writes its own.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams};
use serde_json::Value;

use crate::support::kube_api::objects;

/// Creates Deployment `name` (`app: name` pods, two containers) with `replicas` replicas.
pub async fn deployment(client: &kube::Client, ns: &str, name: &str, replicas: i64) -> Deployment {
    let d: Deployment = serde_json::from_value(objects::deployment(ns, name, replicas, 0)).unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &d)
        .await
        .unwrap_or_else(|e| panic!("create deployment {ns}/{name}: {e}"))
}

pub async fn configmap(client: &kube::Client, ns: &str, name: &str, data: Value) -> ConfigMap {
    let c: ConfigMap = serde_json::from_value(objects::configmap(ns, name, data)).unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &c)
        .await
        .unwrap_or_else(|e| panic!("create configmap {ns}/{name}: {e}"))
}

/// The ReplicaSets of Deployment `name`, oldest revision first.
pub async fn replica_sets(client: &kube::Client, ns: &str, name: &str) -> Vec<ReplicaSet> {
    let mut sets: Vec<ReplicaSet> = Api::<ReplicaSet>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.kind == "Deployment" && o.name == name)
        })
        .collect();
    sets.sort_by_key(revision);
    sets
}

/// `deployment.kubernetes.io/revision` of a ReplicaSet.
pub fn revision(rs: &ReplicaSet) -> u64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Every pod of a ReplicaSet (by its `pod-template-hash`), terminating ones included.
pub async fn pods_of(client: &kube::Client, ns: &str, rs: &ReplicaSet) -> Vec<Pod> {
    let hash = rs
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .unwrap_or_default();
    Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("pod-template-hash={hash}")))
        .await
        .unwrap()
        .items
}
