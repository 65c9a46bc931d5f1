//! `kind = "node"`: the Ready and pressure conditions of every node (or those a label selector
//! picks), read from a watch-backed store (`node_watch`), not a list per tick.
//!
//! Every node Ready → `Healthy`; some NotReady → `Failed node_not_ready` (the detail names
//! them and for how long); every node NotReady → `Failed cluster_down`; Memory/Disk/PID
//! pressure → `Degraded node_pressure`. A node without exactly one Ready condition saying
//! `True`, `False` or `Unknown` cannot be read: `Unknown node_status_unreadable`, which no
//! rule acts on (a node just registering has no conditions yet). A watch the API has not
//! answered for `stale_after` → `Unknown watch_stale`: the last nodes it saw are not served
//! as the nodes now.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;

use super::node_watch::NodeWatches;
use super::{Finding, Measurement, Outcome};
use crate::config::NodeSpec;
use crate::metrics::GaugeName;

const PRESSURES: [&str; 3] = ["MemoryPressure", "DiskPressure", "PIDPressure"];

pub async fn probe(watches: &NodeWatches, id: &str, spec: &NodeSpec, timeout: Duration) -> Finding {
    let watch = watches.get(spec.label_selector.as_deref(), spec.stale_after);
    // Leave a little of the probe's own timeout to say why the store is not ready.
    let wait = timeout.mul_f64(0.8);
    if tokio::time::timeout(wait, watch.store.wait_until_ready())
        .await
        .is_err()
    {
        let why = watch.last_error().unwrap_or_else(|| "no answer yet".into());
        return Finding::new(
            Outcome::unknown("node_watch_not_ready"),
            format!("the node watch has not listed nodes yet: {why}"),
        );
    }
    // The store keeps the last nodes it saw: after `stale_after` without an answer of the
    // API, they say nothing about the nodes now.
    if let Some((silent, why)) = watch.stale(spec.stale_after) {
        return Finding::new(
            Outcome::unknown("watch_stale"),
            format!(
                "the node watch has had no answer from the kubernetes api for {} (stale after {}): {why}",
                humantime::format_duration(Duration::from_secs(silent.as_secs())),
                humantime::format_duration(spec.stale_after)
            ),
        );
    }
    assess(id, &watch.store.state(), jiff::Timestamp::now())
}

/// What a node's Ready condition says.
enum Readiness {
    Ready,
    /// `False`, or `Unknown` (the node controller lost the kubelet), since when.
    NotReady(Option<jiff::Timestamp>),
    /// No Ready condition, several, or a status Kubernetes does not write.
    Unreadable,
}

fn readiness(node: &Node) -> Readiness {
    let ready: Vec<_> = node
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .filter(|c| c.type_ == "Ready")
        .collect();
    match ready.as_slice() {
        [c] => match c.status.as_str() {
            "True" => Readiness::Ready,
            "False" | "Unknown" => {
                Readiness::NotReady(c.last_transition_time.as_ref().map(|t| t.0))
            }
            _ => Readiness::Unreadable,
        },
        _ => Readiness::Unreadable,
    }
}

/// Whether a condition (`DiskPressure`…) is `True` on the node.
fn under(node: &Node, kind: &str) -> bool {
    node.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| c.type_ == kind && c.status == "True")
}

fn name(node: &Node) -> &str {
    node.metadata.name.as_deref().unwrap_or("?")
}

/// Pure: the finding for a set of nodes at `now`.
pub fn assess(id: &str, nodes: &[Arc<Node>], now: jiff::Timestamp) -> Finding {
    if nodes.is_empty() {
        return Finding::new(Outcome::unknown("no_nodes"), "no node matches");
    }
    let mut measurements = Vec::new();
    let mut not_ready = Vec::new();
    let mut unreadable = Vec::new();
    let mut pressured = Vec::new();
    for node in nodes {
        let ready = readiness(node);
        if matches!(ready, Readiness::Unreadable) {
            unreadable.push(name(node));
            continue;
        }
        measurements.push(Measurement::new(
            GaugeName::NodeReady,
            &[("node", name(node))],
            f64::from(u8::from(matches!(ready, Readiness::Ready))),
        ));
        if let Readiness::NotReady(since) = ready {
            let since = since
                .and_then(|t| now.duration_since(t).try_into().ok())
                .map(|d: Duration| {
                    format!(
                        " for {}",
                        humantime::format_duration(Duration::from_secs(d.as_secs()))
                    )
                })
                .unwrap_or_default();
            not_ready.push(format!("{}{since}", name(node)));
        }
        for p in PRESSURES {
            if under(node, p) {
                pressured.push(format!("{} ({p})", name(node)));
            }
        }
    }
    let total = nodes.len();
    let count = not_ready.len();
    measurements.push(Measurement::new(
        GaugeName::NodesNotReady,
        &[("probe", id)],
        count as f64,
    ));
    let (outcome, detail) = if !unreadable.is_empty() {
        (
            Outcome::unknown("node_status_unreadable"),
            format!(
                "cannot read the Ready condition of {} of {total} nodes: {}",
                unreadable.len(),
                unreadable.join(", ")
            ),
        )
    } else if count == total {
        (
            Outcome::failed("cluster_down"),
            format!("all {total} nodes NotReady: {}", not_ready.join(", ")),
        )
    } else if count > 0 {
        (
            Outcome::failed("node_not_ready"),
            format!(
                "{count} of {total} nodes NotReady: {}",
                not_ready.join(", ")
            ),
        )
    } else if !pressured.is_empty() {
        (
            Outcome::degraded(pressured.len() as f64, "node_pressure"),
            format!("under pressure: {}", pressured.join(", ")),
        )
    } else {
        (Outcome::Healthy, format!("{total} nodes Ready"))
    };
    Finding {
        outcome,
        detail,
        measurements,
    }
}

#[cfg(test)]
#[path = "node_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: &str, pressure: Option<&str>) -> Arc<Node> {
        let mut conditions = vec![serde_json::json!({
            "type": "Ready", "status": ready, "lastTransitionTime": "2026-01-01T00:00:00Z"
        })];
        if let Some(p) = pressure {
            conditions.push(serde_json::json!({ "type": p, "status": "True" }));
        }
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "metadata": { "name": name }, "status": { "conditions": conditions }
            }))
            .unwrap(),
        )
    }

    fn at() -> jiff::Timestamp {
        "2026-01-01T00:05:00Z".parse().unwrap()
    }

    #[test]
    fn all_ready_is_healthy() {
        let f = assess(
            "n",
            &[node("a", "True", None), node("b", "True", None)],
            at(),
        );
        assert_eq!(f.outcome, Outcome::Healthy);
        assert_eq!(f.detail, "2 nodes Ready");
    }

    #[test]
    fn one_not_ready_names_it_and_how_long() {
        let f = assess(
            "n",
            &[node("a", "True", None), node("b", "Unknown", None)],
            at(),
        );
        assert_eq!(f.outcome, Outcome::failed("node_not_ready"));
        assert_eq!(f.detail, "1 of 2 nodes NotReady: b for 5m");
    }

    #[test]
    fn all_not_ready_is_cluster_down() {
        let f = assess(
            "n",
            &[node("a", "False", None), node("b", "False", None)],
            at(),
        );
        assert_eq!(f.outcome, Outcome::failed("cluster_down"));
    }

    #[test]
    fn pressure_is_degraded() {
        let f = assess("n", &[node("a", "True", Some("DiskPressure"))], at());
        assert_eq!(f.outcome, Outcome::degraded(1.0, "node_pressure"));
        assert!(f.detail.contains("a (DiskPressure)"), "{}", f.detail);
    }
}
