//! The exact requests of the Kubernetes patch actuators (ConfigMap data, ingress backend and
//! annotations, container resources), recorded by the API test server: content type, patch
//! body, a compare-and-swap resourceVersion, nothing sent when a bound refuses. What the
//! patches do to real objects (previous values, undo, bounds, Events, stuck pod deletion) is
//! tested on the real control plane: tests/kube_real/actuators.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Limits};
use serde_json::json;
use support::kube_api::{KubeApi, objects};
use tokio::time::Instant;

const NS: &str = "rag-production";

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn configmap_patch_is_one_merge_patch_of_the_wanted_keys() {
    // Fake: request recording (the patch body and content type are not visible on a real server).
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
    act::patch_configmap(&client, NS, "rag-flags", &data, deadline(5))
        .await
        .unwrap();
    let patches = api.requests_to("patch", "/configmaps/rag-flags");
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(
        patches[0].body["data"],
        json!({ "READ_ONLY_MODE": "true", "DISABLE_ANALYTICS": "true" })
    );
}

#[tokio::test]
async fn ingress_backend_switch_is_one_merge_patch() {
    // Fake: request recording (the patch body and content type are not visible on a real server).
    let api = KubeApi::start().await;
    api.put(objects::ingress(NS, "rag", "rag-api"));
    let client = api.client().await;
    act::switch_ingress_backend(&client, NS, "rag", "rag-backup-service", None, deadline(5))
        .await
        .unwrap();
    let patches = api.requests_to(
        "patch",
        &format!("/apis/networking.k8s.io/v1/namespaces/{NS}/ingresses/rag"),
    );
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(
        patches[0].body["spec"]["rules"][0]["http"]["paths"][1]["backend"]["service"]["name"],
        "rag-backup-service"
    );
}

#[tokio::test]
async fn resources_patch_is_a_compare_and_swap_and_a_refusal_sends_nothing() {
    // Fake: request recording (what was sent, and that nothing was, are not visible on a real server).
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
    act::patch_resources(
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
    assert!(api.requests().is_empty(), "a refused patch sends nothing");

    let wanted = Limits {
        cpu: Some("1500m".into()),
        memory: Some("1Gi".into()),
    };
    act::patch_resources(
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
    let patch = &api.requests_to("patch", "/deployments/rag-api")[0];
    assert!(patch.body["metadata"]["resourceVersion"].is_string());
}
