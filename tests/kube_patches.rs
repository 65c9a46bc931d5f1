//! The Kubernetes patch actuators (ConfigMap data, ingress backend and annotations, container
//! resources) and pod delete against the API test server, through the real kube client: exact
//! requests, previous values for undo, bounds, and an Event per action.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Error, Limits};
use serde_json::{Value, json};
use support::kube_api::{KubeApi, objects};
use tokio::time::Instant;

const NS: &str = "rag-production";

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

fn assert_event(api: &KubeApi, reason: &str, kind: &str, name: &str, ty: &str) -> Value {
    api.assert_event(NS, reason, kind, name, ty)
}

#[tokio::test]
async fn configmap_patch_returns_previous_values_and_undo_restores_them() {
    let api = KubeApi::start().await;
    api.put(objects::configmap(
        NS,
        "rag-flags",
        json!({ "READ_ONLY_MODE": "false", "OTHER": "keep" }),
    ));
    let client = api.client().await;
    let data = BTreeMap::from([
        ("READ_ONLY_MODE".to_owned(), Some("true".to_owned())),
        ("DISABLE_ANALYTICS".to_owned(), Some("true".to_owned())),
    ]);
    let out = act::patch_configmap(&client, NS, "rag-flags", &data, deadline(5))
        .await
        .unwrap();
    let previous = out.previous.unwrap();
    assert_eq!(
        previous,
        json!({ "READ_ONLY_MODE": "false", "DISABLE_ANALYTICS": null })
    );
    let patch = &api.requests_to("patch", "/configmaps/rag-flags")[0];
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(
        patch.body["data"],
        json!({ "READ_ONLY_MODE": "true", "DISABLE_ANALYTICS": "true" })
    );
    let cm = api.get("v1", "configmaps", NS, "rag-flags").unwrap();
    assert_eq!(
        cm["data"],
        json!({ "READ_ONLY_MODE": "true", "DISABLE_ANALYTICS": "true", "OTHER": "keep" })
    );
    assert_event(
        &api,
        "AstreinteConfigPatch",
        "ConfigMap",
        "rag-flags",
        "Normal",
    );

    // Undo with the previous values: the absent key is removed again.
    let undo: BTreeMap<String, Option<String>> = serde_json::from_value(previous).unwrap();
    act::patch_configmap(&client, NS, "rag-flags", &undo, deadline(5))
        .await
        .unwrap();
    let cm = api.get("v1", "configmaps", NS, "rag-flags").unwrap();
    assert_eq!(
        cm["data"],
        json!({ "READ_ONLY_MODE": "false", "OTHER": "keep" })
    );
}

#[tokio::test]
async fn ingress_backend_switch_and_annotations() {
    let api = KubeApi::start().await;
    api.put(objects::ingress(NS, "rag", "rag-api"));
    let client = api.client().await;
    let out =
        act::switch_ingress_backend(&client, NS, "rag", "rag-backup-service", None, deadline(5))
            .await
            .unwrap();
    assert_eq!(out.previous.as_ref().unwrap()["service"], "rag-api");
    assert_eq!(
        out.detail,
        format!("ingress {NS}/rag: 2 backend(s) switched from rag-api to rag-backup-service")
    );
    let ing = api
        .get("networking.k8s.io/v1", "ingresses", NS, "rag")
        .unwrap();
    for p in ing["spec"]["rules"][0]["http"]["paths"].as_array().unwrap() {
        assert_eq!(p["backend"]["service"]["name"], "rag-backup-service");
        assert_eq!(p["backend"]["service"]["port"]["number"], 8000);
    }
    let patch = &api.requests_to(
        "patch",
        &format!("/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/rag"),
    )[0];
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(
        patch.body["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["name"],
        "rag-backup-service"
    );
    assert_event(&api, "AstreinteIngressBackend", "Ingress", "rag", "Normal");

    // Undo: switch back to the previous service.
    let back = out.previous.unwrap()["service"]
        .as_str()
        .unwrap()
        .to_owned();
    act::switch_ingress_backend(&client, NS, "rag", &back, None, deadline(5))
        .await
        .unwrap();
    let ing = api
        .get("networking.k8s.io/v1", "ingresses", NS, "rag")
        .unwrap();
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "rag-api"
    );

    let limits = BTreeMap::from([
        (
            "nginx.ingress.kubernetes.io/limit-rps".to_owned(),
            Some("10".to_owned()),
        ),
        (
            "nginx.ingress.kubernetes.io/limit-connections".to_owned(),
            Some("5".to_owned()),
        ),
    ]);
    let out = act::patch_ingress_annotations(&client, NS, "rag", &limits, deadline(5))
        .await
        .unwrap();
    assert_eq!(
        out.previous.unwrap(),
        json!({ "nginx.ingress.kubernetes.io/limit-rps": "100", "nginx.ingress.kubernetes.io/limit-connections": null })
    );
    let ing = api
        .get("networking.k8s.io/v1", "ingresses", NS, "rag")
        .unwrap();
    assert_eq!(
        ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/limit-rps"],
        "10"
    );
    assert_event(
        &api,
        "AstreinteIngressAnnotations",
        "Ingress",
        "rag",
        "Normal",
    );
}

