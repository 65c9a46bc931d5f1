//! Raise a container's resource limits within configured ceilings: a read of the Deployment,
//! the new limits checked against the ceilings, then a merge patch of the pod template's
//! containers with the resourceVersion read (409 → re-read and retry). Returns the old limits.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Api;
use kube::api::Patch;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::event::{EventType, record_event, reference};
use super::write::{APPLIED, Write};
use super::{ActionOutcome, Error, Result};
use crate::clients::kube::{Client, Error as KubeError, Op, retry};

/// CPU and memory limits as Kubernetes quantities (`500m`, `1Gi`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub cpu: Option<String>,
    pub memory: Option<String>,
}

/// A Kubernetes quantity in base units (cores, bytes): `500m` → 0.5, `1Gi` → 2^30.
pub fn parse_quantity(q: &str) -> Option<f64> {
    let q = q.trim();
    let suffixes: [(&str, f64); 13] = [
        ("Ki", 1024.0),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|(s, f)| q.strip_suffix(s).map(|n| (n, *f)))
        .unwrap_or((q, 1.0));
    let value: f64 = number.parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some(value * factor)
}

fn check_ceiling(what: &str, wanted: Option<&String>, ceiling: Option<&String>) -> Result<()> {
    let (Some(w), Some(c)) = (wanted, ceiling) else {
        return Ok(());
    };
    match (parse_quantity(w), parse_quantity(c)) {
        (Some(wv), Some(cv)) if wv <= cv => Ok(()),
        (Some(_), Some(_)) => Err(Error::Refused(format!(
            "{what} limit {w} is above the ceiling {c}"
        ))),
        _ => Err(Error::Refused(format!(
            "{what} limit {w} or ceiling {c} is not a quantity"
        ))),
    }
}

pub async fn patch_resources(
    client: &Client,
    namespace: &str,
    name: &str,
    container: &str,
    wanted: &Limits,
    ceiling: &Limits,
    deadline: Instant,
) -> Result<ActionOutcome> {
    patch_resources_as(
        client,
        namespace,
        name,
        container,
        wanted,
        ceiling,
        deadline,
        Write::Act,
    )
    .await
}

/// [`patch_resources`], as an action or as its undo (which first checks the container's
/// limits are still the ones the action set).
#[allow(clippy::too_many_arguments)] // reason: the action's own fields, plus how it is meant
pub(super) async fn patch_resources_as(
    client: &Client,
    namespace: &str,
    name: &str,
    container: &str,
    wanted: &Limits,
    ceiling: &Limits,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    check_ceiling("cpu", wanted.cpu.as_ref(), ceiling.cpu.as_ref())?;
    check_ceiling("memory", wanted.memory.as_ref(), ceiling.memory.as_ref())?;
    let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let get = Op::new("get", "deployments.apps", namespace, name);
    let patch_op = Op::new("patch", "deployments.apps", namespace, name);
    let (previous, patched) = retry(deadline, &patch_op, true, || async {
        let current = api
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(e, &get))?;
        let mut template = current.spec.clone().map(|s| s.template).unwrap_or_default();
        let mut containers = template
            .spec
            .take()
            .map(|s| s.containers)
            .unwrap_or_default();
        let Some(c) = containers.iter_mut().find(|c| c.name == container) else {
            return Err(KubeError::NotFound {
                object: format!("container {container} in deployment {namespace}/{name}"),
            });
        };
        let resources = c.resources.get_or_insert_with(Default::default);
        let object = format!("deployment {namespace}/{name} container {container}: limits");
        if let Err(changed) = write.check(&object, &json!(resources.limits)) {
            return Ok(Err(changed));
        }
        let previous = json!({ "container": container, "limits": resources.limits });
        let limits = resources.limits.get_or_insert_with(BTreeMap::new);
        if let Some(cpu) = &wanted.cpu {
            limits.insert("cpu".into(), Quantity(cpu.clone()));
        }
        if let Some(memory) = &wanted.memory {
            limits.insert("memory".into(), Quantity(memory.clone()));
        }
        // A merge patch replaces the containers list whole: send it all, guarded by the
        // resourceVersion it was read at.
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "spec": { "template": { "spec": { "containers": containers } } },
        });
        let patched = api
            .patch(name, &write.patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &patch_op))?;
        Ok(Ok((previous, patched)))
    })
    .await?
    .map_err(Error::ChangedSince)?;
    let mut set = Vec::new();
    if let Some(c) = &wanted.cpu {
        set.push(format!("cpu={c}"));
    }
    if let Some(m) = &wanted.memory {
        set.push(format!("memory={m}"));
    }
    let detail = format!(
        "{}deployment {namespace}/{name} container {container}: limits {}",
        write.prefix(),
        set.join(", ")
    );
    let object = reference("apps/v1", "Deployment", &patched.metadata);
    if !write.is_rehearsal() {
        record_event(
            client,
            &object,
            &write.reason("AstreinteResources"),
            &detail,
            EventType::Normal,
        )
        .await;
    }
    let applied = patched
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.resources.as_ref())
        .map(|r| json!(r.limits));
    let mut previous = previous;
    previous[APPLIED] = applied.unwrap_or(Value::Null);
    Ok(ActionOutcome {
        previous: Some(previous),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m"), Some(0.5));
        assert_eq!(parse_quantity("2"), Some(2.0));
        assert_eq!(parse_quantity("1Gi"), Some(1024.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("512Mi"), Some(512.0 * 1024.0 * 1024.0));
        assert_eq!(parse_quantity("1G"), Some(1e9));
        assert_eq!(parse_quantity("lots"), None);
        assert_eq!(parse_quantity("-1"), None);
    }

    #[test]
    fn ceilings() {
        let two = Some("2".to_owned());
        assert!(check_ceiling("cpu", Some(&"1500m".into()), two.as_ref()).is_ok());
        assert!(check_ceiling("cpu", Some(&"3".into()), two.as_ref()).is_err());
        assert!(check_ceiling("cpu", Some(&"3".into()), None).is_ok());
    }
}
