//! Kubernetes support against the API test server (tests/support/kube_api), through the
//! daemon's real kube client and a kubeconfig file: node and workload probes, leader
//! election, the journal store, the policy ConfigMap watch, and RBAC granted == used.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
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

mod leader {
    use super::*;
    use astreinte::leader::{LeaderConfig, spawn};
    use tokio_util::sync::CancellationToken;

    fn lease_config(identity: &str) -> LeaderConfig {
        LeaderConfig {
            namespace: "astreinte".into(),
            name: "astreinte-leader".into(),
            identity: identity.into(),
            duration: Duration::from_secs(2),
            renew: Duration::from_millis(200),
        }
    }

    async fn leaders(rx: &[&tokio::sync::watch::Receiver<bool>]) -> usize {
        rx.iter().filter(|r| *r.borrow()).count()
    }

    #[tokio::test]
    async fn exactly_one_leader_and_failover_within_the_lease_duration() {
        let api = KubeApi::start().await;
        let client = api.client().await;
        let (cancel_a, cancel_b) = (CancellationToken::new(), CancellationToken::new());
        let gauge = prometheus_client::metrics::gauge::Gauge::default();
        let (a, task_a) = spawn(
            client.clone(),
            lease_config("a"),
            cancel_a.clone(),
            Some(gauge.clone()),
        );
        let (b, task_b) = spawn(client.clone(), lease_config("b"), cancel_b.clone(), None);
        wait_for("a leader", Duration::from_secs(5), || async {
            (leaders(&[&a, &b]).await == 1).then_some(())
        })
        .await;
        // Stays exactly one over several renewals.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(leaders(&[&a, &b]).await, 1);
        }
        let (first, first_cancel, first_task, other) = if *a.borrow() {
            assert_eq!(gauge.get(), 1);
            ("a", cancel_a, task_a, b.clone())
        } else {
            ("b", cancel_b, task_b, a.clone())
        };
        let lease = api
            .get(
                "coordination.k8s.io/v1",
                "leases",
                "astreinte",
                "astreinte-leader",
            )
            .unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], first);
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 2);

        // A clean stop releases the Lease: the other takes it well within the duration.
        let stopped = std::time::Instant::now();
        first_cancel.cancel();
        first_task.await.unwrap();
        wait_for(
            "the other replica to lead",
            Duration::from_secs(2),
            || async { (*other.borrow()).then_some(()) },
        )
        .await;
        assert!(stopped.elapsed() < Duration::from_secs(2));
        let renewals = api.requests_to("update", "/leases/astreinte-leader").len();
        assert!(renewals >= 3, "{renewals} lease updates");
    }

    #[tokio::test]
    async fn a_crashed_leader_is_replaced_after_its_lease_expires() {
        let api = KubeApi::start().await;
        let client = api.client().await;
        let (a, task_a) = spawn(
            client.clone(),
            lease_config("a"),
            CancellationToken::new(),
            None,
        );
        wait_for("a leads", Duration::from_secs(5), || async {
            (*a.borrow()).then_some(())
        })
        .await;
        let (b, _task_b) = spawn(
            client.clone(),
            lease_config("b"),
            CancellationToken::new(),
            None,
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!*b.borrow(), "b must not lead while a renews");
        // No release: the Lease must expire first.
        task_a.abort();
        let crashed = std::time::Instant::now();
        wait_for("b takes over", Duration::from_secs(5), || async {
            (*b.borrow()).then_some(())
        })
        .await;
        let took = crashed.elapsed();
        assert!(
            took >= Duration::from_millis(1500),
            "took over after {took:?}, before expiry"
        );
        assert!(
            took < Duration::from_millis(2000 + 200 + 1000),
            "took {took:?}"
        );
        let lease = api
            .get(
                "coordination.k8s.io/v1",
                "leases",
                "astreinte",
                "astreinte-leader",
            )
            .unwrap();
        assert_eq!(lease["spec"]["holderIdentity"], "b");
        assert_eq!(lease["spec"]["leaseTransitions"], 1);
    }

    #[tokio::test]
    async fn a_lost_race_flips_leadership_at_once() {
        let api = KubeApi::start().await;
        let client = api.client().await;
        let mut config = lease_config("a");
        config.renew = Duration::from_millis(100);
        let (a, _task) = spawn(client, config, CancellationToken::new(), None);
        wait_for("a leads", Duration::from_secs(5), || async {
            (*a.borrow()).then_some(())
        })
        .await;
        // Another writer takes the Lease (as after a partition): a's next renewal is a 409
        // or sees another holder, and a stops leading.
        api.patch(
            "coordination.k8s.io/v1",
            "leases",
            "astreinte",
            "astreinte-leader",
            json!({ "spec": { "holderIdentity": "intruder", "renewTime": "2099-01-01T00:00:00.000000Z" } }),
        );
        wait_for("a steps down", Duration::from_secs(2), || async {
            (!*a.borrow()).then_some(())
        })
        .await;
    }
}

