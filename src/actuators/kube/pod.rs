//! Delete one stuck pod (not Running, or a container in CrashLoopBackOff and the like) among
//! those a label selector picks, so its controller recreates it. One pod per action: a
//! healthy pod is never deleted, and no pod stuck means the action is refused. A pod already
//! terminating (deleted, its kubelet still stopping it) is not picked again: on a real cluster
//! it stays listed for its grace period, and "deleting" it again would do nothing.

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
use serde_json::json;
use tokio::time::Instant;

use super::event::{EventType, record_event, reference};
use super::write::Write;
use super::{ActionOutcome, Error, Result};
use crate::clients::kube::{Client, Error as KubeError, Op, retry};

const STUCK: [&str; 4] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
];

fn stuck(p: &Pod) -> Option<String> {
    let status = p.status.as_ref()?;
    if let Some(r) = status
        .container_statuses
        .iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
        .find(|r| STUCK.contains(&r.as_str()))
    {
        return Some(r);
    }
    match status.phase.as_deref() {
        Some("Running" | "Succeeded") => None,
        other => Some(other.unwrap_or("Unknown").to_owned()),
    }
}

pub async fn delete_stuck_pod(
    client: &Client,
    namespace: &str,
    selector: &str,
    deadline: Instant,
) -> Result<ActionOutcome> {
    delete_stuck_pod_as(client, namespace, selector, deadline, Write::Act).await
}

/// [`delete_stuck_pod`], or its rehearsal (the delete with `dryRun=All`, no Event).
pub(super) async fn delete_stuck_pod_as(
    client: &Client,
    namespace: &str,
    selector: &str,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = Op::new("list", "pods", namespace, "");
    let pods = retry(deadline, &list, false, || async {
        api.list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| KubeError::from_kube(e, &list))
    })
    .await?;
    let Some((pod, why)) = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .find_map(|p| stuck(p).map(|why| (p, why)))
    else {
        return Err(Error::Refused(format!(
            "no stuck pod matches {selector} in {namespace}"
        )));
    };
    let name = pod.metadata.name.clone().unwrap_or_default();
    let op = Op::new("delete", "pods", namespace, &name);
    retry(deadline, &op, false, || async {
        match api.delete(&name, &write.delete_params()).await {
            Ok(_) => Ok(()),
            Err(e) => match KubeError::from_kube(e, &op) {
                // Gone already: what we wanted.
                KubeError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    })
    .await?;
    let detail = format!("{}deleted pod {namespace}/{name} ({why})", write.prefix());
    let object = reference("v1", "Pod", &pod.metadata);
    if !write.is_rehearsal() {
        record_event(
            client,
            &object,
            "AstreinteDeletePod",
            &detail,
            EventType::Warning,
        )
        .await;
    }
    Ok(ActionOutcome {
        previous: Some(json!({ "pod": name, "reason": why })),
        detail,
    })
}
