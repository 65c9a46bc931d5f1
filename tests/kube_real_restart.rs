//! kube-apiserver restarted under the daemon's watches, on a real control plane of this
//! binary's own (tests/support/kube_real; a restart would disturb the tests sharing
//! tests/kube_real.rs's plane): the node watch resumes with a resourceVersion the new
//! apiserver no longer serves (410 Gone), relists, and the probe sees a change made right
//! after the restart; the policy watch, back from an outage long enough for its backoff to
//! grow, applies an edit made right after the apiserver returns within its capped pause.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use astreinte::metrics::Metrics;
use astreinte::probes::{Observation, Outcome, Prober};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use support::kube_real::{KubeTest, kubeconfig, nodes, objects};
use support::wait_for;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

/// The tests of this binary take the shared apiserver down in turn, one at a time.
static APISERVER: Mutex<()> = Mutex::const_new(());

/// Writes the watches of the test do not see: they move etcd's revision past their
/// resourceVersion, so the restarted apiserver's watch cache (which starts there) answers a
/// resumed watch with 410 Gone.
async fn bump(t: &KubeTest) {
    for i in 0..3 {
        objects::configmap(&t.admin, &t.ns, &format!("bump-{i}"), json!({})).await;
    }
}

async fn until(prober: &Prober, config: &Config, want: Outcome) -> Observation {
    wait_for(
        &format!("outcome {want:?}"),
        Duration::from_secs(30),
        || async {
            let o = prober.observe(config, &config.probes[0]).await;
            (o.outcome == want).then_some(o)
        },
    )
    .await
}

#[tokio::test]
async fn the_node_probe_follows_the_cluster_across_an_apiserver_restart() {
    let _apiserver = APISERVER.lock().await;
    let t = KubeTest::new("apiserver-restart").await;
    let c = load_from_strings(
        "test/policy",
        &format!(
            "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\nlabel_selector = \"{}={}\"\n",
            nodes::OWNER_LABEL,
            t.ns
        ),
        "",
    )
    .unwrap();
    astreinte::app::install_crypto();
    let prober = Prober::new()
        .unwrap()
        .with_kube(Some(t.service_account_client().await));
    until(&prober, &c, Outcome::Healthy).await;

    bump(&t).await;
    t.plane.restart_apiserver().await.unwrap();
    // A new client: the admin's pooled connections died with the old process.
    let admin = kubeconfig::client(t.admin_kubeconfig()).await;
    nodes::set_condition(&admin, &t.node, "Ready", "False").await;
    let o = until(&prober, &c, Outcome::failed("cluster_down")).await;
    assert!(o.detail.contains(&t.node), "{}", o.detail);

    nodes::set_condition(&admin, &t.node, "Ready", "True").await;
    until(&prober, &c, Outcome::Healthy).await;
}

fn policy(mode: &str) -> serde_json::Value {
    json!({
        "probes.toml": "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        "remediations.toml": format!("[policy]\nmode = \"{mode}\"\n"),
    })
}

#[tokio::test]
async fn the_policy_watch_applies_an_edit_soon_after_a_long_apiserver_outage() {
    let _apiserver = APISERVER.lock().await;
    let t = KubeTest::new("policy-outage").await;
    objects::configmap(&t.admin, &t.ns, "astreinte-policy", policy("off")).await;
    astreinte::app::install_crypto();
    let (rx, _task) = astreinte::reload::spawn(
        t.service_account_client().await,
        &t.ns,
        "astreinte-policy",
        Arc::new(load_from_strings("test/initial", "", "").unwrap()),
        Arc::new(Metrics::new()),
        CancellationToken::new(),
    );
    let mode = |want: &'static str| {
        let rx = rx.clone();
        move || {
            let rx = rx.clone();
            async move { (rx.borrow().policy.mode.as_str() == want).then_some(()) }
        }
    };
    wait_for(
        "the ConfigMap's off policy",
        Duration::from_secs(30),
        mode("off"),
    )
    .await;

    bump(&t).await;
    t.plane.stop_apiserver().await;
    // The outage itself, not a synchronisation: nothing is awaited but its length, over which
    // kube-runtime's default backoff grows to pauses of 13-26 s (0.8 s doubling, jittered).
    tokio::time::sleep(Duration::from_secs(25)).await;
    t.plane.start_apiserver().await.unwrap();
    // A new client: the admin's pooled connections died with the old process.
    let admin = kubeconfig::client(t.admin_kubeconfig()).await;
    Api::<ConfigMap>::namespaced(admin, &t.ns)
        .patch(
            "astreinte-policy",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": policy("enforce") })),
        )
        .await
        .unwrap();
    // The watch retries within its capped pause (5 s), then again after the 410 Gone.
    wait_for(
        "the edited enforce policy, published",
        Duration::from_secs(15),
        mode("enforce"),
    )
    .await;
}
