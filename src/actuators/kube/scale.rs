//! Scale a Deployment through its `scale` subresource (its own RBAC rule), never beyond
//! `max_replicas`, as a compare-and-swap on the Scale's resourceVersion; returns the previous
//! count so that the scale can be undone.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Api;
use kube::api::Patch;
use serde_json::json;
use tokio::time::Instant;

use super::event::{EventType, record_event};
use super::write::{APPLIED, Write};
use super::{ActionOutcome, Error, Result};
use crate::clients::kube::{Client, Error as KubeError, Op, retry};

pub async fn scale(
    client: &Client,
    namespace: &str,
    name: &str,
    replicas: i32,
    max_replicas: i32,
    deadline: Instant,
) -> Result<ActionOutcome> {
    scale_as(
        client,
        namespace,
        name,
        replicas,
        max_replicas,
        deadline,
        Write::Act,
    )
    .await
}

/// [`scale`], as an action or as its undo (which first checks the count is still the one
/// the action set).
pub(super) async fn scale_as(
    client: &Client,
    namespace: &str,
    name: &str,
    replicas: i32,
    max_replicas: i32,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    if replicas > max_replicas {
        return Err(Error::Refused(format!(
            "scale {namespace}/{name} to {replicas} is above max_replicas {max_replicas}"
        )));
    }
    if replicas < 0 {
        return Err(Error::Refused(format!("{replicas} replicas")));
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let get = Op::new("get", "deployments.apps/scale", namespace, name);
    let patch_op = Op::new("patch", "deployments.apps/scale", namespace, name);
    // Read, then write with the resourceVersion read: a concurrent change is a 409 and the
    // whole read-write is retried.
    let (previous, scale) = retry(deadline, &patch_op, true, || async {
        let current = api
            .get_scale(name)
            .await
            .map_err(|e| KubeError::from_kube(e, &get))?;
        let previous = current.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
        let object = format!("deployment {namespace}/{name}: replicas");
        if let Err(changed) = write.check(&object, &json!(previous)) {
            return Ok(Err(changed));
        }
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "spec": { "replicas": replicas },
        });
        let scale = api
            .patch_scale(name, &write.patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &patch_op))?;
        Ok(Ok((previous, scale)))
    })
    .await?
    .map_err(Error::ChangedSince)?;
    let detail = format!(
        "{}scaled deployment {namespace}/{name} from {previous} to {replicas} replicas",
        write.prefix()
    );
    let object = ObjectReference {
        api_version: Some("apps/v1".into()),
        kind: Some("Deployment".into()),
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        uid: scale.metadata.uid.clone(),
        ..ObjectReference::default()
    };
    if !write.is_rehearsal() {
        record_event(
            client,
            &object,
            &write.reason("AstreinteScale"),
            &detail,
            EventType::Normal,
        )
        .await;
    }
    let applied = scale
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(replicas);
    Ok(ActionOutcome {
        previous: Some(json!({ "replicas": previous, APPLIED: applied })),
        detail,
    })
}
