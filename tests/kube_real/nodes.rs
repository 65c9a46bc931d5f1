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
    let taints = node.spec.clone().unwrap_or_default().taints;
    assert!(
        taints.as_ref().is_none_or(|t| t.is_empty()),
        "the harness removed the not-ready taint: {taints:?}"
    );
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

/// A ServiceAccount nothing is bound to cannot list nodes: the probe says why, as Unknown.
#[tokio::test]
async fn node_probe_denied_by_rbac_is_unknown_and_says_why() {
    let t = KubeTest::new("node-probe-denied").await;
    let kubeconfig = t.unbound_kubeconfig("nobody").await;
    let c = config(&format!(
        "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"2s\"\nlabel_selector = \"{}={}\"\n",
        nodes::OWNER_LABEL,
        t.ns
    ));
    astreinte::app::install_crypto();
    let client = crate::support::kube_real::kubeconfig::client(&kubeconfig).await;
    let prober = Prober::new().unwrap().with_kube(Some(client));
    let o = prober.observe(&c, &c.probes[0]).await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("node_watch_not_ready"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("forbidden"), "{}", o.detail);
}

/// `astreinte check` reaches the plane through `[kubernetes] kubeconfig` (the
/// ServiceAccount's): exit 0 while the test's node is Ready, 2 once it is not.
#[tokio::test]
async fn check_reaches_the_cluster_through_the_configured_kubeconfig() {
    let t = KubeTest::new("check-kubeconfig").await;
    let kubeconfig = t.service_account_kubeconfig().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\n[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\nlabel_selector = \"{}={}\"\n",
            kubeconfig.display(),
            nodes::OWNER_LABEL,
            t.ns
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = astreinte::config::load_dir(dir.path()).unwrap();
    assert_eq!(astreinte::app::check_once(&config, true).await.unwrap(), 0);
    nodes::set_condition(&t.admin, &t.node, "Ready", "False").await;
    assert_eq!(astreinte::app::check_once(&config, true).await.unwrap(), 2);
}
