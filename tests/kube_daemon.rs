//! The daemon binary without a cluster: its Kubernetes probes say `Unknown: no_cluster`
//! instead of failing. In a cluster (leading, reloading, releasing its Lease) it runs on the
//! real control plane: tests/kube_real/daemon.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;

const GOOD: &str =
    "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n";

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
