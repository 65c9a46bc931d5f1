//! Table-driven tests: every gate holds with its own reason, and only then.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::time::Duration;

use super::*;
use crate::config::load_dir;
use crate::level::Level;

fn config(policy: &str, rule_extra: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n\n[[probe]]\nid = \"db\"\nkind = \"tcp\"\naddress = \"127.0.0.1:2\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        format!(
            "[policy]\n{policy}\n\n[[rule]]\nid = \"api-restart\"\ntrigger = {{ probe = \"api\", min_level = \"P2\", for = \"2m\" }}\naction = {{ kind = \"rollout_restart\", namespace = \"rag\", deployment = \"api\" }}\nbudget = {{ max = 2, per = \"1h\" }}\ncooldown = \"10m\"\n{rule_extra}\n"
        ),
    )
    .unwrap();
    load_dir(dir.path()).unwrap()
}

fn t(s: i64) -> jiff::Timestamp {
    // 2026-01-15 00:00 UTC + s
    jiff::Timestamp::from_second(1_768_435_200 + s).unwrap()
}

fn record(
    rule: &str,
    started: i64,
    result: ActionResult,
    verified: Option<bool>,
    incident: &str,
) -> ActionRecord {
    ActionRecord {
        id: 1,
        rule: rule.into(),
        action: "rollout_restart".into(),
        target: "rag/deployment/api".into(),
        key: "api".into(),
        incident: Some(incident.into()),
        started_at: t(started),
        ended_at: Some(t(started + 30)),
        result,
        detail: String::new(),
        undo: None,
        undone: false,
        verified,
        by: None,
        deadline: None,
        interrupted_by: None,
        undo_run: None,
    }
}

fn facts<'a>(actions: &'a [ActionRecord]) -> Facts<'a> {
    Facts {
        now: t(3600 * 5),
        wall: t(3600 * 5),
        trigger: TriggerState {
            level: Level::P1,
            reason: "bad_status".into(),
            since: Some(t(3600 * 5 - 600)),
            leader_lost_since: None,
            unknown_since: None,
            stale_evidence: None,
        },
        escalated: false,
        is_leader: true,
        failing: 1,
        total: 10,
        failing_dependencies: vec![],
        journal_problem: None,
        actions,
        incident: Some("7-api"),
        precondition: Ok(()),
    }
}

