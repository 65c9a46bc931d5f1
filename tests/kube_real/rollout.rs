//! Rollout restart through astreinte's actuator on a real Deployment controller: complete
//! only when the old ReplicaSet is gone (issue 14, defect 1), stuck at its deadline when the
//! new pods never become ready.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use astreinte::actuators::kube::{self as act, Error, RESTARTED_AT};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};

use crate::common::{Counts, counts, deadline, event_reasons};
use crate::support::kube_real::{KubeTest, KubeletConfig, objects};

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
    let err = act::rollout_restart(&t.admin, ns, "web", deadline(8))
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
