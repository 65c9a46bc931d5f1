//! kube-apiserver restarted under the daemon's watches, on a real control plane of this
//! binary's own (tests/support/kube_real; a restart would disturb the tests sharing
//! tests/kube_real.rs's plane): the node watch resumes with a resourceVersion the new
//! apiserver no longer serves (410 Gone), relists, and the probe sees a change made right
//! after the restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use astreinte::probes::{Observation, Outcome, Prober};
use serde_json::json;
use support::kube_real::{KubeTest, kubeconfig, nodes, objects};
use support::wait_for;

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

    // Writes the node watch does not see move etcd's revision past its resourceVersion: the
    // restarted apiserver's watch cache starts there, so the resumed watch gets 410 Gone.
    for i in 0..3 {
        objects::configmap(&t.admin, &t.ns, &format!("bump-{i}"), json!({})).await;
    }
    t.plane.restart_apiserver().await.unwrap();
    // A new client: the admin's pooled connections died with the old process.
    let admin = kubeconfig::client(t.admin_kubeconfig()).await;
    nodes::set_condition(&admin, &t.node, "Ready", "False").await;
    let o = until(&prober, &c, Outcome::failed("cluster_down")).await;
    assert!(o.detail.contains(&t.node), "{}", o.detail);

    nodes::set_condition(&admin, &t.node, "Ready", "True").await;
    until(&prober, &c, Outcome::Healthy).await;
}
