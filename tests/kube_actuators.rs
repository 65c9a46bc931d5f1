//! The Kubernetes actuators against the API test server, through the real kube client: the
//! exact requests (path, content type, patch body), the bounds, conflict and 429 retries,
//! a 403 named, a stuck rollout hitting its deadline, an Event per action, and the RBAC of
//! `deploy/base/rbac.yaml` compared with what the code uses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Error, Limits, RESTARTED_AT};
use serde_json::{Value, json};
use support::kube_api::{KubeApi, Rbac, Rollout, objects, rbac};
use tokio::time::Instant;

const NS: &str = "rag-production";

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

fn event(api: &KubeApi, reason: &str) -> Value {
    api.events(NS)
        .into_iter()
        .find(|e| e["reason"] == reason)
        .unwrap_or_else(|| panic!("no {reason} event in {:#?}", api.events(NS)))
}

fn assert_event(api: &KubeApi, reason: &str, kind: &str, name: &str, ty: &str) -> Value {
    let e = event(api, reason);
    assert_eq!(e["involvedObject"]["kind"], kind);
    assert_eq!(e["involvedObject"]["name"], name);
    assert_eq!(e["involvedObject"]["namespace"], NS);
    assert_eq!(e["type"], ty);
    assert_eq!(e["reportingComponent"], "astreinte");
    assert_eq!(e["source"]["component"], "astreinte");
    e
}

#[tokio::test]
async fn rollout_restart_patches_the_kubectl_annotation_and_waits() {
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

    let d = api.get("apps/v1", "deployments", NS, "rag-api").unwrap();
    assert_eq!(d["metadata"]["generation"], 2);
    assert_eq!(d["status"]["observedGeneration"], 2);
    assert_event(
        &api,
        "AstreinteRolloutRestart",
        "Deployment",
        "rag-api",
        "Normal",
    );
}

#[tokio::test]
async fn a_stuck_rollout_hits_its_deadline() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 3, 3));
    api.set_rollout(Rollout::Stuck);
    let client = api.client().await;
    let started = std::time::Instant::now();
    let err = act::rollout_restart(&client, NS, "rag-api", deadline(2))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, Error::RolloutStuck { .. }), "{err}");
    assert!(err.to_string().contains("1 updated"), "{err}");
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_event(
        &api,
        "AstreinteRolloutStuck",
        "Deployment",
        "rag-api",
        "Warning",
    );
}

#[tokio::test]
async fn scale_uses_the_subresource_within_bounds_and_returns_the_previous_count() {
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
    assert_eq!(out.previous, Some(json!({ "replicas": 2 })));
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
    let d = api.get("apps/v1", "deployments", NS, "rag-api").unwrap();
    assert_eq!(d["spec"]["replicas"], 6);
    assert_event(&api, "AstreinteScale", "Deployment", "rag-api", "Normal");

    // Undo: back to the previous count.
    act::scale(&client, NS, "rag-api", 2, 6, deadline(5))
        .await
        .unwrap();
    let d = api.get("apps/v1", "deployments", NS, "rag-api").unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
}

