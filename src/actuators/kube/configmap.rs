//! Degraded mode and other toggles: a merge patch of ConfigMap data keys (`READ_ONLY_MODE`,
//! `DISABLE_ANALYTICS`), as a compare-and-swap on the resourceVersion read, returning the
//! previous values (`null` for a key that was absent) so that undo restores them exactly.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::Patch;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::event::{EventType, record_event, reference};
use super::write::{APPLIED, Write};
use super::{ActionOutcome, Error, Result};
use crate::clients::kube::{Client, Error as KubeError, Op, retry};

/// Sets each key to its value; a `None` value removes the key (that is how undo puts back a
/// key that did not exist).
pub async fn patch_configmap(
    client: &Client,
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Option<String>>,
    deadline: Instant,
) -> Result<ActionOutcome> {
    patch_configmap_as(client, namespace, name, data, deadline, Write::Act).await
}

/// [`patch_configmap`], as an action or as its undo (which first checks the keys still hold
/// what the action set).
pub(super) async fn patch_configmap_as(
    client: &Client,
    namespace: &str,
    name: &str,
    data: &BTreeMap<String, Option<String>>,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let get = Op::new("get", "configmaps", namespace, name);
    let patch_op = Op::new("patch", "configmaps", namespace, name);
    let (previous, patched) = retry(deadline, &patch_op, true, || async {
        let current = api
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(e, &get))?;
        let previous = super::previous_values(current.data.as_ref(), data);
        let object = format!("configmap {namespace}/{name}");
        if let Err(changed) = write.check(&object, &Value::Object(previous.clone())) {
            return Ok(Err(changed));
        }
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "data": data,
        });
        let patched = api
            .patch(name, &write.patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &patch_op))?;
        Ok(Ok((previous, patched)))
    })
    .await?
    .map_err(Error::ChangedSince)?;
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    let detail = format!(
        "{}patched configmap {namespace}/{name}: {}",
        write.prefix(),
        keys.join(", ")
    );
    let object = reference("v1", "ConfigMap", &patched.metadata);
    if !write.is_rehearsal() {
        record_event(
            client,
            &object,
            &write.reason("AstreinteConfigPatch"),
            &detail,
            EventType::Normal,
        )
        .await;
    }
    let mut previous = previous;
    let applied = super::previous_values(patched.data.as_ref(), data);
    previous.insert(APPLIED.to_owned(), Value::Object(applied));
    Ok(ActionOutcome {
        previous: Some(Value::Object(previous)),
        detail,
    })
}
