//! Remediation end to end on a real local HTTP service: a failing target triggers a rule,
//! the action is journaled before it runs, runs, is verified, and the incident resolves;
//! a fix that does not work escalates to the next rule, then pages; dry-run only rehearses.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use astreinte::config::{Config, load_dir};
use astreinte::incident::Event;
use astreinte::journal::ActionResult;
use support::engine_driver;
use support::http_target::HttpTarget;

fn write(dir: &Path, target: &HttpTarget, mode: &str, first_action: &str) -> Arc<Config> {
    std::fs::write(dir.join("hcloud-token"), "hcloud-token\n").unwrap();
    std::fs::write(
        dir.join("probes.toml"),
        format!(
            "[incidents]\ngreen_period = \"2s\"\n\n[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\ngroup = \"rag\"\n",
            target.url("/switchable")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("remediations.toml"),
        format!(
            r#"
[policy]
mode = "{mode}"

[[rule]]
id = "reboot"
trigger = {{ probe = "api", min_level = "P2" }}
action = {{ kind = "http", method = "POST", url = "{first}", token = {{ file = "{token}" }} }}
budget = {{ max = 1, per = "1h" }}
verify = {{ probe = "api", within = "2s" }}
escalate = "second"

[[rule]]
id = "second"
trigger = {{ probe = "api", min_level = "P2", for = "1h" }}
action = {{ kind = "http", method = "POST", url = "{noop}" }}
budget = {{ max = 1, per = "1h" }}
verify = {{ probe = "api", within = "1s" }}
escalate = "page"
"#,
            first = target.url(first_action),
            token = dir.join("hcloud-token").display(),
            noop = target.url("/admin/noop"),
        ),
    )
    .unwrap();
    Arc::new(load_dir(dir).unwrap())
}

#[tokio::test]
async fn a_fix_that_works_is_journaled_verified_and_the_incident_resolves() {
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &target, "enforce", "/admin/recover");
    let (mut e, mut events) =
        engine_driver::engine(&dir.path().join("journal.json"), config, None).await;
    let seen = engine_driver::drive(&mut e, &mut events, 14, Duration::from_millis(250)).await;
    assert_eq!(
        target.admin_calls.load(Ordering::SeqCst),
        1,
        "acted exactly once"
    );
    let actions = &e.journal.doc.actions;
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert_eq!(actions[0].result, ActionResult::Succeeded);
    assert_eq!(actions[0].verified, Some(true));
    assert!(!actions[0].detail.contains("hcloud-token"));
    assert!(
        seen.iter().any(|e| matches!(e, Event::Resolved(_))),
        "{seen:?}"
    );
    let resolved = &e.journal.doc.incidents.recent[0];
    let kinds: Vec<&str> = resolved.timeline.iter().map(|t| t.kind.as_str()).collect();
    for k in [
        "detected",
        "decision",
        "action",
        "verification",
        "green",
        "resolved",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let pm = resolved.postmortem.as_deref().unwrap();
    assert!(
        pm.contains("rule `reboot`") && pm.contains("succeeded"),
        "{pm}"
    );
    // The journal on disk has the same story.
    let on_disk = std::fs::read_to_string(dir.path().join("journal.json")).unwrap();
    assert!(on_disk.contains("\"verified\":true"));
}

#[tokio::test]
async fn a_fix_that_does_not_work_escalates_then_pages_within_budget() {
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &target, "enforce", "/admin/noop");
    let (mut e, mut events) =
        engine_driver::engine(&dir.path().join("journal.json"), config, None).await;
    let seen = engine_driver::drive(&mut e, &mut events, 10, Duration::from_millis(250)).await;
    let rules: Vec<(&str, Option<bool>)> = e
        .journal
        .doc
        .actions
        .iter()
        .map(|a| (a.rule.as_str(), a.verified))
        .collect();
    assert_eq!(
        rules,
        [("reboot", Some(false)), ("second", Some(false))],
        "escalated once, no loop"
    );
    assert_eq!(target.admin_calls.load(Ordering::SeqCst), 2);
    let pages = seen
        .iter()
        .filter(|e| matches!(e, Event::Paged { .. }))
        .count();
    assert_eq!(pages, 1, "{seen:?}");
    let decisions = e.decisions();
    let reboot = decisions.iter().find(|d| d.rule == "reboot").unwrap();
    assert_eq!(reboot.decision.reason(), "already_tried", "{}", reboot.line);
}

