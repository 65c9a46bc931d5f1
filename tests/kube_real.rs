//! The Kubernetes actuators and probes against a real control plane (kube-apiserver and
//! kube-controller-manager v1.26.4 with etcd, tests/support/kube_real): a rollout restart
//! whose pods a kubelet stand-in walks through Pending → Running → Ready, the shipped RBAC of
//! `deploy/base/rbac.yaml` through a ServiceAccount token, and the node probe on Nodes whose
//! status is patched the way a kubelet writes it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Error, RESTARTED_AT};
use astreinte::clients::kube::{Error as KubeError, Op};
use astreinte::config::{Config, load_from_strings};
use astreinte::probes::{Observation, Outcome, Prober};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, DeleteParams, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use support::kube_real::{KubeTest, KubeletConfig, nodes, objects};
use support::wait_for;
use tokio::time::Instant;

fn deadline(secs: u64) -> Instant {
    Instant::now() + Duration::from_secs(secs)
}

/// (replicas, updated, ready, available) of a Deployment's status.
type Counts = (i32, i32, i32, i32);

fn counts(d: &Deployment) -> Counts {
    let s = d.status.clone().unwrap_or_default();
    (
        s.replicas.unwrap_or(0),
        s.updated_replicas.unwrap_or(0),
        s.ready_replicas.unwrap_or(0),
        s.available_replicas.unwrap_or(0),
    )
}

async fn event_reasons(client: &kube::Client, ns: &str) -> Vec<String> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect()
}

/// Issue 14, defect 1, on a real server: the restart is reported complete only once every
/// replica is new, ready and available and the old ReplicaSet has no pod left, terminating
/// ones included.
#[tokio::test]
async fn rollout_restart_is_complete_only_when_the_old_replica_set_is_gone() {
    let t = KubeTest::with_kubelet(
        "rollout-restart",
        KubeletConfig {
            ready_after: Some(Duration::from_secs(1)),
            delete_after: Duration::from_secs(1),
        },
    )
    .await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "web", 3).await;
    act::wait_for_rollout(&t.admin, ns, "web", deadline(60))
        .await
        .expect("the first rollout");

    // Every status the controllers write during the restart.
    let seen: Arc<Mutex<Vec<Counts>>> = Arc::default();
    let api: Api<Deployment> = Api::namespaced(t.admin.clone(), ns);
    let recorder = {
        let seen = seen.clone();
        let stream = watcher(
            api.clone(),
            watcher::Config::default().fields("metadata.name=web"),
        )
        .default_backoff()
        .applied_objects();
        tokio::spawn(async move {
            futures::pin_mut!(stream);
            while let Some(Ok(d)) = stream.next().await {
                seen.lock().unwrap().push(counts(&d));
            }
        })
    };

    let client = t.service_account_client().await;
    let out = act::rollout_restart(&client, ns, "web", deadline(120))
        .await
        .unwrap();
    // Read from the server right after the actuator returned.
    let d = api.get("web").await.unwrap();
    let sets = objects::replica_sets(&t.admin, ns, "web").await;
    let mut old_pods = Vec::new();
    for rs in &sets[..sets.len() - 1] {
        old_pods.extend(objects::pods_of(&t.admin, ns, rs).await);
    }
    recorder.abort();

    assert!(
        out.detail
            .contains("complete: 3 updated, 3 ready, 3 available of 3"),
        "{}",
        out.detail
    );
    assert_eq!(
        counts(&d),
        (3, 3, 3, 3),
        "replicas, updated, ready, available"
    );
    let s = d.status.as_ref().unwrap();
    assert!(s.observed_generation.unwrap() >= d.metadata.generation.unwrap());
    assert_eq!(sets.len(), 2, "the restart made a second ReplicaSet");
    let old = &sets[0];
    assert_eq!(old.spec.as_ref().unwrap().replicas, Some(0));
    assert_eq!(old.status.as_ref().unwrap().replicas, 0);
    let names: Vec<_> = old_pods.iter().map(|p| p.metadata.name.clone()).collect();
    assert!(
        old_pods.is_empty(),
        "old ReplicaSet pods still there: {names:?}"
    );

    // The rollout had real intermediate states: old pods alongside new ones.
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|&(total, updated, _, _)| updated >= 1 && total > updated),
        "no intermediate state seen: {seen:?}"
    );
    let template = d
        .spec
        .unwrap()
        .template
        .metadata
        .unwrap()
        .annotations
        .unwrap();
    assert!(template.contains_key(RESTARTED_AT), "{template:?}");
    assert!(
        event_reasons(&t.admin, ns)
            .await
            .contains(&"AstreinteRolloutRestart".to_owned())
    );
}

/// A rollout whose new pods never become ready is not reported complete: the deadline says
/// where it stood.
#[tokio::test]
async fn a_stuck_rollout_hits_its_deadline() {
    let t = KubeTest::new("stuck-rollout").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "web", 2).await;
    act::wait_for_rollout(&t.admin, ns, "web", deadline(60))
        .await
        .expect("the first rollout");
    // From now on no new pod becomes ready: the restart's first pod stays Ready=False.
    t.set_kubelet(KubeletConfig {
        ready_after: None,
        ..KubeletConfig::default()
    });
    let err = act::rollout_restart(&t.admin, ns, "web", deadline(3))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RolloutStuck { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("1 updated, 2 ready, 2 available of 2"),
        "{err}"
    );
    assert!(
        event_reasons(&t.admin, ns)
            .await
            .contains(&"AstreinteRolloutStuck".to_owned())
    );
}

