//! Series labelled by a cluster object end with the object: the daemon binary, against the
//! Kubernetes API test server, stops exporting `astreinte_node_ready{node}` for a deleted node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use astreinte::testbed::Proc;
use support::kube_api::{KubeApi, objects};
use support::wait_for;

async fn metrics(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_node_leaves_metrics() {
    astreinte::app::install_crypto();
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    api.put(objects::node("node-b", false));
    let dir = tempfile::tempdir().unwrap();
    let probes = format!(
        "[kubernetes]\nkubeconfig = \"{}\"\n\n[[probe]]\nid = \"nodes\"\nkind = \"node\"\n\
         interval = \"1s\"\ntimeout = \"500ms\"\n",
        api.kubeconfig().display()
    );
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let port = support::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.arg("--config")
        .arg(dir.path())
        .arg("run")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("HOSTNAME", "astreinte-0")
        .env_remove("KUBECONFIG");
    let mut daemon = Proc::spawn("astreinte", cmd, &dir.path().join("astreinte.log")).unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");
    wait_for(
        "both nodes on /metrics",
        Duration::from_secs(20),
        || async {
            metrics(&url).await.filter(|t| {
                t.contains("astreinte_node_ready{node=\"node-a\"} 1")
                    && t.contains("astreinte_node_ready{node=\"node-b\"} 0")
            })
        },
    )
    .await;

    api.remove("v1", "nodes", "", "node-b");
    // The probe's next result lists node-a alone (and says so: no node NotReady anymore).
    let text = wait_for(
        "the probe's result without node-b",
        Duration::from_secs(20),
        || async {
            metrics(&url)
                .await
                .filter(|t| t.contains("astreinte_nodes_not_ready{probe=\"nodes\"} 0"))
        },
    )
    .await;
    assert!(
        text.contains("astreinte_node_ready{node=\"node-a\"} 1"),
        "{text}"
    );
    assert!(!text.contains("node-b"), "{text}");
    daemon.stop(Duration::from_secs(5));
}
