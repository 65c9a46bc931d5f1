//! Ingress actions: point every path's backend at another Service (seed 000:
//! `rag-backup-service`), and patch annotations (a rate limit during a DDoS). Both are
//! compare-and-swap merge patches and return what they replaced, for undo.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{Ingress, IngressServiceBackend, ServiceBackendPort};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::event::{EventType, record_event, reference};
use super::write::{APPLIED, Write};
use super::{ActionOutcome, Error, Result};
use crate::clients::kube::{Client, Error as KubeError, Op, retry};

/// Switches every rule path (and the default backend) to `service` (and `port`, if given).
/// `previous` holds the first backend service name replaced and the full old rules.
pub async fn switch_ingress_backend(
    client: &Client,
    namespace: &str,
    name: &str,
    service: &str,
    port: Option<i32>,
    deadline: Instant,
) -> Result<ActionOutcome> {
    switch_ingress_backend_as(client, namespace, name, service, port, deadline, Write::Act).await
}

/// [`switch_ingress_backend`], as an action or its rehearsal.
pub(super) async fn switch_ingress_backend_as(
    client: &Client,
    namespace: &str,
    name: &str,
    service: &str,
    port: Option<i32>,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let get = Op::new("get", "ingresses.networking.k8s.io", namespace, name);
    let patch_op = Op::new("patch", "ingresses.networking.k8s.io", namespace, name);
    let (previous, patched, switched) = retry(deadline, &patch_op, true, || async {
        let current = api
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(e, &get))?;
        let mut spec = current.spec.clone().unwrap_or_default();
        let mut old_services = Vec::new();
        let mut switch = |b: &mut IngressServiceBackend| {
            old_services.push(b.name.clone());
            b.name = service.to_owned();
            if let Some(p) = port {
                b.port = Some(ServiceBackendPort {
                    number: Some(p),
                    name: None,
                });
            }
        };
        for rule in spec.rules.iter_mut().flatten() {
            for path in rule.http.iter_mut().flat_map(|h| h.paths.iter_mut()) {
                if let Some(b) = path.backend.service.as_mut() {
                    switch(b);
                }
            }
        }
        if let Some(b) = spec
            .default_backend
            .as_mut()
            .and_then(|d| d.service.as_mut())
        {
            switch(b);
        }
        let old = current.spec.clone().unwrap_or_default();
        let previous = json!({
            "service": old_services.first(),
            "rules": old.rules,
            "defaultBackend": old.default_backend,
        });
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "spec": { "rules": spec.rules, "defaultBackend": spec.default_backend },
        });
        let patched = api
            .patch(name, &write.patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &patch_op))?;
        let mut previous = previous;
        previous[APPLIED] = backends(&patched);
        Ok((previous, patched, old_services.len()))
    })
    .await?;
    if switched == 0 {
        return Err(Error::Refused(format!(
            "ingress {namespace}/{name} has no service backend to switch"
        )));
    }
    let from = previous["service"].as_str().unwrap_or("?");
    let detail = format!(
        "{}ingress {namespace}/{name}: {switched} backend(s) switched from {from} to {service}",
        write.prefix()
    );
    let object = reference("networking.k8s.io/v1", "Ingress", &patched.metadata);
    if !write.is_rehearsal() {
        record_event(
            client,
            &object,
            "AstreinteIngressBackend",
            &detail,
            EventType::Normal,
        )
        .await;
    }
    Ok(ActionOutcome {
        previous: Some(previous),
        detail,
    })
}

/// The routing part of an ingress (rules and default backend), as the undo compares it.
fn backends(ingress: &Ingress) -> Value {
    let spec = ingress.spec.clone().unwrap_or_default();
    json!({ "rules": spec.rules, "defaultBackend": spec.default_backend })
}

