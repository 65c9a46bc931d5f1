//! The journal in the cluster: a ConfigMap (data key `journal.json`), saved as a
//! compare-and-swap on its resourceVersion, so two replicas can never overwrite each other's
//! entries. Kept well under the 1 MiB object limit; an RBAC denial is [`StoreError::Denied`].
//! Every call is bounded by [`CALL_TIMEOUT`]: an API that does not answer (a network that drops
//! packets silently) is [`StoreError::Unavailable`], not an engine stuck on a write.

use std::time::Duration;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::PostParams;

use super::store::{Snapshot, Store, StoreError};
use crate::clients::kube::{Client, Error, Op};

/// The ConfigMap key holding the journal.
pub const KEY: &str = "journal.json";

/// Refused above this size: etcd's object limit is ~1.5 MiB, a ConfigMap's data 1 MiB.
pub const MAX_BYTES: usize = 900 * 1024;

/// The longest a read or a write of the journal may take. A write that timed out may still
/// land later (the request may be on its way): the next save then meets a conflict, re-reads
/// and merges, and whatever that late write started is dropped by its writer (see
/// `Journal::merge_stored`).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn silent(op: &Op) -> StoreError {
    StoreError::Unavailable(format!(
        "no answer from the kubernetes api to {op} within {}",
        humantime::format_duration(CALL_TIMEOUT)
    ))
}

pub struct KubeStore {
    api: Api<ConfigMap>,
    namespace: String,
    name: String,
}

impl KubeStore {
    /// `namespace/name` of the ConfigMap.
    pub fn describe(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn new(client: Client, namespace: &str, name: &str) -> Self {
        KubeStore {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        }
    }

    fn op(&self, verb: &'static str) -> Op {
        Op::new(verb, "configmaps", &self.namespace, &self.name)
    }

    fn object(&self, data: &str, version: Option<&str>) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                resource_version: version.map(str::to_owned),
                labels: Some(BTreeMap::from([(
                    "app.kubernetes.io/name".to_owned(),
                    "astreinte".to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            data: Some(BTreeMap::from([(KEY.to_owned(), data.to_owned())])),
            ..ConfigMap::default()
        }
    }
}

fn store_error(e: Error, expected: &str) -> StoreError {
    match e {
        // Deleted since it was read is a change since it was read too.
        Error::Conflict { .. } | Error::AlreadyExists { .. } | Error::NotFound { .. } => {
            StoreError::Conflict {
                expected: expected.to_owned(),
            }
        }
        Error::Forbidden { .. } => StoreError::Denied(e.to_string()),
        e if e.is_transient() => StoreError::Unavailable(e.to_string()),
        e => StoreError::Denied(e.to_string()),
    }
}

impl Store for KubeStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let got = tokio::time::timeout(CALL_TIMEOUT, self.api.get(&self.name))
            .await
            .map_err(|_| silent(&self.op("get")))?;
        let cm = match got {
            Ok(cm) => cm,
            Err(e) => {
                return match Error::from_kube(e, &self.op("get")) {
                    Error::NotFound { .. } => Ok(None),
                    e => Err(store_error(e, "")),
                };
            }
        };
        let version = cm.metadata.resource_version.clone().ok_or_else(|| {
            StoreError::Corrupt(format!("configmap {} has no resourceVersion", self.name))
        })?;
        let data = cm.data.and_then(|mut d| d.remove(KEY)).unwrap_or_default();
        Ok(Some(Snapshot { data, version }))
    }

    async fn save(&self, data: &str, expected: Option<&str>) -> Result<String, StoreError> {
        if data.len() > MAX_BYTES {
            return Err(StoreError::Denied(format!(
                "journal is {} bytes, above the {MAX_BYTES}-byte limit of configmap {}/{}: \
                 prune old entries",
                data.len(),
                self.namespace,
                self.name
            )));
        }
        let written = match expected {
            None => tokio::time::timeout(
                CALL_TIMEOUT,
                self.api
                    .create(&PostParams::default(), &self.object(data, None)),
            )
            .await
            .map_err(|_| silent(&self.op("create")))?
            .map_err(|e| store_error(Error::from_kube(e, &self.op("create")), "none")),
            Some(version) => tokio::time::timeout(
                CALL_TIMEOUT,
                self.api.replace(
                    &self.name,
                    &PostParams::default(),
                    &self.object(data, Some(version)),
                ),
            )
            .await
            .map_err(|_| silent(&self.op("update")))?
            .map_err(|e| store_error(Error::from_kube(e, &self.op("update")), version)),
        }?;
        written.metadata.resource_version.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "configmap {} came back without a resourceVersion",
                self.name
            ))
        })
    }
}
