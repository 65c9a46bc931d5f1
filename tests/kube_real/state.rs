//! The daemon's own state on the real plane, as the ServiceAccount: leader election on a
//! real Lease (exactly one leader, release on a clean stop, takeover only after expiry,
//! stepping down when another holder writes it), and the journal ConfigMap as a real
//! compare-and-swap (AlreadyExists, a stale resourceVersion, RBAC denial).

use std::time::Duration;

use astreinte::journal::{KubeStore, Store, StoreError};
use astreinte::leader::{LeaderConfig, spawn};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;
use tokio::sync::watch::Receiver;
use tokio_util::sync::CancellationToken;

use crate::support::kube_real::KubeTest;
use crate::support::wait_for;

const LEASE: &str = "astreinte-leader";

fn lease_config(ns: &str, identity: &str) -> LeaderConfig {
    LeaderConfig {
        namespace: ns.into(),
        name: LEASE.into(),
        identity: identity.into(),
        duration: Duration::from_secs(2),
        renew: Duration::from_millis(200),
    }
}

fn leaders(rx: &[&Receiver<bool>]) -> usize {
    rx.iter().filter(|r| *r.borrow()).count()
}

async fn lease(t: &KubeTest) -> Lease {
    Api::<Lease>::namespaced(t.admin.clone(), &t.ns)
        .get(LEASE)
        .await
        .unwrap()
}

/// The Lease's renewTime as the server stores it.
async fn renewed(t: &KubeTest) -> Option<jiff::Timestamp> {
    lease(t).await.spec?.renew_time.map(|m| m.0)
}

/// Waits for `n` renewals of the Lease, checking `check` at each one.
async fn over_renewals(t: &KubeTest, n: usize, check: impl Fn()) {
    let mut last = renewed(t).await;
    for i in 0..n {
        last = wait_for(&format!("renewal {i}"), Duration::from_secs(5), || async {
            let now = renewed(t).await;
            (now != last).then_some(now)
        })
        .await;
        check();
    }
}

#[tokio::test]
async fn exactly_one_leader_and_failover_on_release() {
    let t = KubeTest::new("leader-failover").await;
    let client = t.service_account_client().await;
    let (cancel_a, cancel_b) = (CancellationToken::new(), CancellationToken::new());
    let gauge = prometheus_client::metrics::gauge::Gauge::default();
    let (a, task_a) = spawn(
        client.clone(),
        lease_config(&t.ns, "a"),
        cancel_a.clone(),
        Some(gauge.clone()),
    );
    let (b, task_b) = spawn(
        client.clone(),
        lease_config(&t.ns, "b"),
        cancel_b.clone(),
        None,
    );
    wait_for("a leader", Duration::from_secs(10), || async {
        (leaders(&[&a, &b]) == 1).then_some(())
    })
    .await;
    over_renewals(&t, 3, || assert_eq!(leaders(&[&a, &b]), 1)).await;
    let (first, first_cancel, first_task, other) = if *a.borrow() {
        assert_eq!(gauge.get(), 1, "the leader gauge of a");
        ("a", cancel_a, task_a, b.clone())
    } else {
        ("b", cancel_b, task_b, a.clone())
    };
    let spec = lease(&t).await.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(first));
    assert_eq!(spec.lease_duration_seconds, Some(2));

    // A clean stop releases the Lease: the other takes it without waiting for expiry.
    first_cancel.cancel();
    first_task.await.unwrap();
    wait_for(
        "the other replica to lead",
        Duration::from_secs(5),
        || async { (*other.borrow()).then_some(()) },
    )
    .await;
    let spec = lease(&t).await.spec.unwrap();
    assert_ne!(spec.holder_identity.as_deref(), Some(first));
}

#[tokio::test]
async fn a_crashed_leader_is_replaced_only_after_its_lease_expires() {
    let t = KubeTest::new("leader-crash").await;
    let client = t.service_account_client().await;
    let (a, task_a) = spawn(
        client.clone(),
        lease_config(&t.ns, "a"),
        CancellationToken::new(),
        None,
    );
    wait_for("a leads", Duration::from_secs(10), || async {
        (*a.borrow()).then_some(())
    })
    .await;
    let (b, _task_b) = spawn(
        client.clone(),
        lease_config(&t.ns, "b"),
        CancellationToken::new(),
        None,
    );
    over_renewals(&t, 3, || {
        assert!(!*b.borrow(), "b must not lead while a renews")
    })
    .await;
    // No release: b may only take the Lease once a's last renewal is 2 s old.
    task_a.abort();
    let _ = task_a.await;
    let last = renewed(&t).await.unwrap();
    wait_for("b takes over", Duration::from_secs(10), || async {
        (*b.borrow()).then_some(())
    })
    .await;
    let spec = lease(&t).await.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    let acquired = spec.acquire_time.unwrap().0;
    assert!(
        acquired >= last + jiff::SignedDuration::from_secs(2),
        "acquired at {acquired}, a last renewed at {last}"
    );
}

