//! The other actuators on real objects, as the ServiceAccount: scale through the subresource
//! within bounds, ConfigMap and Ingress patches with their undo values, container resources
//! under ceilings, a stuck pod deleted, a missing object named, a stale resourceVersion
//! refused with 409.

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Error, Limits};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::{deadline, event_reasons};
use crate::support::kube_api::objects as shapes;
use crate::support::kube_real::{KubeTest, KubeletConfig, objects};
use crate::support::wait_for;

async fn deployment(t: &KubeTest, name: &str) -> Deployment {
    Api::<Deployment>::namespaced(t.admin.clone(), &t.ns)
        .get(name)
        .await
        .unwrap()
}

async fn assert_event(t: &KubeTest, reason: &str) {
    let reasons = event_reasons(&t.admin, &t.ns).await;
    assert!(
        reasons.iter().any(|r| r == reason),
        "no {reason} in {reasons:?}"
    );
}

#[tokio::test]
async fn scale_within_bounds_returns_the_previous_count_and_undoes_and_apply_dispatches() {
    let t = KubeTest::new("scale").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 2).await;
    let sa = t.service_account_client().await;

    let err = act::scale(&sa, ns, "rag-api", 7, 6, deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert!(err.to_string().contains("above max_replicas 6"), "{err}");
    assert_eq!(
        deployment(&t, "rag-api").await.spec.unwrap().replicas,
        Some(2)
    );

    let out = act::scale(&sa, ns, "rag-api", 6, 6, deadline(10))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2, "@applied": 6 })));
    assert_eq!(
        out.detail,
        format!("scaled deployment {ns}/rag-api from 2 to 6 replicas")
    );
    assert_eq!(
        deployment(&t, "rag-api").await.spec.unwrap().replicas,
        Some(6)
    );
    assert_event(&t, "AstreinteScale").await;

    // Undo: back to the previous count.
    act::scale(&sa, ns, "rag-api", 2, 6, deadline(10))
        .await
        .unwrap();
    assert_eq!(
        deployment(&t, "rag-api").await.spec.unwrap().replicas,
        Some(2)
    );

    let action: astreinte::config::ActionSpec = toml::from_str(&format!(
        "kind = \"scale\"\nnamespace = \"{ns}\"\ndeployment = \"rag-api\"\nreplicas = 3\nmax_replicas = 6\n"
    ))
    .unwrap();
    let out = act::apply(&sa, &action, deadline(10)).await.unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2, "@applied": 3 })));
    let page: astreinte::config::ActionSpec = toml::from_str("kind = \"page\"\n").unwrap();
    assert!(matches!(
        act::apply(&sa, &page, deadline(1)).await,
        Err(Error::NotKube("page"))
    ));
}

#[tokio::test]
async fn a_missing_object_is_named() {
    let t = KubeTest::new("missing").await;
    let sa = t.service_account_client().await;
    let err = act::scale(&sa, &t.ns, "nope", 2, 6, deadline(10))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("deployments.apps/scale {}/nope not found", t.ns)
    );
}