/// The shipped RBAC through a ServiceAccount token: restart, scale and ConfigMap patch are
/// allowed; a verb it does not grant, or a namespace it is not bound in, gets astreinte's
/// `forbidden: …` naming the verb and resource.
#[tokio::test]
async fn the_shipped_rbac_allows_the_actions_and_nothing_else() {
    let t = KubeTest::new("shipped-rbac").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "web", 2).await;
    objects::configmap(&t.admin, ns, "flags", json!({ "READ_ONLY_MODE": "false" })).await;
    let sa = t.service_account_client().await;

    act::rollout_restart(&sa, ns, "web", deadline(60))
        .await
        .unwrap();
    let out = act::scale(&sa, ns, "web", 3, 5, deadline(10))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2 })));
    let d = Api::<Deployment>::namespaced(t.admin.clone(), ns)
        .get("web")
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    let data = BTreeMap::from([("READ_ONLY_MODE".to_owned(), Some("true".to_owned()))]);
    act::patch_configmap(&sa, ns, "flags", &data, deadline(10))
        .await
        .unwrap();
    let cm = Api::<ConfigMap>::namespaced(t.admin.clone(), ns)
        .get("flags")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["READ_ONLY_MODE"], "true");
    let reasons = event_reasons(&t.admin, ns).await;
    for r in ["AstreinteRolloutRestart", "AstreinteScale"] {
        assert!(reasons.contains(&r.to_owned()), "{r} not in {reasons:?}");
    }

    // A verb the Role does not grant: the real 403, classified by astreinte.
    let op = Op::new("delete", "deployments.apps", ns, "web");
    let err = Api::<Deployment>::namespaced(sa.clone(), ns)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap_err();
    let err = KubeError::from_kube(err, &op);
    assert_eq!(
        err.to_string(),
        format!(
            "forbidden: the service account may not delete deployments.apps in namespace {ns} \
             (grant it in the Role of deploy/base/rbac.yaml)"
        )
    );

    // A namespace the ServiceAccount is not bound in: the actuator itself is refused.
    let other = KubeTest::new("shipped-rbac-other").await;
    objects::deployment(&t.admin, &other.ns, "web", 1).await;
    let err = act::scale(&sa, &other.ns, "web", 2, 5, deadline(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Kube(KubeError::Forbidden { .. })),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "forbidden: the service account may not get deployments.apps/scale in namespace {}",
            other.ns
        )),
        "{err}"
    );
}

fn config(probes: &str) -> Config {
    load_from_strings("test/policy", probes, "").unwrap()
}

async fn until(prober: &Prober, config: &Config, want: Outcome) -> Observation {
    wait_for(
        &format!("outcome {want:?}"),
        Duration::from_secs(10),
        || async {
            let o = prober.observe(config, &config.probes[0]).await;
            (o.outcome == want).then_some(o)
        },
    )
    .await
}

/// The node probe, with the ServiceAccount's ClusterRole (list, watch nodes): a Node whose
/// Ready condition turns False (strategic merge on its status, as a kubelet writes it) is
/// `node_not_ready`, all of them `cluster_down`, pressure `node_pressure`.
#[tokio::test]
async fn node_probe_sees_a_node_set_not_ready() {
    let t = KubeTest::new("node-probe").await;
    let pool = t.ns.as_str();
    let names: Vec<String> = ["a", "b"].iter().map(|n| format!("{pool}-{n}")).collect();
    for n in &names {
        nodes::create(&t.admin, n, pool, &[("pool", pool)]).await;
    }
    let c = config(&format!(
        "[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"10s\"\ntimeout = \"3s\"\nlabel_selector = \"pool={pool}\"\n"
    ));
    astreinte::app::install_crypto();
    let prober = Prober::new()
        .unwrap()
        .with_kube(Some(t.service_account_client().await));
    let o = until(&prober, &c, Outcome::Healthy).await;
    assert_eq!(o.detail, "2 nodes Ready");

    nodes::set_condition(&t.admin, &names[1], "Ready", "False").await;
    let o = until(&prober, &c, Outcome::failed("node_not_ready")).await;
    assert!(
        o.detail
            .starts_with(&format!("1 of 2 nodes NotReady: {}", names[1])),
        "{}",
        o.detail
    );
    // The strategic merge kept the other conditions.
    let node = Api::<k8s_openapi::api::core::v1::Node>::all(t.admin.clone())
        .get(&names[1])
        .await
        .unwrap();
    let kinds: Vec<String> = node
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");

    nodes::set_condition(&t.admin, &names[0], "Ready", "False").await;
    let o = until(&prober, &c, Outcome::failed("cluster_down")).await;
    assert!(o.detail.starts_with("all 2 nodes NotReady"), "{}", o.detail);

    for n in &names {
        nodes::set_condition(&t.admin, n, "Ready", "True").await;
    }
    nodes::set_condition(&t.admin, &names[0], "DiskPressure", "True").await;
    let o = until(&prober, &c, Outcome::degraded(1.0, "node_pressure")).await;
    assert!(
        o.detail.contains(&format!("{} (DiskPressure)", names[0])),
        "{}",
        o.detail
    );
}