#[tokio::test]
async fn resources_are_raised_within_ceilings_only() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    let ceiling = Limits {
        cpu: Some("2".into()),
        memory: Some("2Gi".into()),
    };
    let too_much = Limits {
        cpu: Some("3".into()),
        memory: None,
    };
    let err = act::patch_resources(
        &client,
        NS,
        "rag-api",
        "rag-api",
        &too_much,
        &ceiling,
        deadline(5),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("cpu limit 3 is above the ceiling 2"),
        "{err}"
    );
    assert!(api.requests().is_empty());

    let wanted = Limits {
        cpu: Some("1500m".into()),
        memory: Some("1Gi".into()),
    };
    let out = act::patch_resources(
        &client,
        NS,
        "rag-api",
        "rag-api",
        &wanted,
        &ceiling,
        deadline(5),
    )
    .await
    .unwrap();
    assert_eq!(
        out.previous.unwrap(),
        json!({ "container": "rag-api", "limits": { "cpu": "500m", "memory": "512Mi" } })
    );
    let d = api.get("apps/v1", "deployments", NS, "rag-api").unwrap();
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 2, "the sidecar is kept");
    assert_eq!(
        containers[0]["resources"]["limits"],
        json!({ "cpu": "1500m", "memory": "1Gi" })
    );
    assert_eq!(containers[1]["name"], "sidecar");
    assert_eq!(d["metadata"]["generation"], 2);
    let patch = &api.requests_to("patch", "/deployments/rag-api")[0];
    assert!(patch.body["metadata"]["resourceVersion"].is_string());
    assert_event(
        &api,
        "AstreinteResources",
        "Deployment",
        "rag-api",
        "Normal",
    );

    let err = act::patch_resources(
        &client,
        NS,
        "rag-api",
        "nope",
        &wanted,
        &ceiling,
        deadline(5),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("container nope in deployment"),
        "{err}"
    );
}

#[tokio::test]
async fn delete_pod_removes_a_stuck_pod_only() {
    let api = KubeApi::start().await;
    api.put(objects::pod(NS, "rag-api-0", "rag-api", "Running", 0, None));
    let client = api.client().await;
    let err = act::delete_stuck_pod(&client, NS, "app=rag-api", deadline(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");

    api.put(objects::pod(
        NS,
        "rag-api-1",
        "rag-api",
        "Running",
        7,
        Some("CrashLoopBackOff"),
    ));
    let out = act::delete_stuck_pod(&client, NS, "app=rag-api", deadline(5))
        .await
        .unwrap();
    assert_eq!(
        out.detail,
        format!("deleted pod {NS}/rag-api-1 (CrashLoopBackOff)")
    );
    assert!(api.get("v1", "pods", NS, "rag-api-1").is_none());
    assert!(api.get("v1", "pods", NS, "rag-api-0").is_some());
    let deletes = api.requests_to("delete", &format!("/api/v1/namespaces/{NS}/pods/rag-api-1"));
    assert_eq!(deletes.len(), 1);
    assert_event(&api, "AstreinteDeletePod", "Pod", "rag-api-1", "Warning");
}

#[tokio::test]
async fn apply_dispatches_config_actions() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    let action: astreinte::config::ActionSpec = toml::from_str(&format!(
        "kind = \"scale\"\nnamespace = \"{NS}\"\ndeployment = \"rag-api\"\nreplicas = 6\nmax_replicas = 6\n"
    ))
    .unwrap();
    let out = act::apply(&client, &action, deadline(5)).await.unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2 })));
    let page: astreinte::config::ActionSpec = toml::from_str("kind = \"page\"\n").unwrap();
    assert!(matches!(
        act::apply(&client, &page, deadline(1)).await,
        Err(Error::NotKube("page"))
    ));
}
