//! The daemon's own state in the cluster, against the API test server through the real kube
//! client: the journal's requests (recorded), and the policy ConfigMap watch that keeps the
//! last good configuration. Leader election on a Lease and the journal's compare-and-swap run
//! on the real control plane: tests/kube_real/state.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use astreinte::config::{Config, load_from_strings};
use serde_json::json;
use support::kube_api::{KubeApi, objects};
use support::wait_for;

fn config(probes: &str) -> Config {
    load_from_strings("test/policy", probes, "").unwrap()
}

mod journal {
    use super::*;
    use astreinte::journal::{KubeStore, Store, StoreError};

    #[tokio::test]
    async fn the_journal_write_is_a_put_carrying_the_version_read() {
        // Fake: request recording (the PUT's body); the compare-and-swap itself, AlreadyExists,
        // a stale version and RBAC denial run on the real plane: tests/kube_real/state.rs.
        let api = KubeApi::start().await;
        let store = KubeStore::new(api.client().await, "astreinte", "astreinte-journal");
        let v1 = store.save("[1]", None).await.unwrap();
        store.save("[1,2]", Some(&v1)).await.unwrap();
        let puts = api.requests_to("update", "/configmaps/astreinte-journal");
        assert_eq!(puts.last().unwrap().body["metadata"]["resourceVersion"], v1);
    }

    #[tokio::test]
    async fn an_oversized_journal_is_refused_before_any_request() {
        // Fake: request recording (that nothing was sent).
        let api = KubeApi::start().await;
        let store = KubeStore::new(api.client().await, "astreinte", "astreinte-journal");
        let big = "x".repeat(901 * 1024);
        let err = store.save(&big, None).await.unwrap_err();
        assert!(matches!(err, StoreError::Denied(_)));
        assert!(err.to_string().contains("limit"), "{err}");
        assert!(api.requests().is_empty(), "nothing sent");
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
