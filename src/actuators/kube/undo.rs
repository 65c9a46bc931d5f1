//! Undo of the reversible Kubernetes actions, from what the action returned as `previous`:
//! the previous replica count, ConfigMap values, ingress backend or annotations, limits.

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::time::Instant;

use super::{
    ActionOutcome, Error, Limits, Result, patch_configmap, patch_ingress_annotations,
    patch_resources, scale, switch_ingress_backend,
};
use crate::clients::kube::Client;
use crate::config::ActionSpec;

/// `{ "KEY": "old" | null }` → the values to set back (`None` removes a key that was absent).
fn previous_values(previous: &Value) -> Result<BTreeMap<String, Option<String>>> {
    let map = previous
        .as_object()
        .ok_or_else(|| Error::Refused("undo data is not an object".into()))?;
    Ok(map
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_owned)))
        .collect())
}

/// Restores what `action` changed.
pub async fn undo(
    client: &Client,
    action: &ActionSpec,
    previous: &Value,
    deadline: Instant,
) -> Result<ActionOutcome> {
    match action {
        ActionSpec::Scale {
            namespace,
            deployment,
            max_replicas,
            ..
        } => {
            let replicas = previous["replicas"]
                .as_i64()
                .and_then(|r| i32::try_from(r).ok())
                .ok_or_else(|| Error::Refused("undo data has no replica count".into()))?;
            scale(
                client,
                namespace,
                deployment,
                replicas,
                replicas.max(*max_replicas),
                deadline,
            )
            .await
        }
        ActionSpec::ConfigmapPatch {
            namespace, name, ..
        } => {
            patch_configmap(
                client,
                namespace,
                name,
                &previous_values(previous)?,
                deadline,
            )
            .await
        }
        ActionSpec::IngressAnnotations {
            namespace, ingress, ..
        } => {
            patch_ingress_annotations(
                client,
                namespace,
                ingress,
                &previous_values(previous)?,
                deadline,
            )
            .await
        }
        ActionSpec::IngressBackend {
            namespace, ingress, ..
        } => {
            let service = previous["service"]
                .as_str()
                .ok_or_else(|| Error::Refused("undo data has no previous service".into()))?;
            switch_ingress_backend(client, namespace, ingress, service, None, deadline).await
        }
        ActionSpec::Resources {
            namespace,
            deployment,
            container,
            ..
        } => {
            let limits = &previous["limits"];
            let wanted = Limits {
                cpu: limits["cpu"].as_str().map(str::to_owned),
                memory: limits["memory"].as_str().map(str::to_owned),
            };
            let no_ceiling = Limits {
                cpu: None,
                memory: None,
            };
            patch_resources(
                client,
                namespace,
                deployment,
                container,
                &wanted,
                &no_ceiling,
                deadline,
            )
            .await
        }
        other => Err(Error::NotKube(other.name())),
    }
}
