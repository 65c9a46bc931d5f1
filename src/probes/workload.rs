//! `kind = "workload"`: a Deployment's desired / updated / available replicas and its pods
//! (by the Deployment's selector): not Running or in CrashLoopBackOff, and restart counts that
//! grew since the last tick.
//!
//! 0 available → `Failed no_replicas_available`; fewer than desired → `Degraded
//! replicas_unavailable`; pods stuck → `Degraded pods_not_running`; a restart since the last
//! tick → `Degraded pod_restarted`. No status yet, or negative counts → `Unknown
//! deployment_status_unreadable` (never acted on).

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::Api;
use kube::api::ListParams;

use super::{Finding, Measurement, Outcome};
use crate::clients::kube::{Error, Op};
use crate::config::WorkloadSpec;
use crate::metrics::GaugeName;

/// Container waiting reasons that mean the pod is stuck, not starting.
const STUCK: [&str; 4] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
];

/// Restart counts per pod seen at the last tick, per probe.
#[derive(Default)]
pub struct RestartMemory(Mutex<HashMap<String, HashMap<String, i32>>>);

impl RestartMemory {
    /// Stores `now` for `probe` and returns the pods whose count grew since the last call.
    fn grown(&self, probe: &str, now: HashMap<String, i32>) -> Vec<String> {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let mut grown: Vec<String> = match all.get(probe) {
            Some(before) => now
                .iter()
                .filter(|(pod, n)| before.get(*pod).is_some_and(|b| *n > b))
                .map(|(pod, _)| pod.clone())
                .collect(),
            None => Vec::new(),
        };
        grown.sort();
        all.insert(probe.to_owned(), now);
        grown
    }
}

/// `app=x,tier in (a,b)`: a LabelSelector as a query string.
pub fn selector_string(s: &LabelSelector) -> String {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

fn unknown(e: &Error) -> Finding {
    Finding::new(Outcome::unknown(e.kind()), e.to_string())
}

pub async fn probe(
    client: &kube::Client,
    memory: &RestartMemory,
    id: &str,
    spec: &WorkloadSpec,
) -> Finding {
    let ns = &spec.namespace;
    let get = Op::new("get", "deployments.apps", ns, &spec.deployment);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let deployment = match deployments.get(&spec.deployment).await {
        Ok(d) => d,
        Err(e) => {
            let e = Error::from_kube(e, &get);
            return if e.is_not_found() {
                Finding::new(Outcome::failed("deployment_not_found"), e.to_string())
            } else {
                unknown(&e)
            };
        }
    };
    let selector = deployment
        .spec
        .as_ref()
        .map(|s| selector_string(&s.selector))
        .unwrap_or_default();
    let list = Op::new("list", "pods", ns, "");
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pods = match pods.list(&ListParams::default().labels(&selector)).await {
        Ok(l) => l.items,
        Err(e) => return unknown(&Error::from_kube(e, &list)),
    };
    let restarts = pods
        .iter()
        .map(|p| (pod_name(p), restart_count(p)))
        .collect();
    let grown = memory.grown(id, restarts);
    assess(id, &deployment, &pods, &grown)
}

fn pod_name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

/// The pod's restarts over its containers (a negative count is read as 0; the sum stops at
/// `i32::MAX` rather than overflow).
fn restart_count(p: &Pod) -> i32 {
    let total: i64 = p
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| i64::from(c.restart_count.max(0)))
        .sum();
    i32::try_from(total).unwrap_or(i32::MAX)
}

/// Why a pod is not serving (`Pending`, `CrashLoopBackOff`), or `None` when it runs.
fn stuck_reason(p: &Pod) -> Option<String> {
    let status = p.status.as_ref()?;
    let waiting = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .find(|r| STUCK.contains(&r.as_str()));
    if waiting.is_some() {
        return waiting;
    }
    match status.phase.as_deref() {
        Some("Running" | "Succeeded") => None,
        other => Some(other.unwrap_or("Unknown").to_owned()),
    }
}