/// Undoes [`switch_ingress_backend`]: puts back the whole rules and default backend it
/// replaced (every path's own service and port, not one service everywhere), if the ingress
/// still routes as the action left it.
pub async fn restore_ingress_backends(
    client: &Client,
    namespace: &str,
    name: &str,
    previous: &Value,
    deadline: Instant,
) -> Result<ActionOutcome> {
    if previous.get("rules").is_none() && previous.get("defaultBackend").is_none() {
        return Err(Error::Refused("undo data has no previous rules".into()));
    }
    let write = Write::undo_of(previous);
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let get = Op::new("get", "ingresses.networking.k8s.io", namespace, name);
    let patch_op = Op::new("patch", "ingresses.networking.k8s.io", namespace, name);
    let patched = retry(deadline, &patch_op, true, || async {
        let current = api
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(e, &get))?;
        let object = format!("ingress {namespace}/{name}: backends");
        if let Err(changed) = write.check(&object, &backends(&current)) {
            return Ok(Err(changed));
        }
        let patch = json!({
            "metadata": { "resourceVersion": current.metadata.resource_version },
            "spec": { "rules": previous["rules"], "defaultBackend": previous["defaultBackend"] },
        });
        let patched = api
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &patch_op))?;
        Ok(Ok(patched))
    })
    .await?
    .map_err(Error::ChangedSince)?;
    let services: Vec<String> = patched
        .spec
        .iter()
        .flat_map(|s| s.rules.iter().flatten())
        .flat_map(|r| r.http.iter().flat_map(|h| h.paths.iter()))
        .filter_map(|p| p.backend.service.as_ref())
        .map(|b| match b.port.as_ref().and_then(|p| p.number) {
            Some(port) => format!("{}:{port}", b.name),
            None => b.name.clone(),
        })
        .collect();
    let detail = format!(
        "undo: ingress {namespace}/{name}: backends restored ({})",
        services.join(", ")
    );
    let object = reference("networking.k8s.io/v1", "Ingress", &patched.metadata);
    record_event(
        client,
        &object,
        &write.reason("AstreinteIngressBackend"),
        &detail,
        EventType::Normal,
    )
    .await;
    Ok(ActionOutcome {
        previous: None,
        detail,
    })
}

/// Sets (or, with `None`, removes) annotations; `previous` maps each key to its old value
/// (`null` when it was absent).
pub async fn patch_ingress_annotations(
    client: &Client,
    namespace: &str,
    name: &str,
    annotations: &BTreeMap<String, Option<String>>,
    deadline: Instant,
) -> Result<ActionOutcome> {
    patch_ingress_annotations_as(client, namespace, name, annotations, deadline, Write::Act).await
}

/// [`patch_ingress_annotations`], as an action or as its undo.
pub(super) async fn patch_ingress_annotations_as(
    client: &Client,
    namespace: &str,
    name: &str,
    annotations: &BTreeMap<String, Option<String>>,
    deadline: Instant,
    write: Write<'_>,
) -> Result<ActionOutcome> {
    let api: Api<Ingress> = Api::namespaced(client.clone(), namespace);
    let get = Op::new("get", "ingresses.networking.k8s.io", namespace, name);
    let patch_op = Op::new("patch", "ingresses.networking.k8s.io", namespace, name);
    let (previous, patched) = retry(deadline, &patch_op, true, || async {
        let current = api
            .get(name)
            .await
            .map_err(|e| KubeError::from_kube(e, &get))?;
        let previous = super::previous_values(current.metadata.annotations.as_ref(), annotations);
        let object = format!("ingress {namespace}/{name}: annotations");
        if let Err(changed) = write.check(&object, &Value::Object(previous.clone())) {
            return Ok(Err(changed));
        }
        let patch = json!({
            "metadata": {
                "resourceVersion": current.metadata.resource_version,
                "annotations": annotations,
            },
        });
        let patched = api
            .patch(name, &write.patch_params(), &Patch::Merge(&patch))
            .await
            .map_err(|e| KubeError::from_kube(e, &patch_op))?;
        Ok(Ok((previous, patched)))
    })
    .await?
    .map_err(Error::ChangedSince)?;
    let keys: Vec<&str> = annotations.keys().map(String::as_str).collect();
    let detail = format!(
        "{}ingress {namespace}/{name}: annotations {}",
        write.prefix(),
        keys.join(", ")
    );
    let object = reference("networking.k8s.io/v1", "Ingress", &patched.metadata);
    if !write.is_rehearsal() {
        record_event(
            client,
            &object,
            &write.reason("AstreinteIngressAnnotations"),
            &detail,
            EventType::Normal,
        )
        .await;
    }
    let mut previous = previous;
    let applied = super::previous_values(patched.metadata.annotations.as_ref(), annotations);
    previous.insert(APPLIED.to_owned(), Value::Object(applied));
    Ok(ActionOutcome {
        previous: Some(Value::Object(previous)),
        detail,
    })
}