#[tokio::test]
async fn a_stale_resource_version_is_refused_with_409() {
    let t = KubeTest::new("stale-write").await;
    let cm = objects::configmap(&t.admin, &t.ns, "rag-flags", json!({ "X": "0" })).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), &t.ns);
    let stale = cm.metadata.resource_version.unwrap();
    cms.patch(
        "rag-flags",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": { "X": "1" } })),
    )
    .await
    .unwrap();
    let err = cms
        .patch(
            "rag-flags",
            &PatchParams::default(),
            &Patch::Merge(
                json!({ "metadata": { "resourceVersion": stale }, "data": { "X": "2" } }),
            ),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (409, "Conflict")),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn configmap_patch_returns_previous_values_and_undo_restores_them() {
    let t = KubeTest::new("configmap-patch").await;
    let ns = t.ns.as_str();
    objects::configmap(
        &t.admin,
        ns,
        "rag-flags",
        json!({ "READ_ONLY_MODE": "false", "OTHER": "keep" }),
    )
    .await;
    let sa = t.service_account_client().await;
    let data = BTreeMap::from([
        ("READ_ONLY_MODE".to_owned(), Some("true".to_owned())),
        ("DISABLE_ANALYTICS".to_owned(), Some("true".to_owned())),
    ]);
    let out = act::patch_configmap(&sa, ns, "rag-flags", &data, deadline(10))
        .await
        .unwrap();
    let mut previous = out.previous.unwrap();
    assert_eq!(
        previous.as_object_mut().unwrap().remove("@applied"),
        Some(json!({ "READ_ONLY_MODE": "true", "DISABLE_ANALYTICS": "true" })),
        "what the action set, for the undo's check"
    );
    assert_eq!(
        previous,
        json!({ "READ_ONLY_MODE": "false", "DISABLE_ANALYTICS": null })
    );
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), ns);
    let now = || async { json!(cms.get("rag-flags").await.unwrap().data) };
    assert_eq!(
        now().await,
        json!({ "READ_ONLY_MODE": "true", "DISABLE_ANALYTICS": "true", "OTHER": "keep" })
    );
    assert_event(&t, "AstreinteConfigPatch").await;

    // Undo with the previous values: the absent key is removed again.
    let undo: BTreeMap<String, Option<String>> = serde_json::from_value(previous).unwrap();
    act::patch_configmap(&sa, ns, "rag-flags", &undo, deadline(10))
        .await
        .unwrap();
    assert_eq!(
        now().await,
        json!({ "READ_ONLY_MODE": "false", "OTHER": "keep" })
    );
}

#[tokio::test]
async fn ingress_backend_switch_and_annotations() {
    let t = KubeTest::new("ingress").await;
    let ns = t.ns.as_str();
    let ing: Ingress = serde_json::from_value(shapes::ingress(ns, "rag", "rag-api")).unwrap();
    let ings: Api<Ingress> = Api::namespaced(t.admin.clone(), ns);
    ings.create(&PostParams::default(), &ing).await.unwrap();
    let sa = t.service_account_client().await;
    let backends = || async {
        let ing = serde_json::to_value(ings.get("rag").await.unwrap()).unwrap();
        ing["spec"]["rules"][0]["http"]["paths"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["backend"]["service"].clone())
            .collect::<Vec<Value>>()
    };

    let out = act::switch_ingress_backend(&sa, ns, "rag", "rag-backup-service", None, deadline(10))
        .await
        .unwrap();
    assert_eq!(out.previous.as_ref().unwrap()["service"], "rag-api");
    assert_eq!(
        out.detail,
        format!("ingress {ns}/rag: 2 backend(s) switched from rag-api to rag-backup-service")
    );
    let backup = json!({ "name": "rag-backup-service", "port": { "number": 8000 } });
    assert_eq!(backends().await, [backup.clone(), backup]);
    assert_event(&t, "AstreinteIngressBackend").await;

    // Undo: switch back to the previous service.
    let back = out.previous.unwrap()["service"]
        .as_str()
        .unwrap()
        .to_owned();
    act::switch_ingress_backend(&sa, ns, "rag", &back, None, deadline(10))
        .await
        .unwrap();
    assert_eq!(backends().await[0]["name"], "rag-api");

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
    let out = act::patch_ingress_annotations(&sa, ns, "rag", &limits, deadline(10))
        .await
        .unwrap();
    assert_eq!(
        out.previous.unwrap(),
        json!({
            "nginx.ingress.kubernetes.io/limit-rps": "100",
            "nginx.ingress.kubernetes.io/limit-connections": null,
            "@applied": { "nginx.ingress.kubernetes.io/limit-rps": "10", "nginx.ingress.kubernetes.io/limit-connections": "5" },
        })
    );
    let annotations = ings.get("rag").await.unwrap().metadata.annotations.unwrap();
    assert_eq!(annotations["nginx.ingress.kubernetes.io/limit-rps"], "10");
    assert_event(&t, "AstreinteIngressAnnotations").await;
}

