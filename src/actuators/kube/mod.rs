//! Kubernetes actuators, one file per family: rollout restart, scale, ConfigMap patch,
//! ingress backend / annotations, container resources, pod delete. Each runs under a
//! deadline, retries only transient errors (and conflicts, after a re-read), records a
//! Kubernetes Event on the object it touched, and returns what it replaced, for undo.

mod configmap;
mod event;
mod ingress;
mod pod;
mod resources;
mod restart;
mod scale;
mod undo;
mod write;

use tokio::time::Instant;

use crate::clients::kube::{Client, Error as KubeError};
use crate::config::ActionSpec;

pub use configmap::patch_configmap;
pub use event::{EventType, record_event, reference};
pub use ingress::{patch_ingress_annotations, switch_ingress_backend};
pub use pod::delete_stuck_pod;
pub use resources::{Limits, parse_quantity, patch_resources};
pub use restart::{RESTARTED_AT, rollout_restart, wait_for_rollout};
pub use scale::scale;
pub use undo::undo;

use configmap::patch_configmap_as;
use ingress::{patch_ingress_annotations_as, switch_ingress_backend_as};
use pod::delete_stuck_pod_as;
use resources::patch_resources_as;
use restart::rollout_restart_as;
use scale::scale_as;
use write::Write;

/// What an action did.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    /// What it replaced (previous replicas, data values, backend, limits), to undo it.
    pub previous: Option<serde_json::Value>,
    /// A human sentence for the journal, the incident timeline and the logs.
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kube(#[from] KubeError),
    /// The action would break one of its bounds (max replicas, resource ceiling…).
    #[error("refused: {0}")]
    Refused(String),
    #[error("rollout of deployment {deployment} not complete by the deadline: {status}")]
    RolloutStuck { deployment: String, status: String },
    #[error("{0} is not a kubernetes action")]
    NotKube(&'static str),
    /// An undo found the object changed since the action (a person's edit): left as it is.
    #[error("not undone: {0}")]
    ChangedSince(String),
}

impl Error {
    /// A bounded label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Kube(e) => e.kind(),
            Error::Refused(_) => "refused",
            Error::RolloutStuck { .. } => "rollout_stuck",
            Error::NotKube(_) => "not_kube",
            Error::ChangedSince(_) => "changed_since",
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The values `wanted`'s keys had in `old` (`null` for an absent key), kept for undo of a
/// ConfigMap data or annotation patch; also what they hold after the write (`applied`).
fn previous_values<W>(
    old: Option<&std::collections::BTreeMap<String, String>>,
    wanted: &std::collections::BTreeMap<String, W>,
) -> serde_json::Map<String, serde_json::Value> {
    wanted
        .keys()
        .map(|k| {
            let v = old.and_then(|o| o.get(k));
            (
                k.clone(),
                v.map_or(serde_json::Value::Null, |v| {
                    serde_json::Value::String(v.clone())
                }),
            )
        })
        .collect()
}

/// Runs one Kubernetes action from `remediations.toml` before `deadline`.
pub async fn apply(
    client: &Client,
    action: &ActionSpec,
    deadline: Instant,
) -> Result<ActionOutcome> {
    apply_as(client, action, deadline, Write::Act).await
}

/// Rehearses one Kubernetes action: the same requests with `dryRun=All`, so the API server
/// checks that it could be done (the object exists, RBAC grants it, the patch is valid) and
/// changes nothing. The detail says what would have been done.
pub async fn rehearse(
    client: &Client,
    action: &ActionSpec,
    deadline: Instant,
) -> Result<ActionOutcome> {
    apply_as(client, action, deadline, Write::Rehearse).await
}

async fn apply_as(
    client: &Client,
    action: &ActionSpec,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    match action {
        ActionSpec::RolloutRestart {
            namespace,
            deployment,
        } => rollout_restart_as(client, namespace, deployment, deadline, write).await,
        ActionSpec::Scale {
            namespace,
            deployment,
            replicas,
            max_replicas,
        } => {
            scale_as(
                client,
                namespace,
                deployment,
                *replicas,
                *max_replicas,
                deadline,
                write,
            )
            .await
        }
        ActionSpec::ConfigmapPatch {
            namespace,
            name,
            data,
        } => {
            let data = data
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            patch_configmap_as(client, namespace, name, &data, deadline, write).await
        }
        ActionSpec::IngressBackend {
            namespace,
            ingress,
            service,
            port,
        } => {
            switch_ingress_backend_as(client, namespace, ingress, service, *port, deadline, write)
                .await
        }
        ActionSpec::IngressAnnotations {
            namespace,
            ingress,
            annotations,
        } => {
            let annotations = annotations
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            patch_ingress_annotations_as(client, namespace, ingress, &annotations, deadline, write)
                .await
        }
        ActionSpec::Resources {
            namespace,
            deployment,
            container,
            cpu_limit,
            memory_limit,
            max_cpu_limit,
            max_memory_limit,
        } => {
            let wanted = Limits {
                cpu: cpu_limit.clone(),
                memory: memory_limit.clone(),
            };
            let ceiling = Limits {
                cpu: max_cpu_limit.clone(),
                memory: max_memory_limit.clone(),
            };
            patch_resources_as(
                client, namespace, deployment, container, &wanted, &ceiling, deadline, write,
            )
            .await
        }
        ActionSpec::DeletePod {
            namespace,
            selector,
        } => delete_stuck_pod_as(client, namespace, selector, deadline, write).await,
        other => Err(Error::NotKube(other.name())),
    }
}