/// Pure: the finding for a Deployment, its pods, and the pods that restarted since last tick.
pub fn assess(id: &str, d: &Deployment, pods: &[Pod], restarted: &[String]) -> Finding {
    let name = d.metadata.name.as_deref().unwrap_or("?");
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let Some(status) = &d.status else {
        return Finding::new(
            Outcome::unknown("deployment_status_unreadable"),
            format!("deployment {name} has no status yet"),
        );
    };
    let available = status.available_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    if desired < 0 || available < 0 || updated < 0 {
        return Finding::new(
            Outcome::unknown("deployment_status_unreadable"),
            format!(
                "deployment {name} has negative replica counts \
                 ({available}/{desired} available, {updated} updated)"
            ),
        );
    }
    let stuck: Vec<String> = pods
        .iter()
        .filter_map(|p| stuck_reason(p).map(|r| format!("{} ({r})", pod_name(p))))
        .collect();
    let labels = [("probe", id)];
    let measurements = vec![
        Measurement::new(
            GaugeName::WorkloadDesiredReplicas,
            &labels,
            f64::from(desired),
        ),
        Measurement::new(
            GaugeName::WorkloadAvailableReplicas,
            &labels,
            f64::from(available),
        ),
        Measurement::new(
            GaugeName::WorkloadPodsNotRunning,
            &labels,
            stuck.len() as f64,
        ),
    ];
    let mut detail =
        format!("deployment {name}: {available}/{desired} available, {updated} updated");
    if !stuck.is_empty() {
        detail.push_str(&format!("; not running: {}", stuck.join(", ")));
    }
    if !restarted.is_empty() {
        detail.push_str(&format!(
            "; restarted since last check: {}",
            restarted.join(", ")
        ));
    }
    let outcome = if desired > 0 && available == 0 {
        Outcome::failed("no_replicas_available")
    } else if available < desired {
        // Both are ≥ 0 here, so the difference fits.
        Outcome::degraded(f64::from(desired - available), "replicas_unavailable")
    } else if !stuck.is_empty() {
        Outcome::degraded(stuck.len() as f64, "pods_not_running")
    } else if !restarted.is_empty() {
        Outcome::degraded(restarted.len() as f64, "pod_restarted")
    } else {
        Outcome::Healthy
    };
    Finding {
        outcome,
        detail,
        measurements,
    }
}

#[cfg(test)]
#[path = "workload_proptests.rs"]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(desired: i32, available: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": { "name": "api" },
            "spec": { "replicas": desired, "selector": { "matchLabels": { "app": "api" } },
                      "template": {} },
            "status": { "availableReplicas": available, "updatedReplicas": desired },
        }))
        .unwrap()
    }

    fn pod(name: &str, phase: &str, waiting: Option<&str>) -> Pod {
        let state = waiting.map_or(
            json!({ "running": {} }),
            |r| json!({ "waiting": { "reason": r } }),
        );
        serde_json::from_value(json!({
            "metadata": { "name": name },
            "status": { "phase": phase, "containerStatuses": [
                { "name": "c", "ready": false, "restartCount": 3, "image": "", "imageID": "", "state": state }
            ] },
        }))
        .unwrap()
    }

    #[test]
    fn outcomes_in_order_of_gravity() {
        let ok = [pod("a", "Running", None)];
        assert_eq!(
            assess("w", &deployment(2, 2), &ok, &[]).outcome,
            Outcome::Healthy
        );
        assert_eq!(
            assess("w", &deployment(2, 0), &ok, &[]).outcome,
            Outcome::failed("no_replicas_available")
        );
        assert_eq!(
            assess("w", &deployment(3, 1), &ok, &[]).outcome,
            Outcome::degraded(2.0, "replicas_unavailable")
        );
        let crash = [pod("a", "Running", Some("CrashLoopBackOff"))];
        let f = assess("w", &deployment(2, 2), &crash, &[]);
        assert_eq!(f.outcome, Outcome::degraded(1.0, "pods_not_running"));
        assert!(f.detail.contains("a (CrashLoopBackOff)"), "{}", f.detail);
        let f = assess("w", &deployment(2, 2), &ok, &["a".into()]);
        assert_eq!(f.outcome, Outcome::degraded(1.0, "pod_restarted"));
    }

    #[test]
    fn restart_growth_needs_a_previous_tick() {
        let m = RestartMemory::default();
        assert!(m.grown("p", HashMap::from([("a".into(), 1)])).is_empty());
        assert!(m.grown("p", HashMap::from([("a".into(), 1)])).is_empty());
        assert_eq!(m.grown("p", HashMap::from([("a".into(), 2)])), vec!["a"]);
    }

    #[test]
    fn selector_forms() {
        let s: LabelSelector = serde_json::from_value(json!({
            "matchLabels": { "app": "x" },
            "matchExpressions": [{ "key": "tier", "operator": "In", "values": ["a", "b"] }]
        }))
        .unwrap();
        assert_eq!(selector_string(&s), "app=x,tier in (a,b)");
    }
}
