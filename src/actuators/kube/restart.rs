//! Rollout restart, the way `kubectl rollout restart` does it: a merge patch of
//! `spec.template.metadata.annotations."kubectl.kubernetes.io/restartedAt"` (kubectl's key,
//! not kube-rs' `kube.kubernetes.io/restartedAt`, so operators see one history), then a
//! wait for the rollout by kubectl's rule (`rollout status`): observedGeneration >= generation,
//! updated = desired, no old replica left (`status.replicas` > updated means old pods are
//! still pending termination), ready = available = updated; a Progressing condition with reason
//! `ProgressDeadlineExceeded` fails at once. Then, stricter than kubectl, no pod of the
//! Deployment still terminating: the real apiserver (1.26) leaves terminating pods out of
//! `status.replicas`, so the status says complete while an old pod still shuts down (issue 14,
//! defect 1, seen on tests/kube_real.rs). Up to the deadline.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch};
use serde_json::json;
use tokio::time::Instant;

use super::event::{EventType, record_event, reference};
use super::write::Write;
use super::{ActionOutcome, Error, Result};
use crate::clients::kube::{Client, Error as KubeError, Op, retry};

/// The annotation kubectl sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

const POLL: Duration = Duration::from_millis(250);

pub async fn rollout_restart(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: Instant,
) -> Result<ActionOutcome> {
    rollout_restart_as(client, namespace, name, deadline, Write::Act).await
}

/// [`rollout_restart`], or its rehearsal (the patch with `dryRun=All`, no wait, no Event).
pub(super) async fn rollout_restart_as(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let at = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let patch = json!({
        "spec": { "template": { "metadata": { "annotations": { RESTARTED_AT: at.to_string() } } } }
    });
    let op = Op::new("patch", "deployments.apps", namespace, name);
    let patched = retry(deadline, &op, false, || async {
        api.patch(name, &write.patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &op))
    })
    .await?;
    if write.is_rehearsal() {
        return Ok(ActionOutcome {
            previous: None,
            detail: format!(
                "{}rollout restart of deployment {namespace}/{name}",
                write.prefix()
            ),
        });
    }
    let object = reference("apps/v1", "Deployment", &patched.metadata);
    match wait_for_rollout(client, namespace, name, deadline).await {
        Ok(status) => {
            let detail = format!("rollout restart of {namespace}/{name} complete: {status}");
            record_event(
                client,
                &object,
                "AstreinteRolloutRestart",
                &detail,
                EventType::Normal,
            )
            .await;
            Ok(ActionOutcome {
                previous: None,
                detail,
            })
        }
        Err(e) => {
            let message = format!("rollout restart of {namespace}/{name} did not complete: {e}");
            record_event(
                client,
                &object,
                "AstreinteRolloutStuck",
                &message,
                EventType::Warning,
            )
            .await;
            Err(e)
        }
    }
}

/// Waits until the Deployment's rollout is complete; returns its status as a sentence.
pub async fn wait_for_rollout(
    client: &Client,
    namespace: &str,
    name: &str,
    deadline: Instant,
) -> Result<String> {
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let op = Op::new("get", "deployments.apps", namespace, name);
    let mut last = String::from("no status yet");
    loop {
        let got = retry(deadline, &op, false, || async {
            api.get(name)
                .await
                .map_err(|e| KubeError::from_kube(e, &op))
        })
        .await;
        match got {
            Ok(d) => {
                if let Some(why) = progress_deadline_exceeded(&d) {
                    return Err(Error::RolloutStuck {
                        deployment: format!("{namespace}/{name}"),
                        status: why,
                    });
                }
                let (done, status) = rollout_state(&d);
                if done {
                    match terminating_pods(client, namespace, &d, deadline).await {
                        Ok(0) => return Ok(status),
                        Ok(n) => last = format!("{status}, {n} pods still terminating"),
                        Err(KubeError::Deadline { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                } else {
                    last = status;
                }
            }
            Err(KubeError::Deadline { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() + POLL >= deadline {
            return Err(Error::RolloutStuck {
                deployment: format!("{namespace}/{name}"),
                status: last,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// How many pods of the Deployment (by its selector) are terminating: deleted, not yet gone.
async fn terminating_pods(
    client: &Client,
    namespace: &str,
    d: &Deployment,
    deadline: Instant,
) -> Result<usize, KubeError> {
    let selector = d
        .spec
        .as_ref()
        .map(|s| crate::probes::workload::selector_string(&s.selector))
        .unwrap_or_default();
    if selector.is_empty() {
        return Ok(0);
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let op = Op::new("list", "pods", namespace, "");
    let params = ListParams::default().labels(&selector);
    let list = retry(deadline, &op, false, || async {
        pods.list(&params)
            .await
            .map_err(|e| KubeError::from_kube(e, &op))
    })
    .await?;
    Ok(list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some())
        .count())
}

/// The Deployment controller gave up on this rollout: its Progressing condition says
/// `ProgressDeadlineExceeded` (kubectl's `rollout status` fails on it too).
pub fn progress_deadline_exceeded(d: &Deployment) -> Option<String> {
    let generation = d.metadata.generation.unwrap_or(0);
    let s = d.status.as_ref()?;
    if s.observed_generation.is_none_or(|o| o < generation) {
        return None;
    }
    let c = s.conditions.as_ref()?.iter().find(|c| {
        c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    })?;
    Some(format!(
        "progress deadline exceeded: {}",
        c.message.as_deref().unwrap_or("no message")
    ))
}

/// Whether the rollout is complete, and a sentence describing where it is.
///
/// kubectl's rule: the status has seen the current generation, every desired replica is
/// updated, no old replica remains (`status.replicas` > updated: old pods pending
/// termination), and every updated replica is ready and available. Never complete with a
/// negative replica count: a garbled object must not verify an action.
pub fn rollout_state(d: &Deployment) -> (bool, String) {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let generation = d.metadata.generation.unwrap_or(0);
    let Some(s) = &d.status else {
        return (false, format!("no status yet (generation {generation})"));
    };
    let observed = s.observed_generation.unwrap_or(0);
    let updated = s.updated_replicas.unwrap_or(0);
    let ready = s.ready_replicas.unwrap_or(0);
    let available = s.available_replicas.unwrap_or(0);
    let total = s.replicas.unwrap_or(0);
    let old = total.saturating_sub(updated).max(0);
    let done = s.observed_generation.is_some_and(|o| o >= generation)
        && desired >= 0
        && updated == desired
        && total <= updated
        && ready == desired
        && available == desired;
    let pending = if old > 0 {
        format!(", {old} old pending termination")
    } else {
        String::new()
    };
    let status = format!(
        "{updated} updated, {ready} ready, {available} available of {desired}{pending} \
         (generation {generation}, observed {observed})"
    );
    (done, status)
}

#[cfg(test)]
#[path = "restart_proptests.rs"]
mod proptests;