#[tokio::test]
async fn resources_are_raised_within_ceilings_only() {
    let t = KubeTest::new("resources").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 2).await;
    let sa = t.service_account_client().await;
    let ceiling = Limits {
        cpu: Some("2".into()),
        memory: Some("2Gi".into()),
    };
    let too_much = Limits {
        cpu: Some("3".into()),
        memory: None,
    };
    let err = act::patch_resources(
        &sa,
        ns,
        "rag-api",
        "rag-api",
        &too_much,
        &ceiling,
        deadline(10),
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("cpu limit 3 is above the ceiling 2"),
        "{err}"
    );
    assert_eq!(deployment(&t, "rag-api").await.metadata.generation, Some(1));

    let wanted = Limits {
        cpu: Some("1500m".into()),
        memory: Some("1Gi".into()),
    };
    let out = act::patch_resources(
        &sa,
        ns,
        "rag-api",
        "rag-api",
        &wanted,
        &ceiling,
        deadline(10),
    )
    .await
    .unwrap();
    assert_eq!(
        out.previous.unwrap(),
        json!({
            "container": "rag-api",
            "limits": { "cpu": "500m", "memory": "512Mi" },
            "@applied": { "cpu": "1500m", "memory": "1Gi" },
        })
    );
    let d = serde_json::to_value(deployment(&t, "rag-api").await).unwrap();
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
    assert_event(&t, "AstreinteResources").await;

    let err = act::patch_resources(&sa, ns, "rag-api", "nope", &wanted, &ceiling, deadline(10))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("container nope in deployment"),
        "{err}"
    );
}

/// A bare pod of `app`, played by the stand-in until Ready.
async fn ready_pod(t: &KubeTest, name: &str, app: &str) {
    let pods: Api<Pod> = Api::namespaced(t.admin.clone(), &t.ns);
    let pod: Pod =
        serde_json::from_value(shapes::pod(&t.ns, name, app, "Running", 0, None)).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for(
        &format!("pod {name} Ready"),
        Duration::from_secs(30),
        || async {
            let p = pods.get(name).await.ok()?;
            p.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn delete_pod_removes_a_stuck_pod_only() {
    let t = KubeTest::with_kubelet(
        "delete-pod",
        KubeletConfig {
            // Long enough that the deleted pod is still terminating when the action runs again.
            delete_after: Duration::from_secs(5),
            ..KubeletConfig::default()
        },
    )
    .await;
    let ns = t.ns.as_str();
    ready_pod(&t, "rag-api-0", "rag-api").await;
    ready_pod(&t, "rag-api-1", "rag-api").await;
    let sa = t.service_account_client().await;
    let err = act::delete_stuck_pod(&sa, ns, "app=rag-api", deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");

    // rag-api-1 crash-loops, as a kubelet would report it.
    let pods: Api<Pod> = Api::namespaced(t.admin.clone(), ns);
    pods.patch_status(
        "rag-api-1",
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "containerStatuses": [{
            "name": "rag-api", "ready": false, "restartCount": 7, "image": "x", "imageID": "",
            "state": { "waiting": { "reason": "CrashLoopBackOff" } },
        }] } })),
    )
    .await
    .unwrap();
    let out = act::delete_stuck_pod(&sa, ns, "app=rag-api", deadline(10))
        .await
        .unwrap();
    assert_eq!(
        out.detail,
        format!("deleted pod {ns}/rag-api-1 (CrashLoopBackOff)")
    );
    assert!(
        pods.get("rag-api-1")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
    );
    assert!(
        pods.get("rag-api-0")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_none()
    );
    assert_event(&t, "AstreinteDeletePod").await;

    // While it terminates, the next action finds no other stuck pod: it does not "delete"
    // the same terminating pod again.
    let again = act::delete_stuck_pod(&sa, ns, "app=rag-api", deadline(10)).await;
    assert!(matches!(again, Err(Error::Refused(_))), "{again:?}");
    wait_for("rag-api-1 gone", Duration::from_secs(30), || async {
        pods.get_opt("rag-api-1")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
}
