//! The daemon binary in a "cluster" (the API test server): it takes the leader Lease and says
//! so on /metrics, rejects a bad policy ConfigMap edit, and releases the Lease on SIGTERM.
//! Without a cluster, its Kubernetes probes say `Unknown: no_cluster` instead of failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::time::Duration;

use astreinte::testbed::Proc;
use serde_json::json;
use support::kube_api::{KubeApi, objects};
use support::wait_for;

const GOOD: &str =
    "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n";

fn policy(probes: &str) -> serde_json::Value {
    objects::configmap(
        "astreinte",
        "astreinte-policy",
        json!({ "probes.toml": probes, "remediations.toml": "" }),
    )
}

async fn metrics(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_leads_reloads_and_releases_its_lease() {
    astreinte::app::install_crypto();
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    api.put(policy(GOOD));
    let dir = tempfile::tempdir().unwrap();
    let probes = format!(
        "[kubernetes]\nkubeconfig = \"{}\"\npolicy_configmap = \"astreinte-policy\"\n\
         [kubernetes.lease]\nduration = \"2s\"\nrenew = \"200ms\"\n\n{GOOD}",
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

    let text = wait_for(
        "leadership and a healthy node probe",
        Duration::from_secs(10),
        || async {
            metrics(&url).await.filter(|t| {
                t.contains("astreinte_leader 1") && t.contains("probe_success{probe=\"nodes\"} 1")
            })
        },
    )
    .await;
    assert!(
        text.contains("astreinte_node_ready{node=\"node-a\"} 1"),
        "{text}"
    );
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "astreinte",
            "astreinte-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "astreinte-0");

    // A bad edit of the policy ConfigMap is rejected and counted.
    api.put(policy("[[probe]]\nid = \"nodes\"\nkind = \"nodes\"\n"));
    wait_for("the invalid reload", Duration::from_secs(10), || async {
        metrics(&url)
            .await
            .filter(|t| t.contains("astreinte_config_reload_total{result=\"invalid\"} 1"))
    })
    .await;
    // The Event is written after the counter: wait for the Event itself.
    wait_for(
        "an Event on the ConfigMap",
        Duration::from_secs(10),
        || async {
            api.events("astreinte")
                .iter()
                .any(|e| e["reason"] == "AstreinteConfigInvalid")
                .then_some(())
        },
    )
    .await;

    // SIGTERM: the Lease is released (no holder) so another replica can take it at once.
    daemon.stop(Duration::from_secs(5));
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "astreinte",
            "astreinte-leader",
        )
        .unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease:#}");
    let log = std::fs::read_to_string(dir.path().join("astreinte.log")).unwrap();
    assert!(log.contains("astreinte stopped"), "{log}");
}

#[test]
fn without_a_cluster_kubernetes_probes_are_unknown_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!("{GOOD}\n[[probe]]\nid = \"api\"\nkind = \"workload\"\nnamespace = \"rag\"\ndeployment = \"rag-api\"\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_astreinte"))
        .arg("--config")
        .arg(dir.path())
        .args(["check", "--output", "json"])
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2, "{rows:#}");
    for row in rows.as_array().unwrap() {
        assert_eq!(row["outcome"], "unknown", "{row}");
        assert_eq!(row["reason"], "no_cluster", "{row}");
    }
    assert_eq!(out.status.code(), Some(1), "unknown, not failed");
}
