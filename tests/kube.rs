//! The Kubernetes probes (node, workload) against the API test server (tests/support/kube_api),
//! through the daemon's real kube client and a kubeconfig file, and the test server's own
//! watch semantics (bookmarks, 410 Expired).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use astreinte::probes::{Observation, Outcome, Prober};
use serde_json::json;
use support::kube_api::{KubeApi, Rbac, objects, rbac};
use support::wait_for;

const NS: &str = "rag-production";

fn config(probes: &str) -> Config {
    load_from_strings("test/policy", probes, "").unwrap()
}

fn node_probe(extra: &str) -> Config {
    config(&format!(
        "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\n{extra}\n"
    ))
}

fn workload_probe() -> Config {
    config(&format!(
        "[[probe]]\nid = \"api\"\nkind = \"workload\"\nnamespace = \"{NS}\"\ndeployment = \"rag-api\"\ninterval = \"10s\"\ntimeout = \"3s\"\n"
    ))
}

async fn prober(api: &KubeApi) -> Prober {
    astreinte::app::install_crypto();
    Prober::new().unwrap().with_kube(Some(api.client().await))
}

async fn observe(prober: &Prober, config: &Config) -> Observation {
    prober.observe(config, &config.probes[0]).await
}

/// Polls the probe until its outcome is `want`.
async fn until(prober: &Prober, config: &Config, want: Outcome) -> Observation {
    wait_for(
        &format!("outcome {want:?}"),
        Duration::from_secs(5),
        || async {
            let o = observe(prober, config).await;
            (o.outcome == want).then_some(o)
        },
    )
    .await
}

#[tokio::test]
async fn kubernetes_probes_without_a_cluster_are_unknown() {
    astreinte::app::install_crypto();
    let prober = Prober::new().unwrap();
    for c in [node_probe(""), workload_probe()] {
        let o = observe(&prober, &c).await;
        assert_eq!(o.outcome, Outcome::unknown("no_cluster"), "{}", o.detail);
    }
}