#[tokio::test]
async fn a_lost_race_flips_leadership_at_once() {
    let t = KubeTest::new("leader-race").await;
    let client = t.service_account_client().await;
    let mut config = lease_config(&t.ns, "a");
    config.renew = Duration::from_millis(100);
    let (a, _task) = spawn(client, config, CancellationToken::new(), None);
    wait_for("a leads", Duration::from_secs(10), || async {
        (*a.borrow()).then_some(())
    })
    .await;
    // Another writer takes the Lease (as after a partition): a's next renewal is a 409 or
    // sees another holder, and a stops leading.
    Api::<Lease>::namespaced(t.admin.clone(), &t.ns)
        .patch(
            LEASE,
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": {
                "holderIdentity": "intruder", "renewTime": "2099-01-01T00:00:00.000000Z",
            } })),
        )
        .await
        .unwrap();
    wait_for("a steps down", Duration::from_secs(5), || async {
        (!*a.borrow()).then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_journal_configmap_is_a_compare_and_swap() {
    let t = KubeTest::new("journal-cas").await;
    let store = KubeStore::new(t.service_account_client().await, &t.ns, "astreinte-journal");
    assert_eq!(store.load().await.unwrap(), None);
    let v1 = store.save("[1]", None).await.unwrap();
    // A second "first save" (another replica) conflicts: the real AlreadyExists.
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
    // A stale version conflicts (the real 409), and nothing is overwritten.
    let err = store.save("[1,3]", Some(&v1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
    assert!(err.is_transient());
    assert_eq!(store.load().await.unwrap().unwrap().data, "[1,2]");
    let cm = Api::<ConfigMap>::namespaced(t.admin.clone(), &t.ns)
        .get("astreinte-journal")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["journal.json"], "[1,2]");

    // Too big for a ConfigMap: refused before any write.
    let big = "x".repeat(901 * 1024);
    let err = store.save(&big, Some(&v2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)));
    assert!(err.to_string().contains("limit"), "{err}");
    assert_eq!(store.load().await.unwrap().unwrap().version, v2);
}

#[tokio::test]
async fn a_journal_the_service_account_may_not_write_is_denied_clearly() {
    let t = KubeTest::new("journal-denied").await;
    let kubeconfig = t.unbound_kubeconfig("nobody").await;
    let client = crate::support::kube_real::kubeconfig::client(&kubeconfig).await;
    let store = KubeStore::new(client, &t.ns, "astreinte-journal");
    let err = store.save("[]", None).await.unwrap_err();
    assert!(matches!(err, StoreError::Denied(_)), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("may not create configmaps in namespace {}", t.ns)),
        "{err}"
    );
    assert!(!err.is_transient());
}

/// Issue 16 §3: 10,000 resolved incidents and 10,000 actions through the ConfigMap store.
/// Before, the document outgrew the ConfigMap limit, every save was refused ("prune old
/// entries") and every rule then held; now it is compacted under `[journal] max_bytes`
/// before the write, and what the policy needs stays.
#[tokio::test]
async fn a_journal_of_ten_thousand_entries_is_compacted_under_its_budget() {
    use astreinte::config::IncidentSettings;
    use astreinte::journal::{ActionRecord, ActionResult, DEFAULT_MAX_BYTES, Journal};
    use astreinte::level::Level;

    let t = KubeTest::new("journal-compact").await;
    let store = KubeStore::new(t.service_account_client().await, &t.ns, "astreinte-journal");
    let now = jiff::Timestamp::now();
    let mut journal = Journal::open(store, now).await;
    journal.set_limits(DEFAULT_MAX_BYTES, Duration::from_secs(3600));
    let settings = IncidentSettings {
        keep_resolved: 100_000,
        ..IncidentSettings::default()
    };
    let long_ago = now - Duration::from_secs(30 * 24 * 3600);
    for i in 0..10_000_u64 {
        let key = format!("svc-{i}");
        let at = long_ago + Duration::from_secs(i);
        let doc = &mut journal.doc;
        doc.incidents
            .on_level(&key, Level::P2, "bad_status", "HTTP 500", at, &settings);
        doc.incidents
            .on_level(&key, Level::Ok, "ok", "", at, &settings);
        doc.actions.push(ActionRecord {
            id: i + 1,
            rule: "restart".into(),
            action: "rollout_restart".into(),
            target: format!("ns/deployment/{key}"),
            key: key.clone(),
            incident: Some(format!("{}-{key}", i + 1)),
            started_at: at,
            ended_at: Some(at),
            result: ActionResult::Succeeded,
            detail: "rollout restart complete: 3 of 3 updated, ready, available".into(),
            undo: None,
            undone: false,
            verified: Some(true),
            by: None,
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        });
    }
    journal.doc.incidents.tick(
        long_ago + Duration::from_secs(20_000) + settings.green_period,
        &settings,
    );
    journal
        .doc
        .incidents
        .on_level("api", Level::P1, "timeout", "", now, &settings);
    let before = serde_json::to_string(&journal.doc).unwrap().len();
    assert!(
        before > 900 * 1024,
        "{before} bytes: over the ConfigMap store's limit"
    );

    journal.save().await.unwrap();
    assert!(
        journal.written_bytes() <= DEFAULT_MAX_BYTES,
        "{}",
        journal.written_bytes()
    );
    let cm = Api::<ConfigMap>::namespaced(t.admin.clone(), &t.ns)
        .get("astreinte-journal")
        .await
        .unwrap();
    let stored = &cm.data.unwrap()["journal.json"];
    assert!(stored.len() <= DEFAULT_MAX_BYTES, "{}", stored.len());
    let doc = astreinte::journal::JournalDoc::parse(stored).unwrap();
    assert!(
        doc.incidents.open.contains_key("api"),
        "the open incident stays"
    );
    assert!(journal.problem.is_none(), "{:?}", journal.problem);
}
