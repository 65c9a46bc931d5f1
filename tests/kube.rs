//! The Kubernetes probes (node, workload) against the API test server (tests/support/kube_api),
//! through the daemon's real kube client and a kubeconfig file, for what a real apiserver
//! cannot be made to show here: the requests made (one list, then one watch), watches cut and
//! history compacted on demand (410 relist), injected errors. The outcomes on real objects,
//! label selectors, RBAC denial and `[kubernetes] kubeconfig` run on the real control plane:
//! tests/kube_real.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use astreinte::probes::{Observation, Outcome, Prober};
use support::kube_api::{KubeApi, objects};
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
async fn node_probe_follows_the_watch_without_relisting() {
    // Fake: request recording (one list, then one watch); the same outcomes on a real server: tests/kube_real/nodes.rs.
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
    // Fake: fault injection (watches cut, history compacted on demand, bookmark rate).
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
async fn fake_watch_from_a_compacted_version_gets_410() {
    // Fake: checks the fake itself (compaction on demand).
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
async fn workload_probe_on_apiserver_errors_is_unknown() {
    // Fake: fault injection (a 500 on demand); the outcomes on real objects: tests/kube_real/workload.rs.
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
