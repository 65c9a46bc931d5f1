//! The runbook's mitigations end to end, through the real kube client against the Kubernetes
//! API test server and a real local HTTP service standing for rag-api: restart → rollout →
//! the service recovers → verified → resolved; a service that does not recover → scale-up,
//! then degraded mode, then a page, each once; a restart of the daemon mid-chain keeps the
//! budgets; reversible actions are undone after the incident resolves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use astreinte::config::{Config, load_dir};
use astreinte::incident::Event;
use astreinte::journal::ActionResult;
use serde_json::json;
use support::engine_driver;
use support::http_target::HttpTarget;
use support::kube_api::{KubeApi, Rollout, objects};

const NS: &str = "rag-production";

fn write(dir: &Path, api: &HttpTarget) -> Arc<Config> {
    std::fs::write(
        dir.join("probes.toml"),
        format!(
            "[incidents]\ngreen_period = \"2s\"\n\n[[probe]]\nid = \"rag-api-health\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\ngroup = \"rag-production\"\n",
            api.url("/switchable")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("remediations.toml"),
        r#"
[policy]
mode = "enforce"
allow = ["rag-production/*/*"]

[[rule]]
id = "api-restart"
trigger = { probe = "rag-api-health", min_level = "P2" }
action = { kind = "rollout_restart", namespace = "rag-production", deployment = "rag-api" }
budget = { max = 1, per = "1h" }
verify = { probe = "rag-api-health", within = "2s" }
deadline = "10s"
escalate = "api-scale-up"

[[rule]]
id = "api-scale-up"
trigger = { probe = "rag-api-health", min_level = "P2", for = "1h" }
action = { kind = "scale", namespace = "rag-production", deployment = "rag-api", replicas = 6, max_replicas = 6 }
budget = { max = 1, per = "1h" }
verify = { probe = "rag-api-health", within = "2s" }
escalate = "degraded-mode"
undo_on_resolve = true

[[rule]]
id = "degraded-mode"
trigger = { group = "rag-production", min_level = "P1", for = "1h" }
action = { kind = "configmap_patch", namespace = "rag-production", name = "rag-config", data = { READ_ONLY_MODE = "true", DISABLE_ANALYTICS = "true" } }
budget = { max = 1, per = "1h" }
verify = { probe = "rag-api-health", within = "2s" }
escalate = "page"
undo_on_resolve = true
"#,
    )
    .unwrap();
    Arc::new(load_dir(dir).unwrap())
}

fn seed(kube: &KubeApi) {
    kube.put(objects::deployment(NS, "rag-api", 3, 3));
    kube.put(objects::configmap(
        NS,
        "rag-config",
        json!({ "READ_ONLY_MODE": "false" }),
    ));
    kube.set_rollout(Rollout::Completes(Duration::from_millis(300)));
}

fn restarted(kube: &KubeApi) -> bool {
    kube.get("apps/v1", "deployments", NS, "rag-api")
        .is_some_and(|d| {
            !d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .is_null()
        })
}

#[tokio::test]
async fn a_restart_that_fixes_rag_api_is_verified_and_the_incident_resolves() {
    let kube = KubeApi::start().await;
    seed(&kube);
    let api = HttpTarget::start().await;
    api.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &api);
    let journal = dir.path().join("journal.json");
    let (mut e, mut events) =
        engine_driver::engine(&journal, config, Some(kube.client().await)).await;
    // The "service" recovers once the rollout restart happened.
    let (kube_watch, status) = (Arc::new(kube), api.status.clone());
    let k = kube_watch.clone();
    let fixer = tokio::spawn(async move {
        while !restarted(&k) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        status.store(200, Ordering::SeqCst);
    });
    let seen = engine_driver::drive(&mut e, &mut events, 12, Duration::from_millis(700)).await;
    fixer.await.unwrap();
    let rules: Vec<(&str, &ActionResult, Option<bool>)> = e
        .journal
        .doc
        .actions
        .iter()
        .map(|a| (a.rule.as_str(), &a.result, a.verified))
        .collect();
    assert_eq!(
        rules,
        [("api-restart", &ActionResult::Succeeded, Some(true))]
    );
    assert!(
        e.journal.doc.actions[0].detail.contains("complete"),
        "{}",
        e.journal.doc.actions[0].detail
    );
    assert!(
        seen.iter().any(|ev| matches!(ev, Event::Resolved(_))),
        "{seen:?}"
    );
    kube_watch.assert_event(
        NS,
        "AstreinteRolloutRestart",
        "Deployment",
        "rag-api",
        "Normal",
    );
    let d = kube_watch
        .get("apps/v1", "deployments", NS, "rag-api")
        .unwrap();
    assert_eq!(d["spec"]["replicas"], 3, "no escalation happened");
}

