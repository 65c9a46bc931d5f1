//! RBAC against the API test server: `deploy/base/rbac.yaml` grants exactly the verbs the code
//! uses (every feature runs once against one server that records what it served), and a
//! denial is reported naming the verb and resource the service account lacks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Limits};
use serde_json::json;
use support::kube_api::{KubeApi, Rbac, objects, rbac};
use tokio::time::Instant;

const NS: &str = "rag-production";

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

#[tokio::test]
async fn a_403_names_the_verb_and_resource_the_service_account_lacks() {
    // Fake: a Role with one verb removed on demand and the request count (not retried); the real 403 on the shipped Role: tests/kube_real/rbac.rs.
    let rbac = Rbac::from_yaml(&rbac::repo_rbac_yaml()).without("patch", "apps", "deployments");
    let api = KubeApi::start_with(rbac).await;
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    let client = api.client().await;
    let err = act::rollout_restart(&client, NS, "rag-api", deadline(5))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "forbidden: the service account may not patch deployments.apps in namespace {NS} \
             (grant it in the Role of deploy/base/rbac.yaml)"
        )
    );
    assert_eq!(err.kind(), "forbidden");
    assert_eq!(
        api.requests_to("patch", "/deployments/rag-api").len(),
        1,
        "not retried"
    );
    // The server's own message has the real apiserver shape.
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::{Api, Patch, PatchParams};
    let d: Api<Deployment> = Api::namespaced(client, NS);
    let raw = d
        .patch("rag-api", &PatchParams::default(), &Patch::Merge(json!({})))
        .await
        .unwrap_err();
    match raw {
        kube::Error::Api(s) => assert_eq!(
            s.message,
            format!(
                "deployments.apps \"rag-api\" is forbidden: User \
                 \"system:serviceaccount:astreinte:astreinte\" cannot patch resource \
                 \"deployments\" in API group \"apps\" in the namespace \"{NS}\""
            )
        ),
        other => panic!("{other}"),
    }
}

/// Every verb `deploy/base/rbac.yaml` grants is used by the code, and the code needs no
/// other: each feature runs once against one server that records what it served.
#[tokio::test]
async fn rbac_grants_exactly_what_the_code_uses() {
    // Fake: request recording (every (verb, resource) the code used, compared with the grants).
    use astreinte::journal::{KubeStore, Store};
    use tokio_util::sync::CancellationToken;
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    api.put(objects::deployment(NS, "rag-api", 2, 2));
    api.put(objects::pod(
        NS,
        "rag-api-0",
        "rag-api",
        "Running",
        0,
        Some("CrashLoopBackOff"),
    ));
    api.put(objects::configmap(NS, "rag-flags", json!({})));
    api.put(objects::ingress(NS, "rag", "rag-api"));
    api.put(objects::configmap(
        "astreinte",
        "astreinte-policy",
        json!({ "probes.toml": "", "remediations.toml": "" }),
    ));
    let client = api.client().await;
    astreinte::app::install_crypto();

    // Probes.
    let config = astreinte::config::load_from_strings(
        "t/t",
        &format!(
            "[[probe]]\nid = \"n\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\n\
             [[probe]]\nid = \"w\"\nkind = \"workload\"\nnamespace = \"{NS}\"\ndeployment = \"rag-api\"\ninterval = \"10s\"\ntimeout = \"3s\"\n"
        ),
        "",
    )
    .unwrap();
    let prober = astreinte::probes::Prober::new()
        .unwrap()
        .with_kube(Some(client.clone()));
    for p in &config.probes {
        let o = prober.observe(&config, p).await;
        assert!(
            !matches!(o.outcome, astreinte::probes::Outcome::Unknown { .. }),
            "{}",
            o.detail
        );
    }
    // Actuators.
    act::rollout_restart(&client, NS, "rag-api", deadline(5))
        .await
        .unwrap();
    act::scale(&client, NS, "rag-api", 3, 6, deadline(5))
        .await
        .unwrap();
    let flags = BTreeMap::from([("READ_ONLY_MODE".to_owned(), Some("true".to_owned()))]);
    act::patch_configmap(&client, NS, "rag-flags", &flags, deadline(5))
        .await
        .unwrap();
    act::switch_ingress_backend(&client, NS, "rag", "rag-backup-service", None, deadline(5))
        .await
        .unwrap();
    let wanted = Limits {
        cpu: Some("1".into()),
        memory: None,
    };
    act::patch_resources(
        &client,
        NS,
        "rag-api",
        "rag-api",
        &wanted,
        &Limits::default(),
        deadline(5),
    )
    .await
    .unwrap();
    act::delete_stuck_pod(&client, NS, "app=rag-api", deadline(5))
        .await
        .unwrap();
    // Journal.
    let store = KubeStore::new(client.clone(), "astreinte", "astreinte-journal");
    let v = store.save("[]", None).await.unwrap();
    store.load().await.unwrap();
    store.save("[1]", Some(&v)).await.unwrap();
    // Leader election: acquire (get, create) and renew (update).
    let cancel = CancellationToken::new();
    let lease = astreinte::leader::LeaderConfig {
        namespace: "astreinte".into(),
        name: "astreinte-leader".into(),
        identity: "a".into(),
        duration: Duration::from_secs(2),
        renew: Duration::from_millis(100),
    };
    let (leading, task) = astreinte::leader::spawn(client.clone(), lease, cancel.clone(), None);
    support::wait_for("a renewal", Duration::from_secs(5), || async {
        (*leading.borrow()
            && !api
                .requests_to("update", "/leases/astreinte-leader")
                .is_empty())
        .then_some(())
    })
    .await;
    cancel.cancel();
    task.await.unwrap();
    // Policy watch (list, watch), with an invalid ConfigMap so an Event is created too.
    let metrics = std::sync::Arc::new(astreinte::metrics::Metrics::new());
    let (_rx, _task) = astreinte::reload::spawn(
        client.clone(),
        "astreinte",
        "astreinte-policy",
        std::sync::Arc::new(config.clone()),
        metrics,
        CancellationToken::new(),
    );
    support::wait_for("the policy watch", Duration::from_secs(5), || async {
        (!api
            .requests_to("watch", "/namespaces/astreinte/configmaps")
            .is_empty())
        .then_some(())
    })
    .await;

    assert!(api.denied().is_empty(), "denied: {:?}", api.denied());
    let used = api.used();
    let granted = api.granted();
    let unused: Vec<_> = granted.difference(&used).collect();
    let missing: Vec<_> = used.difference(&granted).collect();
    assert!(
        unused.is_empty() && missing.is_empty(),
        "deploy/base/rbac.yaml grants verbs the code never uses: {unused:?}; \
         the code uses verbs it does not grant: {missing:?}"
    );
}