fn decide_with(
    policy: &str,
    rule_extra: &str,
    actions: &[ActionRecord],
    edit: impl FnOnce(&mut Facts<'_>),
) -> Decision {
    let c = config(policy, rule_extra);
    let mut f = facts(actions);
    edit(&mut f);
    decide(&c, &c.rules[0], &f)
}

#[test]
fn every_gate_has_its_reason() {
    let enforce = "mode = \"enforce\"";
    let now = 3600 * 5;
    let cases: Vec<(&str, Decision)> = vec![
        ("ok", decide_with(enforce, "", &[], |_| {})),
        ("mode_off", decide_with("mode = \"off\"", "", &[], |_| {})),
        (
            "mode_off",
            decide_with(enforce, "mode = \"off\"", &[], |_| {}),
        ),
        (
            "not_triggered",
            decide_with(enforce, "", &[], |f| f.trigger.level = Level::P3),
        ),
        (
            "too_early",
            decide_with(enforce, "", &[], |f| f.trigger.since = Some(t(now - 60))),
        ),
        (
            "ok",
            decide_with(enforce, "", &[], |f| {
                f.trigger.since = Some(t(now - 60));
                f.escalated = true;
            }),
        ),
        (
            "outside_window",
            decide_with(
                enforce,
                "windows = [{ from = \"22:00\", to = \"04:00\" }]",
                &[],
                |_| {},
            ),
        ),
        (
            "not_leader",
            decide_with(enforce, "", &[], |f| f.is_leader = false),
        ),
        (
            "journal_unavailable",
            decide_with(enforce, "", &[], |f| f.journal_problem = Some("disk full")),
        ),
        (
            "partition_suspected",
            decide_with(
                &format!(
                    "{enforce}\npartition_guard = {{ max_failing_ratio = 0.5, min_targets = 4 }}"
                ),
                "",
                &[],
                |f| f.failing = 6,
            ),
        ),
        (
            "ok",
            decide_with(
                &format!(
                    "{enforce}\npartition_guard = {{ max_failing_ratio = 0.5, min_targets = 4 }}"
                ),
                "",
                &[],
                |f| f.failing = 4,
            ),
        ),
        (
            "dependency_down",
            decide_with(enforce, "depends_on = [\"db\"]", &[], |f| {
                f.failing_dependencies = vec!["db".into()]
            }),
        ),
        (
            "no_healthy_candidate",
            decide_with(enforce, "", &[], |f| {
                f.precondition = Err(Hold::Precondition {
                    code: "no_healthy_candidate".into(),
                    detail: "all replicas lag".into(),
                })
            }),
        ),
    ];
    for (want, got) in cases {
        assert_eq!(got.reason(), want, "{got:?}");
    }
}

#[test]
fn the_allow_list_is_enforced_at_decision_time_too() {
    // Validation rejects such a rule; the gate is the second line of defence.
    let mut c = config("mode = \"enforce\"", "");
    c.policy.allow = vec!["other/*/*".into()];
    let d = decide(&c, &c.rules[0], &facts(&[]));
    assert_eq!(d.reason(), "not_allowed");
}

#[test]
fn history_gates_in_flight_already_tried_budget_cooldown() {
    let enforce = "mode = \"enforce\"";
    let now = 3600 * 5;
    let running = [record(
        "api-restart",
        now - 30,
        ActionResult::Running,
        None,
        "7-api",
    )];
    assert_eq!(
        decide_with(
            enforce,
            "verify = { probe = \"api\", within = \"5m\" }",
            &running,
            |_| {}
        )
        .reason(),
        "in_flight"
    );
    let pending = [record(
        "api-restart",
        now - 30,
        ActionResult::Succeeded,
        None,
        "7-api",
    )];
    assert_eq!(
        decide_with(
            enforce,
            "verify = { probe = \"api\", within = \"5m\" }",
            &pending,
            |_| {}
        )
        .reason(),
        "in_flight"
    );
    let failed = [record(
        "api-restart",
        now - 3000,
        ActionResult::Succeeded,
        Some(false),
        "7-api",
    )];
    assert_eq!(
        decide_with(enforce, "", &failed, |_| {}).reason(),
        "already_tried"
    );
    // The same failure in an earlier incident does not block this one; the cooldown does.
    let earlier = [record(
        "api-restart",
        now - 300,
        ActionResult::Succeeded,
        Some(true),
        "6-api",
    )];
    let d = decide_with(enforce, "", &earlier, |_| {});
    assert_eq!(d.reason(), "cooldown");
    assert!(
        matches!(d, Decision::Hold(Hold::Cooldown { left }) if left == Duration::from_secs(300))
    );
    let two = [
        record(
            "api-restart",
            now - 3000,
            ActionResult::Succeeded,
            Some(true),
            "5-api",
        ),
        record(
            "api-restart",
            now - 2000,
            ActionResult::Interrupted,
            None,
            "6-api",
        ),
    ];
    assert_eq!(
        decide_with(enforce, "", &two, |_| {}).reason(),
        "budget_exhausted"
    );
    // An hour later the budget is back.
    assert_eq!(
        decide_with(enforce, "", &two, |f| f.now = t(now + 3600)).reason(),
        "ok"
    );
}

#[test]
fn global_and_target_budgets_count_every_rule() {
    let now = 3600 * 5;
    let others = [
        record(
            "other-a",
            now - 100,
            ActionResult::Succeeded,
            Some(true),
            "1",
        ),
        record(
            "other-b",
            now - 200,
            ActionResult::Failed { reason: "x".into() },
            None,
            "2",
        ),
    ];
    let global = "mode = \"enforce\"\nglobal_budget = { max = 2, per = \"1h\" }";
    assert!(
        matches!(decide_with(global, "", &others, |_| {}), Decision::Hold(Hold::BudgetExhausted { ref scope, .. }) if scope == "global")
    );
    let target = "mode = \"enforce\"\ntarget_budget = { max = 2, per = \"1h\" }";
    assert!(
        matches!(decide_with(target, "", &others, |_| {}), Decision::Hold(Hold::BudgetExhausted { ref scope, .. }) if scope == "target")
    );
}

#[test]
fn dry_run_rehearses_and_counts_its_rehearsals() {
    let now = 3600 * 5;
    let d = decide_with("mode = \"dry-run\"", "", &[], |_| {});
    assert_eq!(d, Decision::Act { mode: Mode::DryRun });
    assert_eq!(d.label(), "dry_run");
    // A rule in enforce under a global dry-run stays dry-run.
    let d = decide_with("mode = \"dry-run\"", "mode = \"enforce\"", &[], |_| {});
    assert_eq!(d, Decision::Act { mode: Mode::DryRun });
    let rehearsed = [record(
        "api-restart",
        now - 60,
        ActionResult::Rehearsed,
        None,
        "7-api",
    )];
    assert_eq!(
        decide_with("mode = \"dry-run\"", "", &rehearsed, |_| {}).reason(),
        "already_tried"
    );
    // Rehearsals never count once enforced.
    assert_eq!(
        decide_with("mode = \"enforce\"", "", &rehearsed, |_| {}).reason(),
        "ok"
    );
}

#[test]
fn decisions_explain_themselves_in_one_line() {
    let c = config("mode = \"enforce\"", "");
    let rule = &c.rules[0];
    let d = Decision::Hold(Hold::Cooldown {
        left: Duration::from_secs(252),
    });
    assert_eq!(
        d.explain(rule),
        "hold rollout_restart rag/deployment/api (rule api-restart): cooldown, 4m 12s left"
    );
    assert_eq!(
        Decision::Act { mode: Mode::DryRun }.explain(rule),
        "dry-run: would rollout_restart rag/deployment/api (rule api-restart)"
    );
}
