//! Undo of the reversible Kubernetes actions, from what the action returned as `previous`:
//! the previous replica count, ConfigMap values, ingress rules or annotations, limits. Each
//! undo first re-reads the object and leaves it as it is when it no longer holds what the
//! action set (`previous["@applied"]`: see [`super::write`]), and records its own Event
//! (`AstreinteUndo…`).

use std::collections::BTreeMap;

use serde_json::Value;
use tokio::time::Instant;

use super::configmap::patch_configmap_as;
use super::ingress::{patch_ingress_annotations_as, restore_ingress_backends};
use super::resources::patch_resources_as;
use super::scale::scale_as;
use super::write::{APPLIED, Write};
use super::{ActionOutcome, Error, Limits, Result};
use crate::clients::kube::Client;
use crate::config::ActionSpec;

/// `{ "KEY": "old" | null }` → the values to set back (`None` removes a key that was absent).
fn previous_values(previous: &Value) -> Result<BTreeMap<String, Option<String>>> {
    let map = previous
        .as_object()
        .ok_or_else(|| Error::Refused("undo data is not an object".into()))?;
    Ok(map
        .iter()
        .filter(|(k, _)| k.as_str() != APPLIED)
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
    let write = Write::undo_of(previous);
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
            scale_as(
                client,
                namespace,
                deployment,
                replicas,
                replicas.max(*max_replicas),
                deadline,
                write,
            )
            .await
        }
        ActionSpec::ConfigmapPatch {
            namespace, name, ..
        } => {
            patch_configmap_as(
                client,
                namespace,
                name,
                &previous_values(previous)?,
                deadline,
                write,
            )
            .await
        }
        ActionSpec::IngressAnnotations {
            namespace, ingress, ..
        } => {
            patch_ingress_annotations_as(
                client,
                namespace,
                ingress,
                &previous_values(previous)?,
                deadline,
                write,
            )
            .await
        }
        ActionSpec::IngressBackend {
            namespace, ingress, ..
        } => restore_ingress_backends(client, namespace, ingress, previous, deadline).await,
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
            patch_resources_as(
                client,
                namespace,
                deployment,
                container,
                &wanted,
                &no_ceiling,
                deadline,
                write,
            )
            .await
        }
        other => Err(Error::NotKube(other.name())),
    }
}
