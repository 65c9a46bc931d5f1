//! Nodes made by the harness: created, the `node.kubernetes.io/not-ready` taint the
//! TaintNodesByCondition admission adds at creation removed (nothing else would: the
//! nodelifecycle controller is off), then Ready=True and no pressure, written with a
//! strategic-merge patch on `nodes/NAME/status` (merged by condition `type`; a JSON merge
//! patch would replace the whole list).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// The label every harness Node carries: the namespace of the test that made it.
pub const OWNER_LABEL: &str = "astreinte.test/namespace";

/// Creates a Ready node `name` labelled with the test's namespace and `labels`.
pub async fn create(client: &kube::Client, name: &str, owner: &str, labels: &[(&str, &str)]) {
    let nodes: Api<Node> = Api::all(client.clone());
    let mut all: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.insert(OWNER_LABEL.into(), owner.into());
    all.insert("kubernetes.io/hostname".into(), name.into());
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": all },
    }))
    .unwrap();
    nodes
        .create(&PostParams::default(), &node)
        .await
        .unwrap_or_else(|e| panic!("create node {name}: {e}"));
    nodes
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "taints": null } })),
        )
        .await
        .unwrap_or_else(|e| panic!("untaint node {name}: {e}"));
    for kind in ["MemoryPressure", "DiskPressure", "PIDPressure"] {
        set_condition(client, name, kind, "False").await;
    }
    set_condition(client, name, "Ready", "True").await;
}

/// Sets one condition (`Ready`, `MemoryPressure`…) of a node to `"True"`/`"False"`, the
/// others kept (strategic merge by `type`).
pub async fn set_condition(client: &kube::Client, name: &str, kind: &str, status: &str) {
    let nodes: Api<Node> = Api::all(client.clone());
    let now = jiff::Timestamp::now().round(jiff::Unit::Second).unwrap();
    let reason = match (kind, status) {
        ("Ready", "True") => "KubeletReady",
        ("Ready", _) => "KubeletNotReady",
        (_, "False") => "KubeletHasSufficientResources",
        _ => "KubeletHasPressure",
    };
    let patch = json!({ "status": { "conditions": [{
        "type": kind, "status": status, "reason": reason, "message": "set by the test harness",
        "lastHeartbeatTime": now, "lastTransitionTime": now,
    }] } });
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap_or_else(|e| panic!("set {kind}={status} on node {name}: {e}"));
}