#[tokio::test]
async fn a_service_that_does_not_recover_escalates_once_per_rule_then_pages() {
    let kube = KubeApi::start().await;
    seed(&kube);
    let api = HttpTarget::start().await;
    api.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &api);
    let (mut e, mut events) = engine_driver::engine(
        &dir.path().join("journal.json"),
        config.clone(),
        Some(kube.client().await),
    )
    .await;
    let seen = engine_driver::drive(&mut e, &mut events, 14, Duration::from_millis(700)).await;
    let chain: Vec<(&str, Option<bool>)> = e
        .journal
        .doc
        .actions
        .iter()
        .map(|a| (a.rule.as_str(), a.verified))
        .collect();
    assert_eq!(
        chain,
        [
            ("api-restart", Some(false)),
            ("api-scale-up", Some(false)),
            ("degraded-mode", Some(false))
        ],
        "restart, then scale-up, then degraded mode, each once"
    );
    assert_eq!(
        seen.iter()
            .filter(|ev| matches!(ev, Event::Paged { .. }))
            .count(),
        1
    );
    let d = kube.get("apps/v1", "deployments", NS, "rag-api").unwrap();
    assert_eq!(d["spec"]["replicas"], 6);
    let cm = kube.get("v1", "configmaps", NS, "rag-config").unwrap();
    assert_eq!(cm["data"]["READ_ONLY_MODE"], "true");
    drop(e);

    // The daemon restarts mid-incident: budgets and "already tried" come from the journal.
    let writes_before = kube.requests().iter().filter(|r| r.verb == "patch").count();
    let (mut e, mut events) = engine_driver::engine(
        &dir.path().join("journal.json"),
        config,
        Some(kube.client().await),
    )
    .await;
    engine_driver::drive(&mut e, &mut events, 4, Duration::from_millis(700)).await;
    let writes_after = kube.requests().iter().filter(|r| r.verb == "patch").count();
    assert_eq!(
        writes_before, writes_after,
        "no action repeated after the restart"
    );
    assert_eq!(e.journal.doc.actions.len(), 3);
    for d in e.decisions() {
        assert!(
            matches!(
                d.decision.reason(),
                "already_tried" | "budget_exhausted" | "cooldown"
            ),
            "{}",
            d.line
        );
    }

    // The service recovers. A replica that is not the leader resolves nothing and undoes
    // nothing: the incidents and undo are the leader's (issue 14 #2: every replica undid;
    // #4: every replica resolved and notified).
    api.status.store(200, Ordering::SeqCst);
    let follower_journal = dir.path().join("follower.json");
    std::fs::copy(dir.path().join("journal.json"), &follower_journal).unwrap();
    let (mut f, mut f_events) = engine_driver::follower(
        &follower_journal,
        e.config.clone(),
        Some(kube.client().await),
    )
    .await;
    let writes_before = kube.requests().iter().filter(|r| r.verb == "patch").count();
    let seen = engine_driver::drive(&mut f, &mut f_events, 9, Duration::from_millis(700)).await;
    assert!(
        !seen.iter().any(|ev| matches!(ev, Event::Resolved(_))),
        "the follower resolved the leader's incident: {seen:#?}"
    );
    assert_eq!(f.tasks_in_flight(), 0, "the follower started an undo");
    let writes_after = kube.requests().iter().filter(|r| r.verb == "patch").count();
    assert_eq!(writes_before, writes_after, "a follower undid an action");
    assert!(f.journal.doc.actions.iter().all(|a| !a.undone));
    drop(f);

    // After the green period, the leader undoes scale and degraded mode.
    let seen = engine_driver::drive(&mut e, &mut events, 9, Duration::from_millis(700)).await;
    assert!(
        seen.iter().any(|ev| matches!(ev, Event::Resolved(_))),
        "{:#?}",
        e.journal.doc.incidents.open
    );
    let d = kube.get("apps/v1", "deployments", NS, "rag-api").unwrap();
    assert_eq!(d["spec"]["replicas"], 3, "scale-up undone");
    let cm = kube.get("v1", "configmaps", NS, "rag-config").unwrap();
    assert_eq!(
        cm["data"]["READ_ONLY_MODE"], "false",
        "degraded mode undone"
    );
    assert!(
        cm["data"]
            .get("DISABLE_ANALYTICS")
            .is_none_or(|v| v.is_null()),
        "{cm}"
    );
    let undone: Vec<&str> = e
        .journal
        .doc
        .actions
        .iter()
        .filter(|a| a.undone)
        .map(|a| a.rule.as_str())
        .collect();
    assert_eq!(undone.len(), 2, "{undone:?}");
}