#[tokio::test]
async fn a_conflict_is_retried_after_a_reread() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    api.fail_next("patch", "deployments", "rag-api", 2, 409);
    let out = act::scale(&client, NS, "rag-api", 4, 6, deadline(5))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2 })));
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
async fn a_real_stale_write_conflicts_and_is_retried() {
    // Another writer changes the ConfigMap between our read and our write: the fake's real
    // resourceVersion check answers 409 and the actuator re-reads.
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

    // And directly: a patch carrying an old resourceVersion is refused by the server.
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};
    let cms: Api<ConfigMap> = Api::namespaced(client, NS);
    let err = cms
        .patch(
            "rag-flags",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "resourceVersion": "1" }, "data": { "X": "1" } })),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn transient_errors_are_retried_with_backoff() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    api.fail_next("get", "deployments", "rag-api", 1, 429);
    api.fail_next("patch", "deployments", "rag-api", 1, 500);
    let started = std::time::Instant::now();
    let out = act::scale(&client, NS, "rag-api", 3, 6, deadline(10))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2 })));
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
async fn a_403_names_the_verb_and_resource_the_service_account_lacks() {
    let rbac = Rbac::from_yaml(&rbac::repo_rbac_yaml()).without("patch", "apps", "deployments");
    let api = KubeApi::start_with(rbac).await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    let err = act::rollout_restart(&client, NS, "rag-api", deadline(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "forbidden: the service account may not patch deployments.apps in namespace {NS} \
             (grant it in the Role of deploy/base/rbac.yaml)"
        )
    );
    assert_eq!(err.kind(), "forbidden");
    assert_eq!(
        api.requests_to("patch", "/deployments/rag-api").len(),
        1,
        "not retried"
    );
    // The server's own message has the real apiserver shape.
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};
    let d: Api<Deployment> = Api::namespaced(client, NS);
    let raw = d
        .patch("rag-api", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .unwrap_err();
    match raw {
        kube::Error::Api(s) => assert_eq!(
            s.message,
            format!(
                "deployments.apps \"rag-api\" is forbidden: User \
                 \"system:serviceaccount:astreinte:astreinte\" cannot patch resource \
                 \"deployments\" in API group \"apps\" in the namespace \"{NS}\""
            )
        ),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_missing_object_is_named() {
    let api = KubeApi::start().await;
    let client = api.client().await;
    let err = act::scale(&client, NS, "nope", 2, 6, deadline(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("deployments.apps/scale {NS}/nope not found")
    );
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

/// Every verb `deploy/base/rbac.yaml` grants is used by the code, and the code needs no
/// other: each feature runs once against one server that records what it served.
#[tokio::test]
async fn rbac_grants_exactly_what_the_code_uses() {
    use astreinte::journal::{KubeStore, Store};
    use tokio_util::sync::CancellationToken;
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    api.put(objects::pod(
        NS,
        "rag-api-0",
        "rag-api",
        "Running",
        0,
        Some("CrashLoopBackOff"),
    ));
    api.put(objects::configmap(NS, "rag-flags", json!({})));
    api.put(objects::ingress(NS, "rag", "rag-api"));
    api.put(objects::configmap(
        "astreinte",
        "astreinte-policy",
        json!({ "probes.toml": "", "remediations.toml": "" }),
    ));
    let client = api.client().await;
    astreinte::app::install_crypto();

    // Probes.
    let config = astreinte::config::load_from_strings(
        "t/t",
        &format!(
            "[[probe]]\nid = \"n\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\n\
             [[probe]]\nid = \"w\"\nkind = \"workload\"\nnamespace = \"{NS}\"\ndeployment = \"rag-api\"\ninterval = \"10s\"\ntimeout = \"3s\"\n"
        ),
        "",
    )
    .unwrap();
    let prober = astreinte::probes::Prober::new()
        .unwrap()
        .with_kube(Some(client.clone()));
    for p in &config.probes {
        let o = prober.observe(&config, p).await;
        assert!(
            !matches!(o.outcome, astreinte::probes::Outcome::Unknown { .. }),
            "{}",
            o.detail
        );
    }
    // Actuators.
    act::rollout_restart(&client, NS, "rag-api", deadline(5))
        .await
        .unwrap();
    act::scale(&client, NS, "rag-api", 3, 6, deadline(5))
        .await
        .unwrap();
    let flags = BTreeMap::from([("READ_ONLY_MODE".to_owned(), Some("true".to_owned()))]);
    act::patch_configmap(&client, NS, "rag-flags", &flags, deadline(5))
        .await
        .unwrap();
    act::switch_ingress_backend(&client, NS, "rag", "rag-backup-service", None, deadline(5))
        .await
        .unwrap();
    let wanted = Limits {
        cpu: Some("1".into()),
        memory: None,
    };
    act::patch_resources(
        &client,
        NS,
        "rag-api",
        "rag-api",
        &wanted,
        &Limits::default(),
        deadline(5),
    )
    .await
    .unwrap();
    act::delete_stuck_pod(&client, NS, "app=rag-api", deadline(5))
        .await
        .unwrap();
    // Journal.
    let store = KubeStore::new(client.clone(), "astreinte", "astreinte-journal");
    let v = store.save("[]", None).await.unwrap();
    store.load().await.unwrap();
    store.save("[1]", Some(&v)).await.unwrap();
    // Leader election: acquire (get, create) and renew (update).
    let cancel = CancellationToken::new();
    let lease = astreinte::leader::LeaderConfig {
        namespace: "astreinte".into(),
        name: "astreinte-leader".into(),
        identity: "a".into(),
        duration: Duration::from_secs(2),
        renew: Duration::from_millis(100),
    };
    let (leading, task) = astreinte::leader::spawn(client.clone(), lease, cancel.clone(), None);
    support::wait_for("a renewal", Duration::from_secs(5), || async {
        (*leading.borrow()
            && !api
                .requests_to("update", "/leases/astreinte-leader")
                .is_empty())
        .then_some(())
    })
    .await;
    cancel.cancel();
    task.await.unwrap();
    // Policy watch (list, watch), with an invalid ConfigMap so an Event is created too.
    let metrics = std::sync::Arc::new(astreinte::metrics::Metrics::new());
    let (_rx, _task) = astreinte::reload::spawn(
        client.clone(),
        "astreinte",
        "astreinte-policy",
        std::sync::Arc::new(config.clone()),
        metrics,
        CancellationToken::new(),
    );
    support::wait_for("the policy watch", Duration::from_secs(5), || async {
        (!api
            .requests_to("watch", "/namespaces/astreinte/configmaps")
            .is_empty())
        .then_some(())
    })
    .await;

    assert!(api.denied().is_empty(), "denied: {:?}", api.denied());
    let used = api.used();
    let granted = api.granted();
    let unused: Vec<_> = granted.difference(&used).collect();
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "deploy/base/rbac.yaml grants verbs the code never uses: {unused:?}; \
         the code uses verbs it does not grant: {missing:?}"
    );
}