mod journal {
    use super::*;
    use astreinte::journal::{KubeStore, Store, StoreError};

    #[tokio::test]
    async fn configmap_store_is_a_compare_and_swap() {
        let api = KubeApi::start().await;
        let store = KubeStore::new(api.client().await, "astreinte", "astreinte-journal");
        assert_eq!(store.load().await.unwrap(), None);
        let v1 = store.save("[1]", None).await.unwrap();
        // A second "first save" (another replica) conflicts.
        assert!(matches!(
            store.save("[x]", None).await,
            Err(StoreError::Conflict { .. })
        ));
        let snap = store.load().await.unwrap().unwrap();
        assert_eq!(
            (snap.data.as_str(), snap.version.as_str()),
            ("[1]", v1.as_str())
        );
        let v2 = store.save("[1,2]", Some(&v1)).await.unwrap();
        assert_ne!(v1, v2);
        // A stale version conflicts, and nothing is overwritten.
        let err = store.save("[1,3]", Some(&v1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert!(err.is_transient());
        assert_eq!(store.load().await.unwrap().unwrap().data, "[1,2]");
        let cm = api
            .get("v1", "configmaps", "astreinte", "astreinte-journal")
            .unwrap();
        assert_eq!(cm["data"]["journal.json"], "[1,2]");
        // The write is a PUT carrying the version read.
        let puts = api.requests_to("update", "/configmaps/astreinte-journal");
        assert_eq!(puts.last().unwrap().body["metadata"]["resourceVersion"], v1);
    }

    #[tokio::test]
    async fn oversized_journal_and_rbac_denial_are_refused_clearly() {
        let api = KubeApi::start().await;
        let store = KubeStore::new(api.client().await, "astreinte", "astreinte-journal");
        let big = "x".repeat(901 * 1024);
        let err = store.save(&big, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Denied(_)));
        assert!(err.to_string().contains("limit"), "{err}");
        assert!(api.requests().is_empty(), "nothing sent");

        let rbac = Rbac::from_yaml(&rbac::repo_rbac_yaml()).without("create", "", "configmaps");
        let denied = KubeApi::start_with(rbac).await;
        let store = KubeStore::new(denied.client().await, "astreinte", "astreinte-journal");
        let err = store.save("[]", None).await.unwrap_err();
        assert!(matches!(err, StoreError::Denied(_)), "{err}");
        assert!(
            err.to_string()
                .contains("may not create configmaps in namespace astreinte"),
            "{err}"
        );
        assert!(!err.is_transient());
    }
}

mod reload {
    use super::*;
    use astreinte::metrics::Metrics;
    use tokio_util::sync::CancellationToken;

    const GOOD: &str = "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n";
    const BAD: &str =
        "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"nope\"\ntimeuot = \"1s\"\n";

    fn policy(probes: &str, mode: &str) -> serde_json::Value {
        objects::configmap(
            "astreinte",
            "astreinte-policy",
            json!({ "probes.toml": probes, "remediations.toml": format!("[policy]\nmode = \"{mode}\"\n") }),
        )
    }

    #[tokio::test]
    async fn a_bad_configmap_edit_keeps_the_last_good_config() {
        let api = KubeApi::start().await;
        api.put(policy(GOOD, "dry-run"));
        let metrics = Arc::new(Metrics::new());
        let initial = Arc::new(config(""));
        let (mut rx, _task) = astreinte::reload::spawn(
            api.client().await,
            "astreinte",
            "astreinte-policy",
            initial,
            metrics.clone(),
            CancellationToken::new(),
        );
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        let first = rx.borrow_and_update().clone();
        assert_eq!(first.probes.len(), 1);
        assert_eq!(first.policy.mode.as_str(), "dry-run");

        // `kubectl edit` to enforce: applied live.
        api.put(policy(GOOD, "enforce"));
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.borrow_and_update().policy.mode.as_str(), "enforce");

        // A bad edit: rejected, counted, an Event on the ConfigMap, the last good one stays.
        api.put(policy(BAD, "off"));
        let event = wait_for(
            "the invalid-config event",
            Duration::from_secs(5),
            || async {
                api.events("astreinte")
                    .into_iter()
                    .find(|e| e["reason"] == "AstreinteConfigInvalid")
            },
        )
        .await;
        assert_eq!(event["type"], "Warning");
        assert_eq!(event["involvedObject"]["name"], "astreinte-policy");
        let message = event["message"].as_str().unwrap();
        assert!(
            message.contains("timeuot") && message.contains("address"),
            "{message}"
        );
        assert!(!rx.has_changed().unwrap());
        assert_eq!(rx.borrow().policy.mode.as_str(), "enforce");
        let text = metrics.encode();
        assert!(
            text.contains("astreinte_config_reload_total{result=\"invalid\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("astreinte_config_reload_total{result=\"applied\"} 2"),
            "{text}"
        );
        // Through the API watch, not a list per change.
        assert_eq!(
            api.requests_to("list", "/namespaces/astreinte/configmaps")
                .len(),
            1
        );
    }
}
