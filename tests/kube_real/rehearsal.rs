//! Rehearsals (issue 14 #6): in dry-run, every Kubernetes action is sent with `dryRun=All`,
//! so the API server checks it and nothing changes. A misspelt object and a namespace the
//! RBAC does not cover fail the rehearsal as they would fail in enforce; before, a rehearsal
//! never asked the server and both "rehearsed" fine.

use astreinte::actuators::kube::{self as act, Error};
use astreinte::clients::kube::Error as KubeError;
use astreinte::config::ActionSpec;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use serde_json::json;

use crate::common::{deadline, event_reasons};
use crate::support::kube_real::{KubeTest, objects};

fn action(toml: &str) -> ActionSpec {
    toml::from_str(toml).unwrap()
}

#[tokio::test]
async fn a_rehearsal_is_checked_by_the_api_server_and_changes_nothing() {
    let t = KubeTest::new("rehearsal").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 2).await;
    objects::configmap(&t.admin, ns, "flags", json!({ "READ_ONLY_MODE": "false" })).await;
    let sa = t.service_account_client().await;
    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), ns);
    // The spec's generation and replicas (the status moves on its own: the controller).
    let version = || async {
        let d = deployments.get("rag-api").await.unwrap();
        (d.metadata.generation, d.spec.unwrap().replicas)
    };
    let before = version().await;

    for toml in [
        format!(
            "kind = \"scale\"\nnamespace = \"{ns}\"\ndeployment = \"rag-api\"\nreplicas = 4\nmax_replicas = 6\n"
        ),
        format!("kind = \"rollout_restart\"\nnamespace = \"{ns}\"\ndeployment = \"rag-api\"\n"),
        format!(
            "kind = \"configmap_patch\"\nnamespace = \"{ns}\"\nname = \"flags\"\ndata = {{ READ_ONLY_MODE = \"true\" }}\n"
        ),
    ] {
        let out = act::rehearse(&sa, &action(&toml), deadline(10))
            .await
            .unwrap();
        assert!(
            out.detail
                .starts_with("dry-run accepted by the API server (dryRun=All), would have: "),
            "{}",
            out.detail
        );
    }
    assert_eq!(version().await, before, "the spec did not change");
    let replica_sets = Api::<ReplicaSet>::namespaced(t.admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(replica_sets.items.len() <= 1, "no new ReplicaSet");
    let cm = Api::<ConfigMap>::namespaced(t.admin.clone(), ns)
        .get("flags")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["READ_ONLY_MODE"], "false");
    let reasons = event_reasons(&t.admin, ns).await;
    assert!(
        !reasons.iter().any(|r| r.starts_with("Astreinte")),
        "a rehearsal records no Event: {reasons:?}"
    );

    // A misspelt deployment: the rehearsal fails as enforce would.
    let typo = action(&format!(
        "kind = \"scale\"\nnamespace = \"{ns}\"\ndeployment = \"rag-apii\"\nreplicas = 4\nmax_replicas = 6\n"
    ));
    let err = act::rehearse(&sa, &typo, deadline(10)).await.unwrap_err();
    assert!(
        matches!(err, Error::Kube(KubeError::NotFound { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("rag-apii"), "{err}");

    // A namespace the ServiceAccount is not bound in: forbidden in rehearsal already.
    let other = KubeTest::new("rehearsal-other").await;
    objects::deployment(&t.admin, &other.ns, "web", 1).await;
    let restart = action(&format!(
        "kind = \"rollout_restart\"\nnamespace = \"{}\"\ndeployment = \"web\"\n",
        other.ns
    ));
    let err = act::rehearse(&sa, &restart, deadline(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Kube(KubeError::Forbidden { .. })),
        "{err}"
    );
}

/// Through the remediation path: a dry-run rule on a misspelt deployment. Before, the
/// rehearsal never asked the API server and the journal said "would scale …" (Rehearsed);
/// now the rehearsal fails with the server's answer, and the decision says enforce would too.
#[tokio::test]
async fn a_dry_run_rule_on_a_misspelt_deployment_says_its_rehearsal_failed() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use astreinte::actuators::Actuators;
    use astreinte::engine::Engine;
    use astreinte::journal::{ActionResult, Journal, MemoryStore};
    use astreinte::metrics::Metrics;
    use astreinte::probes::{Observation, Outcome, ProbeKind, Prober};
    use astreinte::remediation::Remediator;
    use astreinte::status::StatusBoard;
    use tokio::sync::watch;

    use crate::support::http_target::HttpTarget;

    let t = KubeTest::new("rehearsal-typo").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 2).await;
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            target.url("/switchable")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        format!(
            "[policy]\nmode = \"dry-run\"\n\n[[rule]]\nid = \"scale-up\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
             action = {{ kind = \"scale\", namespace = \"{ns}\", deployment = \"rag-apii\", replicas = 4, max_replicas = 6 }}\n"
        ),
    )
    .unwrap();
    let config = Arc::new(astreinte::config::load_dir(dir.path()).unwrap());
    let journal = Journal::open(MemoryStore::default(), jiff::Timestamp::now()).await;
    let (_leader_tx, leader) = watch::channel(true);
    let actuators = Actuators::new()
        .unwrap()
        .with_kube(Some(t.service_account_client().await));
    let (remediator, results) = Remediator::new(actuators, Prober::new().unwrap(), leader);
    let mut e = Engine::new(
        config,
        Arc::new(Metrics::new()),
        Arc::new(StatusBoard::default()),
        journal,
    )
    .with_remediation(remediator, results)
    .without_table();
    for _ in 0..2 {
        e.handle(&Observation {
            probe: Arc::from("api"),
            kind: ProbeKind::Http,
            target: Arc::from("api"),
            outcome: Outcome::failed("bad_status"),
            detail: "HTTP 500".into(),
            latency: Duration::from_millis(1),
            at: jiff::Timestamp::now(),
            measurements: vec![],
        });
    }
    e.remediate(jiff::Timestamp::now()).await;
    let result = tokio::time::timeout(Duration::from_secs(30), e.next_task_result())
        .await
        .expect("the rehearsal reports")
        .unwrap();
    e.on_task_result(result, jiff::Timestamp::now());
    let record = &e.journal.doc.actions[0];
    assert!(
        matches!(record.result, ActionResult::Failed { .. }),
        "{:?}: {}",
        record.result,
        record.detail
    );
    assert!(record.detail.contains("rag-apii"), "{}", record.detail);
    let decisions = e.decisions();
    let line = &decisions
        .iter()
        .find(|d| d.rule == "scale-up")
        .unwrap()
        .line;
    assert!(
        line.contains("the rehearsal failed, enforce would too"),
        "{line}"
    );
}