#[tokio::test]
async fn check_reaches_the_cluster_through_the_configured_kubeconfig() {
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\n[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\n",
            api.kubeconfig().display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = astreinte::config::load_dir(dir.path()).unwrap();
    assert_eq!(astreinte::app::check_once(&config, true).await.unwrap(), 0);
    api.set_node_condition("node-a", "Ready", "False");
    assert_eq!(astreinte::app::check_once(&config, true).await.unwrap(), 2);
}

#[tokio::test]
async fn node_probe_follows_the_watch_without_relisting() {
    let api = KubeApi::start().await;
    for n in ["node-a", "node-b", "node-c"] {
        api.put(objects::node(n, true));
    }
    let prober = prober(&api).await;
    let c = node_probe("");
    let o = observe(&prober, &c).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert_eq!(o.detail, "3 nodes Ready");

    api.set_node_condition("node-b", "Ready", "False");
    let o = until(&prober, &c, Outcome::failed("node_not_ready")).await;
    assert!(
        o.detail.starts_with("1 of 3 nodes NotReady: node-b"),
        "{}",
        o.detail
    );
    let ready_gauge = o
        .measurements
        .iter()
        .find(|m| m.labels.contains(&("node".into(), "node-b".into())))
        .unwrap();
    assert_eq!(ready_gauge.value, 0.0);

    api.set_node_condition("node-a", "Ready", "False");
    api.set_node_condition("node-c", "Ready", "Unknown");
    let o = until(&prober, &c, Outcome::failed("cluster_down")).await;
    assert!(o.detail.starts_with("all 3 nodes NotReady"), "{}", o.detail);

    for n in ["node-a", "node-b", "node-c"] {
        api.set_node_condition(n, "Ready", "True");
    }
    api.set_node_condition("node-c", "DiskPressure", "True");
    let o = until(&prober, &c, Outcome::degraded(1.0, "node_pressure")).await;
    assert!(o.detail.contains("node-c (DiskPressure)"), "{}", o.detail);

    // One list, then one long watch: every change above came through the watch.
    assert_eq!(api.requests_to("list", "/api/v1/nodes").len(), 1);
    let watches = api.requests_to("watch", "/api/v1/nodes");
    assert_eq!(watches.len(), 1);
    assert_eq!(
        watches[0]
            .query
            .get("allowWatchBookmarks")
            .map(String::as_str),
        Some("true")
    );
}

#[tokio::test]
async fn node_watch_survives_bookmarks_and_relists_after_410() {
    let api = KubeApi::start().await;
    api.set_bookmark_every(Duration::from_millis(50));
    api.put(objects::node("node-a", true));
    api.put(objects::node("node-b", true));
    let prober = prober(&api).await;
    let c = node_probe("");
    assert_eq!(observe(&prober, &c).await.outcome, Outcome::Healthy);
    wait_for("bookmarks", Duration::from_secs(5), || async {
        (api.bookmarks_sent() >= 3).then_some(())
    })
    .await;
    // Bookmarks are not changes: still one list, still healthy.
    assert_eq!(api.requests_to("list", "/api/v1/nodes").len(), 1);
    assert_eq!(observe(&prober, &c).await.outcome, Outcome::Healthy);

    // The apiserver is unreachable for watches while a node changes and the history is
    // compacted: the resumed watch gets 410 Expired, the watcher relists, the probe sees it.
    api.cut_watches();
    api.set_node_condition("node-a", "Ready", "False");
    api.compact();
    api.restore_watches();
    let o = until(&prober, &c, Outcome::failed("node_not_ready")).await;
    assert!(o.detail.contains("node-a"), "{}", o.detail);
    assert_eq!(
        api.requests_to("list", "/api/v1/nodes").len(),
        2,
        "relisted after 410"
    );
}

#[tokio::test]
async fn node_probe_label_selector_picks_nodes() {
    let api = KubeApi::start().await;
    let mut worker = objects::node("worker-1", true);
    worker["metadata"]["labels"]["pool"] = json!("workers");
    api.put(worker);
    api.put(objects::node("control-1", false));
    let prober = prober(&api).await;
    let o = observe(&prober, &node_probe("label_selector = \"pool=workers\"")).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    let o = observe(&prober, &node_probe("label_selector = \"pool!=workers\"")).await;
    assert_eq!(o.outcome, Outcome::failed("cluster_down"), "{}", o.detail);
}

#[tokio::test]
async fn node_probe_denied_by_rbac_is_unknown_and_says_why() {
    let rbac = Rbac::from_yaml(&rbac::repo_rbac_yaml()).without("list", "", "nodes");
    let api = KubeApi::start_with(rbac).await;
    api.put(objects::node("node-a", true));
    let prober = prober(&api).await;
    let o = observe(&prober, &node_probe("")).await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("node_watch_not_ready"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("forbidden"), "{}", o.detail);
}

#[tokio::test]
async fn fake_watch_from_a_compacted_version_gets_410() {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Api, WatchEvent, WatchParams};
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    api.put(objects::node("node-b", true));
    api.compact();
    let nodes: Api<Node> = Api::all(api.client().await);
    let mut stream = nodes
        .watch(&WatchParams::default(), "2")
        .await
        .unwrap()
        .boxed();
    match stream.next().await {
        Some(Ok(WatchEvent::Error(e))) => assert_eq!(e.code, 410),
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn workload_probe_replicas_crash_loops_and_restarts() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 3, 3));
    for i in 0..3 {
        api.put(objects::pod(
            NS,
            &format!("rag-api-{i}"),
            "rag-api",
            "Running",
            0,
            None,
        ));
    }
    // A pod of another app must not count.
    api.put(objects::pod(
        NS,
        "rag-celery-0",
        "rag-celery",
        "Pending",
        9,
        None,
    ));
    let prober = prober(&api).await;
    let c = workload_probe();
    let o = observe(&prober, &c).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert_eq!(o.detail, "deployment rag-api: 3/3 available, 3 updated");
    let pods = api.requests_to("list", &format!("/api/v1/namespaces/{NS}/pods"));
    assert_eq!(pods.last().unwrap().query["labelSelector"], "app=rag-api");

    // A restart since the last tick.
    api.put(objects::pod(NS, "rag-api-1", "rag-api", "Running", 1, None));
    let o = observe(&prober, &c).await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(1.0, "pod_restarted"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("restarted since last check: rag-api-1"),
        "{}",
        o.detail
    );
    let o = observe(&prober, &c).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);

    // CrashLoopBackOff.
    api.put(objects::pod(
        NS,
        "rag-api-2",
        "rag-api",
        "Running",
        0,
        Some("CrashLoopBackOff"),
    ));
    let o = observe(&prober, &c).await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(1.0, "pods_not_running"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("rag-api-2 (CrashLoopBackOff)"),
        "{}",
        o.detail
    );

    api.put(objects::deployment(NS, "rag-api", 3, 1));
    let o = observe(&prober, &c).await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(2.0, "replicas_unavailable"),
        "{}",
        o.detail
    );

    api.put(objects::deployment(NS, "rag-api", 3, 0));
    let o = observe(&prober, &c).await;
    assert_eq!(
        o.outcome,
        Outcome::failed("no_replicas_available"),
        "{}",
        o.detail
    );

    api.remove("apps/v1", "deployments", NS, "rag-api");
    let o = observe(&prober, &c).await;
    assert_eq!(
        o.outcome,
        Outcome::failed("deployment_not_found"),
        "{}",
        o.detail
    );
}

#[tokio::test]
async fn workload_probe_on_apiserver_errors_is_unknown() {
    let api = KubeApi::start().await;
    api.put(objects::deployment(NS, "rag-api", 1, 1));
    api.fail_next("get", "deployments", "rag-api", 1, 500);
    let prober = prober(&api).await;
    let o = observe(&prober, &workload_probe()).await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("api_unavailable"),
        "{}",
        o.detail
    );
}
