//! The daemon's own state in the cluster, against the API test server through the real kube
//! client: leader election on a Lease, the journal on a ConfigMap (compare-and-swap), and the
//! policy ConfigMap watch that keeps the last good configuration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use serde_json::json;
use support::kube_api::{KubeApi, Rbac, objects, rbac};
use support::wait_for;

fn config(probes: &str) -> Config {
    load_from_strings("test/policy", probes, "").unwrap()
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
