//! Objects to seed the fake API server with, shaped like the real ones (the fields the daemon
//! reads, nothing more).

use serde_json::{Value, json};

pub fn condition(kind: &str, status: &str) -> Value {
    json!({
        "type": kind,
        "status": status,
        "lastHeartbeatTime": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap(),
        "lastTransitionTime": jiff::Timestamp::now().round(jiff::Unit::Second).unwrap(),
        "reason": if status == "True" { "KubeletReady" } else { "NodeStatusUnknown" },
        "message": "",
    })
}

/// A node with `Ready` = `ready` and no pressure.
pub fn node(name: &str, ready: bool) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": { "name": name, "labels": { "kubernetes.io/hostname": name } },
        "spec": {},
        "status": { "conditions": [
            condition("Ready", if ready { "True" } else { "False" }),
            condition("MemoryPressure", "False"),
            condition("DiskPressure", "False"),
            condition("PIDPressure", "False"),
        ] },
    })
}

/// A Deployment with `app: name` pods, `available` of `replicas` available and its
/// generation observed.
pub fn deployment(namespace: &str, name: &str, replicas: i64, available: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name, "namespace": namespace, "labels": { "app": name } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [
                    { "name": name, "image": format!("registry.example/{name}:1"),
                      "resources": { "limits": { "cpu": "500m", "memory": "512Mi" } } },
                    { "name": "sidecar", "image": "registry.example/sidecar:1" },
                ] },
            },
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": available,
            "availableReplicas": available,
        },
    })
}

/// A pod of Deployment `app`; `waiting` is a container waiting reason (`CrashLoopBackOff`).
pub fn pod(
    namespace: &str,
    name: &str,
    app: &str,
    phase: &str,
    restarts: i64,
    waiting: Option<&str>,
) -> Value {
    let state = match waiting {
        Some(reason) => json!({ "waiting": { "reason": reason } }),
        None => json!({ "running": { "startedAt": "2026-01-01T00:00:00Z" } }),
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": name, "namespace": namespace, "labels": { "app": app } },
        "spec": { "containers": [ { "name": app, "image": "x" } ] },
        "status": {
            "phase": phase,
            "containerStatuses": [ {
                "name": app, "ready": waiting.is_none(), "restartCount": restarts,
                "image": "x", "imageID": "", "state": state,
            } ],
        },
    })
}

pub fn configmap(namespace: &str, name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": namespace },
        "data": data,
    })
}

/// An ingress with one rule, two paths to `service`.
pub fn ingress(namespace: &str, name: &str, service: &str) -> Value {
    let path = |p: &str| {
        json!({ "path": p, "pathType": "Prefix",
                "backend": { "service": { "name": service, "port": { "number": 8000 } } } })
    };
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": name, "namespace": namespace,
                      "annotations": { "nginx.ingress.kubernetes.io/limit-rps": "100" } },
        "spec": { "rules": [ { "host": "rag.example", "http": { "paths": [path("/api"), path("/health")] } } ] },
    })
}
