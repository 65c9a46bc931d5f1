//! The node probe on a real apiserver's watch, with the ServiceAccount's ClusterRole.

use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use astreinte::probes::{Observation, Outcome, Prober};
use k8s_openapi::api::core::v1::Node;
use kube::api::Api;

use crate::support::kube_real::{KubeTest, nodes};
use crate::support::wait_for;

fn config(probes: &str) -> Config {
    load_from_strings("test/policy", probes, "").unwrap()
}

async fn until(prober: &Prober, config: &Config, want: Outcome) -> Observation {
    wait_for(
        &format!("outcome {want:?}"),
        Duration::from_secs(10),
        || async {
            let o = prober.observe(config, &config.probes[0]).await;
            (o.outcome == want).then_some(o)
        },
    )
    .await
}

/// The node probe, with the ServiceAccount's ClusterRole (list, watch nodes): a Node whose
/// Ready condition turns False (strategic merge on its status, as a kubelet writes it) is
/// `node_not_ready`, all of them `cluster_down`, pressure `node_pressure`.
#[tokio::test]
async fn node_probe_sees_a_node_set_not_ready() {
    let t = KubeTest::new("node-probe").await;
    let pool = t.ns.as_str();
    let names: Vec<String> = ["a", "b"].iter().map(|n| format!("{pool}-{n}")).collect();
    for n in &names {
        nodes::create(&t.admin, n, pool, &[("pool", pool)]).await;
    }
    let c = config(&format!(
        "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\nlabel_selector = \"pool={pool}\"\n"
    ));
    astreinte::app::install_crypto();
    let prober = Prober::new()
        .unwrap()
        .with_kube(Some(t.service_account_client().await));
    let o = until(&prober, &c, Outcome::Healthy).await;
    assert_eq!(o.detail, "2 nodes Ready");

    nodes::set_condition(&t.admin, &names[1], "Ready", "False").await;
    let o = until(&prober, &c, Outcome::failed("node_not_ready")).await;
    assert!(
        o.detail
            .starts_with(&format!("1 of 2 nodes NotReady: {}", names[1])),
        "{}",
        o.detail
    );
    // The strategic merge kept the other conditions.
    let node = Api::<Node>::all(t.admin.clone())
        .get(&names[1])
        .await
        .unwrap();
    let kinds: Vec<String> = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");

    nodes::set_condition(&t.admin, &names[0], "Ready", "False").await;
    let o = until(&prober, &c, Outcome::failed("cluster_down")).await;
    assert!(o.detail.starts_with("all 2 nodes NotReady"), "{}", o.detail);

    for n in &names {
        nodes::set_condition(&t.admin, n, "Ready", "True").await;
    }
    nodes::set_condition(&t.admin, &names[0], "DiskPressure", "True").await;
    let o = until(&prober, &c, Outcome::degraded(1.0, "node_pressure")).await;
    assert!(
        o.detail.contains(&format!("{} (DiskPressure)", names[0])),
        "{}",
        o.detail
    );
}
