//! The daemon binary on the real plane as the ServiceAccount: it takes the leader Lease and
//! says so on /metrics, probes the test's node, rejects a bad edit of the policy ConfigMap
//! (counted, an Event on the ConfigMap), and releases the Lease on SIGTERM.

use std::process::Command;
use std::time::Duration;

use astreinte::testbed::Proc;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;

use crate::support::kube_real::{KubeTest, nodes, objects};
use crate::support::wait_for;

async fn metrics(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_leads_reloads_and_releases_its_lease() {
    astreinte::app::install_crypto();
    let t = KubeTest::new("daemon").await;
    let ns = t.ns.as_str();
    let good = format!(
        "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nlabel_selector = \"{}={ns}\"\n",
        nodes::OWNER_LABEL
    );
    objects::configmap(
        &t.admin,
        ns,
        "astreinte-policy",
        json!({ "probes.toml": good, "remediations.toml": "" }),
    )
    .await;
    let kubeconfig = t.service_account_kubeconfig().await;
    let dir = tempfile::tempdir().unwrap();
    let probes = format!(
        "[kubernetes]\nkubeconfig = \"{}\"\nnamespace = \"{ns}\"\npolicy_configmap = \"astreinte-policy\"\n\
         [kubernetes.lease]\nduration = \"2s\"\nrenew = \"200ms\"\n\n{good}",
        kubeconfig.display()
    );
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let port = crate::support::free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.arg("--config")
        .arg(dir.path())
        .arg("run")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("HOSTNAME", "astreinte-0")
        // In a pod, the downward API's name (deploy/base/deployment.yaml); not the host name.
        .env("POD_NAME", "astreinte-7d9f8-x2k4q")
        .env_remove("KUBECONFIG");
    let mut daemon = Proc::spawn("astreinte", cmd, &dir.path().join("astreinte.log")).unwrap();
    let url = format!("http://127.0.0.1:{port}/metrics");

    let text = wait_for(
        "leadership and a healthy node probe",
        Duration::from_secs(20),
        || async {
            metrics(&url).await.filter(|t| {
                t.contains("astreinte_leader 1") && t.contains("probe_success{probe=\"nodes\"} 1")
            })
        },
    )
    .await;
    assert!(
        text.contains(&format!("astreinte_node_ready{{node=\"{}\"}} 1", t.node)),
        "{text}"
    );
    let leases: Api<Lease> = Api::namespaced(t.admin.clone(), ns);
    let holder = || async {
        leases
            .get("astreinte-leader")
            .await
            .unwrap()
            .spec
            .and_then(|s| s.holder_identity)
    };
    assert_eq!(holder().await.as_deref(), Some("astreinte-7d9f8-x2k4q"));

    // A bad edit of the policy ConfigMap is rejected and counted, with an Event on it.
    Api::<ConfigMap>::namespaced(t.admin.clone(), ns)
        .patch(
            "astreinte-policy",
            &PatchParams::default(),
            &Patch::Merge(json!({ "data": { "probes.toml": "[[probe]]\nid = \"nodes\"\nkind = \"nodes\"\n" } })),
        )
        .await
        .unwrap();
    wait_for("the invalid reload", Duration::from_secs(10), || async {
        metrics(&url)
            .await
            .filter(|t| t.contains("astreinte_config_reload_total{result=\"invalid\"} 1"))
    })
    .await;
    let events: Api<Event> = Api::namespaced(t.admin.clone(), ns);
    wait_for(
        "an Event on the ConfigMap",
        Duration::from_secs(10),
        || async {
            events
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .iter()
                .any(|e| {
                    e.reason.as_deref() == Some("AstreinteConfigInvalid")
                        && e.involved_object.name.as_deref() == Some("astreinte-policy")
                        // Issue 14: the pod's name, not HOSTNAME.
                        && e.reporting_instance.as_deref() == Some("astreinte-7d9f8-x2k4q")
                })
                .then_some(())
        },
    )
    .await;

    // SIGTERM: the Lease is released (no holder) so another replica can take it at once.
    daemon.stop(Duration::from_secs(5));
    assert_eq!(holder().await, None);
    let log = std::fs::read_to_string(dir.path().join("astreinte.log")).unwrap();
    assert!(log.contains("astreinte stopped"), "{log}");
}
