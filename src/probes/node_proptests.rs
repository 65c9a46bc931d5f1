//! Property tests of the node judgement on hostile Node objects: a real node's JSON with
//! one part removed or retyped (conditions gone, duplicated, `status: "yes"`, transition
//! times in the future…). Never a panic; a node whose Ready condition cannot be read makes
//! the probe `Unknown`, never `Failed` (a rule could act on that) nor `Healthy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::hostile_json::{config, edited};

fn condition(kind: &str, status: &str) -> Value {
    json!({
        "type": kind, "status": status,
        "lastHeartbeatTime": "2026-11-23T10:00:00Z",
        "lastTransitionTime": "2026-11-20T10:00:00Z",
        "reason": format!("Kubelet{kind}"), "message": "kubelet is posting ready status"
    })
}

/// A node as `kubectl get node -o json` shows it (trimmed to what is read).
fn node_json(name: &str, ready: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name } },
        "spec": { "podCIDR": "10.42.0.0/24" },
        "status": { "conditions": [
            condition("MemoryPressure", "False"),
            condition("DiskPressure", "False"),
            condition("PIDPressure", "False"),
            condition("Ready", ready),
        ] }
    })
}

fn now() -> jiff::Timestamp {
    "2026-11-23T10:05:00Z".parse().unwrap()
}

/// 1 to 4 nodes, each the real shape (Ready or not) or an edited one; those Kubernetes'
/// own types refuse are dropped (the watch would not deliver them).
fn nodes() -> impl Strategy<Value = Vec<Arc<Node>>> {
    let one = (
        "[a-z]{1,6}",
        prop::sample::select(vec!["True", "False", "Unknown"]),
        any::<bool>(),
    )
        .prop_flat_map(|(name, ready, edit)| {
            let doc = node_json(&name, ready);
            if edit {
                edited(doc).boxed()
            } else {
                Just(doc).boxed()
            }
        });
    prop::collection::vec(one, 1..5).prop_map(|docs| {
        docs.into_iter()
            .filter_map(|d| serde_json::from_value::<Node>(d).ok())
            .map(Arc::new)
            .collect()
    })
}

/// The Ready statuses of a node, as Kubernetes writes them.
fn ready_statuses(node: &Node) -> Vec<&str> {
    node.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
        .collect()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn a_node_that_cannot_be_read_is_unknown(nodes in nodes()) {
        let f = assess("n", &nodes, now());
        prop_assert!(!f.detail.is_empty());
        let readable = |n: &Node| {
            let ready = ready_statuses(n);
            matches!(ready.as_slice(), [s] if ["True", "False", "Unknown"].contains(s))
        };
        if nodes.is_empty() {
            prop_assert_eq!(f.outcome, Outcome::unknown("no_nodes"));
        } else if !nodes.iter().all(|n| readable(n)) {
            prop_assert_eq!(&f.outcome, &Outcome::unknown("node_status_unreadable"), "{}", f.detail);
        } else {
            let not_ready = nodes.iter().filter(|n| ready_statuses(n) != ["True"]).count();
            match not_ready {
                0 => {
                    let fine = matches!(f.outcome, Outcome::Healthy | Outcome::Degraded { .. });
                    prop_assert!(fine, "{}", f.detail);
                }
                n if n == nodes.len() => prop_assert_eq!(f.outcome, Outcome::failed("cluster_down")),
                _ => prop_assert_eq!(f.outcome, Outcome::failed("node_not_ready")),
            }
        }
    }
}

/// Found by `a_node_that_cannot_be_read_is_unknown` before the fix: a node whose Ready
/// condition was missing (a node registering, or a garbled object) counted as NotReady, so a
/// one-node cluster was `Failed cluster_down`.
#[test]
fn a_node_without_a_ready_condition_is_unknown_not_down() {
    let mut doc = node_json("a", "True");
    doc["status"]["conditions"]
        .as_array_mut()
        .unwrap()
        .retain(|c| c["type"] != "Ready");
    let bare: Node = serde_json::from_value(doc).unwrap();
    let ready: Node = serde_json::from_value(node_json("b", "False")).unwrap();
    let f = assess("n", &[Arc::new(bare), Arc::new(ready)], now());
    assert_eq!(f.outcome, Outcome::unknown("node_status_unreadable"));
    assert_eq!(
        f.detail,
        "cannot read the Ready condition of 1 of 2 nodes: a"
    );
    let mut yes = node_json("c", "True");
    yes["status"]["conditions"][3]["status"] = json!("yes");
    let yes: Node = serde_json::from_value(yes).unwrap();
    let f = assess("n", &[Arc::new(yes)], now());
    assert_eq!(f.outcome, Outcome::unknown("node_status_unreadable"));
}
