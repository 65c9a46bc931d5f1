//! The Kubernetes actuators against the API test server, through the real kube client, for
//! what a real apiserver cannot be made to show here: the exact requests (path, content type,
//! patch body), injected 409, 429 and 5xx answers, an apiserver gone. Rollouts, bounds,
//! undo values, Events, RBAC and real 404/409 run on the real control plane:
//! tests/kube_real.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Error, RESTARTED_AT};
use serde_json::json;
use support::kube_api::{KubeApi, objects};
use tokio::time::Instant;

const NS: &str = "rag-production";

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn rollout_restart_sends_one_merge_patch_of_the_kubectl_annotation() {
    // Fake: request recording (the patch body and content type are not visible on a real server).
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 3, 3));
    let client = api.client().await;
    let started = jiff::Timestamp::now();
    let out = act::rollout_restart(&client, NS, "rag-api", deadline(5))
        .await
        .unwrap();
    assert!(
        out.detail
            .contains("complete: 3 updated, 3 ready, 3 available of 3"),
        "{}",
        out.detail
    );

    let patches = api.requests_to(
        "patch",
        &format!("/apis/apps/v1/namespaces/{NS}/deployments/rag-api"),
    );
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    let body = &patches[0].body;
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["spec"], "only the template annotation is patched");
    let annotations = &body["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations.as_object().unwrap().len(), 1);
    // kubectl's key, not kube-rs' `kube.kubernetes.io/restartedAt`.
    let at = annotations["kubectl.kubernetes.io/restartedAt"]
        .as_str()
        .unwrap();
    assert_eq!(RESTARTED_AT, "kubectl.kubernetes.io/restartedAt");
    let at: jiff::Timestamp = at.parse().unwrap();
    assert!(
        at.as_second() >= started.as_second() - 1,
        "RFC 3339 time of the restart"
    );
}

#[tokio::test]
async fn scale_reads_and_patches_the_subresource_with_a_compare_and_swap() {
    // Fake: request recording (which calls were sent, and that none was, are not visible on a real server).
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;

    let err = act::scale(&client, NS, "rag-api", 7, 6, deadline(5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("above max_replicas 6"), "{err}");
    assert!(api.requests().is_empty(), "a refused scale sends nothing");

    let out = act::scale(&client, NS, "rag-api", 6, 6, deadline(5))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2, "@applied": 6 })));
    assert_eq!(
        out.detail,
        format!("scaled deployment {NS}/rag-api from 2 to 6 replicas")
    );
    let path = format!("/apis/apps/v1/namespaces/{NS}/deployments/rag-api/scale");
    assert_eq!(api.requests_to("get", &path).len(), 1);
    let patches = api.requests_to("patch", &path);
    assert_eq!(patches.len(), 1);
    assert_eq!(patches[0].content_type, "application/merge-patch+json");
    assert_eq!(patches[0].body["spec"], json!({ "replicas": 6 }));
    assert!(
        patches[0].body["metadata"]["resourceVersion"].is_string(),
        "a compare-and-swap"
    );
}

#[tokio::test]
async fn a_conflict_is_retried_after_a_reread() {
    // Fake: fault injection (two 409s in a row on demand) and request counts.
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    api.fail_next("patch", "deployments", "rag-api", 2, 409);
    let out = act::scale(&client, NS, "rag-api", 4, 6, deadline(5))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2, "@applied": 4 })));
    let path = "/deployments/rag-api/scale";
    assert_eq!(
        api.requests_to("patch", path).len(),
        3,
        "two 409s, then success"
    );
    assert_eq!(
        api.requests_to("get", path).len(),
        3,
        "re-read before each attempt"
    );
}

#[tokio::test]
async fn a_configmap_conflict_is_retried() {
    // Fake: fault injection (a 409 between the read and the write on demand); the real 409 on a
    // stale resourceVersion is tests/kube_real/actuators.rs.
    let api = KubeApi::start().await;
    api.put(objects::configmap(
        NS,
        "rag-flags",
        json!({ "READ_ONLY_MODE": "false" }),
    ));
    let client = api.client().await;
    api.fail_next("patch", "configmaps", "rag-flags", 1, 409);
    let data = BTreeMap::from([("READ_ONLY_MODE".to_owned(), Some("true".to_owned()))]);
    act::patch_configmap(&client, NS, "rag-flags", &data, deadline(5))
        .await
        .unwrap();
    assert_eq!(api.requests_to("patch", "/configmaps/rag-flags").len(), 2);
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff() {
    // Fake: fault injection (429 with Retry-After, 500, 503 until the deadline).
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    api.fail_next("get", "deployments", "rag-api", 1, 429);
    api.fail_next("patch", "deployments", "rag-api", 1, 500);
    let started = std::time::Instant::now();
    let out = act::scale(&client, NS, "rag-api", 3, 6, deadline(10))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2, "@applied": 3 })));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the 429's Retry-After (1 s) is honoured"
    );
    assert_eq!(
        api.requests_to("get", "/deployments/rag-api/scale").len(),
        3
    );

    // Failing until the deadline: a deadline error naming the call and the last error.
    api.fail_next("patch", "deployments", "rag-api", 1000, 503);
    let err = act::scale(&client, NS, "rag-api", 4, 6, deadline(1))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("deadline reached while trying to patch deployments.apps/scale"),
        "{text}"
    );
    assert!(text.contains("503"), "{text}");
}

#[tokio::test]
async fn an_unreachable_apiserver_is_retried_until_the_deadline() {
    // Fake: the server is stopped mid-test (the real plane is shared by the whole binary).
    let api = KubeApi::start().await;
    let client = api.client().await;
    drop(api);
    let started = std::time::Instant::now();
    let err = act::scale(&client, NS, "rag-api", 2, 6, deadline(1))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "retried until the deadline"
    );
    assert!(
        text.starts_with("deadline reached while trying to patch deployments.apps/scale"),
        "{text}"
    );
    assert!(text.contains("cannot reach the kubernetes api"), "{text}");
}