#[tokio::test]
async fn dry_run_says_what_it_would_do_and_does_nothing() {
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &target, "dry-run", "/admin/recover");
    let (mut e, mut events) =
        engine_driver::engine(&dir.path().join("journal.json"), config, None).await;
    engine_driver::drive(&mut e, &mut events, 5, Duration::from_millis(250)).await;
    assert_eq!(target.admin_calls.load(Ordering::SeqCst), 0);
    let a = &e.journal.doc.actions[0];
    assert_eq!(a.result, ActionResult::Rehearsed);
    assert!(
        a.detail.starts_with("would POST http://127.0.0.1:"),
        "{}",
        a.detail
    );
    let inc = e.journal.doc.incidents.open.values().next().unwrap();
    assert!(
        inc.timeline
            .iter()
            .any(|t| t.text.contains("dry-run: would http")),
        "{:?}",
        inc.timeline
    );
}

/// A failing `api` observation, as the scheduler would hand it to the engine.
fn failed_observation() -> astreinte::probes::Observation {
    astreinte::probes::Observation {
        probe: Arc::from("api"),
        kind: astreinte::probes::ProbeKind::Http,
        target: Arc::from("api"),
        outcome: astreinte::probes::Outcome::failed("connection_refused"),
        detail: "connection refused".into(),
        latency: Duration::from_millis(1),
        at: jiff::Timestamp::now(),
        measurements: vec![],
    }
}

/// Rules go through the policy as soon as a probe's level changes, not only at the engine's
/// 1 s tick (docs/BENCHMARKS.md: 382–870 ms from the crossing observation to the action
/// before). In paused time, just after a tick, the observation that raises the level must be
/// decided on before time reaches the next tick.
#[tokio::test(start_paused = true)]
async fn a_level_change_is_decided_at_once_not_at_the_next_tick() {
    use astreinte::actuators::Actuators;
    use astreinte::engine::Engine;
    use astreinte::journal::{Journal, MemoryStore};
    use astreinte::metrics::Metrics;
    use astreinte::policy::Decision;
    use astreinte::probes::Prober;
    use astreinte::remediation::Remediator;
    use astreinte::status::StatusBoard;
    use tokio::sync::{mpsc, watch};
    use tokio::time::Instant;

    astreinte::app::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        "[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        "[policy]\nmode = \"dry-run\"\n\n[[rule]]\nid = \"restart\"\n\
         trigger = { probe = \"api\", min_level = \"P2\" }\n\
         action = { kind = \"http\", method = \"POST\", url = \"http://127.0.0.1:1/restart\" }\n\
         budget = { max = 1, per = \"1h\" }\n",
    )
    .unwrap();
    let config = Arc::new(load_dir(dir.path()).unwrap());
    let status = Arc::new(StatusBoard::default());
    let journal = Journal::open(MemoryStore::default(), jiff::Timestamp::now()).await;
    let (_leader_tx, leader) = watch::channel(true);
    let (remediator, results) =
        Remediator::new(Actuators::new().unwrap(), Prober::new().unwrap(), leader);
    let engine = Engine::new(config, Arc::new(Metrics::new()), status.clone(), journal)
        .with_remediation(remediator, results)
        .without_table();
    let (tx, rx) = mpsc::channel(16);
    let cancel = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(engine.run(rx, cancel.clone(), Duration::from_secs(1)));
    let acted = |s: &StatusBoard| {
        s.decisions()
            .iter()
            .any(|d| d.rule == "restart" && matches!(d.decision, Decision::Act { .. }))
    };
    // The engine's first tick fires at once (and holds: nothing failed); the next is at 1 s.
    support::wait_for(
        "the first tick's decision",
        Duration::from_secs(10),
        || async { (!status.decisions().is_empty()).then_some(()) },
    )
    .await;
    assert!(!acted(&status), "{:?}", status.decisions());
    let sent = Instant::now();
    // The default damping enters a level after 2 consecutive results.
    for _ in 0..2 {
        tx.send(failed_observation()).await.unwrap();
    }
    while !acted(&status) {
        assert!(
            sent.elapsed() < Duration::from_millis(800),
            "no decision before the engine's next tick: {:?}",
            status.decisions()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("decided {:?} after the level change", sent.elapsed());
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("the engine stops")
        .unwrap();
}

/// Issue 14 #9: a failed fix escalates into a rule whose budget is spent (it acted in an
/// earlier incident): the escalation cannot happen, so the on-call is paged, not left silent.
#[tokio::test]
async fn an_escalation_into_a_rule_with_no_budget_left_pages() {
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &target, "enforce", "/admin/noop");
    // The first rule may act twice an hour, the one it escalates to once.
    let rules = std::fs::read_to_string(dir.path().join("remediations.toml")).unwrap();
    let rules = rules.replacen(
        "budget = { max = 1, per = \"1h\" }",
        "budget = { max = 2, per = \"1h\" }",
        1,
    );
    let rules = rules.replacen(
        "escalate = \"second\"",
        "cooldown = \"1s\"\nescalate = \"second\"",
        1,
    );
    std::fs::write(dir.path().join("remediations.toml"), rules).unwrap();
    let config = Arc::new(load_dir(dir.path()).unwrap());
    let (mut e, mut events) =
        engine_driver::engine(&dir.path().join("journal.json"), config, None).await;
    // First incident: reboot fails, second fails, page; then it recovers and resolves.
    let seen = engine_driver::drive(&mut e, &mut events, 10, Duration::from_millis(250)).await;
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(e, Event::Paged { .. }))
            .count(),
        1,
        "{seen:?}"
    );
    target.status.store(200, Ordering::SeqCst);
    let mut resolved = false;
    for _ in 0..20 {
        let seen = engine_driver::drive(&mut e, &mut events, 1, Duration::from_millis(250)).await;
        if seen.iter().any(|e| matches!(e, Event::Resolved(_))) {
            resolved = true;
            break;
        }
    }
    assert!(resolved, "{:#?}", e.journal.doc.incidents.open);
    // Second incident: reboot acts again and fails; second has no budget left.
    target.status.store(500, Ordering::SeqCst);
    let seen = engine_driver::drive(&mut e, &mut events, 10, Duration::from_millis(250)).await;
    let rules: Vec<&str> = e
        .journal
        .doc
        .actions
        .iter()
        .map(|a| a.rule.as_str())
        .collect();
    let why: Vec<String> = e.decisions().into_iter().map(|d| d.line).collect();
    assert_eq!(rules, ["reboot", "second", "reboot"], "{why:?}");
    let pages: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Paged { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        pages.len(),
        1,
        "paged once for the second incident: {seen:?}"
    );
    assert!(pages[0].contains("no budget left"), "{pages:?}");
}

