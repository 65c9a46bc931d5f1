//! The workload probe on a Deployment the real controllers run and the kubelet stand-in
//! plays: healthy, a restart, a crash loop, replicas unavailable, none available, gone.

use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use astreinte::probes::{Observation, Outcome, Prober};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::common::deadline;
use crate::support::kube_api::objects as shapes;
use crate::support::kube_real::{KubeTest, objects};
use crate::support::wait_for;

async fn until(prober: &Prober, config: &Config, want: Outcome) -> Observation {
    wait_for(
        &format!("outcome {want:?}"),
        Duration::from_secs(20),
        || async {
            let o = prober.observe(config, &config.probes[0]).await;
            (o.outcome == want).then_some(o)
        },
    )
    .await
}

/// Rewrites the container statuses of a pod, as a kubelet reports them.
async fn containers(pods: &Api<Pod>, name: &str, restarts: i32, waiting: Option<&str>) {
    let state = waiting.map_or_else(
        || json!({ "running": { "startedAt": "2026-01-01T00:00:00Z" } }),
        |r| json!({ "waiting": { "reason": r } }),
    );
    let statuses: Vec<Value> = ["rag-api", "sidecar"]
        .iter()
        .map(|c| {
            json!({ "name": c, "ready": waiting.is_none(), "restartCount": restarts,
                    "image": "x", "imageID": "", "state": state })
        })
        .collect();
    pods.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": { "containerStatuses": statuses } })),
    )
    .await
    .unwrap();
}

async fn set_ready(pods: &Api<Pod>, name: &str, ready: &str) {
    let patch = json!({ "status": { "conditions": [{ "type": "Ready", "status": ready }] } });
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .unwrap();
}

#[tokio::test]
async fn workload_probe_replicas_crash_loops_and_restarts() {
    let t = KubeTest::new("workload-probe").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 3).await;
    // A pod of another app, restarting a lot: it must not count.
    let pods: Api<Pod> = Api::namespaced(t.admin.clone(), ns);
    let other: Pod = serde_json::from_value(shapes::pod(
        ns,
        "rag-celery-0",
        "rag-celery",
        "Running",
        0,
        None,
    ))
    .unwrap();
    pods.create(&PostParams::default(), &other).await.unwrap();
    astreinte::actuators::kube::wait_for_rollout(&t.admin, ns, "rag-api", deadline(60))
        .await
        .unwrap();
    let c: Config = load_from_strings(
        "test/policy",
        &format!(
            "[[probe]]\nid = \"api\"\nkind = \"workload\"\nnamespace = \"{ns}\"\ndeployment = \"rag-api\"\ninterval = \"10s\"\ntimeout = \"3s\"\n"
        ),
        "",
    )
    .unwrap();
    astreinte::app::install_crypto();
    let prober = Prober::new()
        .unwrap()
        .with_kube(Some(t.service_account_client().await));
    let o = until(&prober, &c, Outcome::Healthy).await;
    assert_eq!(o.detail, "deployment rag-api: 3/3 available, 3 updated");
    wait_for("rag-celery-0 running", Duration::from_secs(20), || async {
        let p = pods.get("rag-celery-0").await.ok()?;
        (p.status?.phase.as_deref() == Some("Running")).then_some(())
    })
    .await;
    containers(&pods, "rag-celery-0", 9, None).await;

    let names: Vec<String> = pods
        .list(&ListParams::default().labels("app=rag-api"))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    let o = prober.observe(&c, &c.probes[0]).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);

    // A restart since the last tick, then none.
    containers(&pods, &names[1], 1, None).await;
    let o = prober.observe(&c, &c.probes[0]).await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(1.0, "pod_restarted"),
        "{}",
        o.detail
    );
    assert!(
        o.detail
            .contains(&format!("restarted since last check: {}", names[1])),
        "{}",
        o.detail
    );
    let o = prober.observe(&c, &c.probes[0]).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);

    containers(&pods, &names[2], 1, Some("CrashLoopBackOff")).await;
    let o = prober.observe(&c, &c.probes[0]).await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(1.0, "pods_not_running"),
        "{}",
        o.detail
    );
    assert!(
        o.detail
            .contains(&format!("{} (CrashLoopBackOff)", names[2])),
        "{}",
        o.detail
    );

    // Two pods NotReady: the ReplicaSet and Deployment controllers count them unavailable.
    for n in &names[1..] {
        set_ready(&pods, n, "False").await;
    }
    until(&prober, &c, Outcome::degraded(2.0, "replicas_unavailable")).await;
    set_ready(&pods, &names[0], "False").await;
    until(&prober, &c, Outcome::failed("no_replicas_available")).await;

    Api::<Deployment>::namespaced(t.admin.clone(), ns)
        .delete("rag-api", &DeleteParams::default())
        .await
        .unwrap();
    until(&prober, &c, Outcome::failed("deployment_not_found")).await;
}