/// Issue 15 #4: a decision to act is announced (logged `dry-run: would …` / `act: …`, counted,
/// put on the timeline) only once its task has re-probed the target and checked the
/// precondition. Here the failing results reach the engine, but the target answers 200 when
/// re-probed: the decision ends as `hold recovered`, and no "would" was ever said.
#[tokio::test]
async fn a_rehearsal_the_re_probe_holds_is_never_announced() {
    use astreinte::actuators::Actuators;
    use astreinte::engine::Engine;
    use astreinte::journal::{Journal, MemoryStore};
    use astreinte::metrics::Metrics;
    use astreinte::probes::Prober;
    use astreinte::remediation::Remediator;
    use astreinte::status::StatusBoard;
    use tokio::sync::watch;

    astreinte::app::install_crypto();
    let target = HttpTarget::start().await; // healthy: 200
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), &target, "dry-run", "/admin/recover");
    let journal = Journal::open(MemoryStore::default(), jiff::Timestamp::now()).await;
    let (_leader_tx, leader) = watch::channel(true);
    let (remediator, results) =
        Remediator::new(Actuators::new().unwrap(), Prober::new().unwrap(), leader);
    let metrics = Arc::new(Metrics::new());
    let mut e = Engine::new(
        config,
        metrics.clone(),
        Arc::new(StatusBoard::default()),
        journal,
    )
    .with_remediation(remediator, results)
    .without_table();
    for _ in 0..2 {
        e.handle(&failed_observation());
    }
    e.remediate(jiff::Timestamp::now()).await;
    let pending = e.decisions();
    let reboot = pending.iter().find(|d| d.rule == "reboot").unwrap();
    assert!(reboot.line.contains("pending"), "{}", reboot.line);
    let result = tokio::time::timeout(Duration::from_secs(30), e.next_task_result())
        .await
        .expect("the task reports")
        .unwrap();
    e.on_task_result(result, jiff::Timestamp::now());
    let decisions = e.decisions();
    let reboot = decisions.iter().find(|d| d.rule == "reboot").unwrap();
    assert_eq!(reboot.decision.reason(), "recovered", "{}", reboot.line);
    let inc = e.journal.doc.incidents.open.values().next().unwrap();
    assert!(
        !inc.timeline.iter().any(|t| t.text.contains("would")),
        "{:?}",
        inc.timeline
    );
    let text = metrics.encode();
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("astreinte_remediation_decisions_total")
                && l.contains("decision=\"dry_run\"")),
        "{text}"
    );
    assert!(
        e.journal.doc.actions.is_empty(),
        "the held record is dropped"
    );
    assert_eq!(target.admin_calls.load(Ordering::SeqCst), 0);
}
