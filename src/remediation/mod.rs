//! Remediation: on each tick, every rule is put through the policy (pure) with facts gathered
//! here; an `Act` becomes a journal entry (written before anything is done) and a task (see
//! `tasks`); results come back to the engine, which records them, verifies, and escalates to
//! the next rule or pages when verification fails. Nothing loops: budgets, cooldowns and the
//! "already tried" gate bound every chain.

mod tasks;
mod unverified;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::actuators::Actuators;
use crate::config::{Config, Mode, RuleConfig};
use crate::incident::{EntryKind, Event};
use crate::journal::{ActionRecord, ActionResult, JournalDoc};
use crate::level::Level;
use crate::metrics::Metrics;
use crate::policy::{self, Decision, Facts, Hold};
use crate::probes::Prober;
use crate::score::Scorer;

pub use tasks::TaskResult;

/// How long after an incident resolved its reversible actions may still be undone: a new
/// leader undoes what its predecessor resolved and did not undo, but an old resolution (or a
/// rule given `undo_on_resolve` later) never undoes anything.
pub const UNDO_WITHIN: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// The last decision of a rule, for `/decisions` and `astreinte explain`.
#[derive(Debug, Clone, Serialize)]
pub struct DecisionEntry {
    pub rule: String,
    pub decision: Decision,
    /// One line: "hold restart … (rule …): cooldown, 4m left".
    pub line: String,
    pub at: jiff::Timestamp,
    pub incident: Option<String>,
}

pub struct Remediator {
    actuators: Actuators,
    prober: Prober,
    /// Action and verification tasks: never cancelled; shutdown waits for them.
    pub tracker: TaskTracker,
    tx: mpsc::Sender<TaskResult>,
    pub last: BTreeMap<String, DecisionEntry>,
    /// When the partition guard paged (its suspicion is open until it clears).
    partition_paged: Option<jiff::Timestamp>,
    leader: watch::Receiver<bool>,
    /// Since when the trigger probes have seen the Patroni leader lost, per started record
    /// (handed to its task: the failover gate counts Patroni's `ttl` from it).
    leader_lost_since: BTreeMap<u64, jiff::Timestamp>,
    /// Records whose verification task this process runs (see `pending_verify`).
    verifying: BTreeSet<u64>,
}

/// What evaluation needs from the engine.
pub struct Context<'a> {
    pub config: &'a Arc<Config>,
    pub scorer: &'a Scorer,
    pub doc: &'a mut JournalDoc,
    pub journal_problem: Option<&'a str>,
    /// This replica's name in a shared journal, written in the records it creates.
    pub writer: Option<&'a str>,
    pub metrics: &'a Metrics,
    /// The projected time ([`crate::clock`]): stamps and durations.
    pub now: jiff::Timestamp,
    /// The wall clock: time-of-day windows only.
    pub wall: jiff::Timestamp,
    /// Events for the notifier (pages).
    pub events: &'a mut Vec<Event>,
}

impl Remediator {
    pub fn new(
        actuators: Actuators,
        prober: Prober,
        leader: watch::Receiver<bool>,
    ) -> (Self, mpsc::Receiver<TaskResult>) {
        let (tx, rx) = mpsc::channel(256);
        let r = Remediator {
            actuators,
            prober,
            tracker: TaskTracker::new(),
            tx,
            last: BTreeMap::new(),
            partition_paged: None,
            leader,
            leader_lost_since: BTreeMap::new(),
            verifying: BTreeSet::new(),
        };
        (r, rx)
    }

    pub fn is_leader(&self) -> bool {
        crate::leader::is_leader(&self.leader)
    }

    /// Puts every rule through the policy. Returns the journal records it created (they must
    /// be persisted before [`Remediator::start`] runs them).
    pub fn evaluate(&mut self, cx: &mut Context<'_>) -> Vec<u64> {
        let mut to_start = vec![];
        let (failing, total) = cx.scorer.failing_targets(cx.config, Level::P2);
        let is_leader = self.is_leader();
        for rule in &cx.config.rules {
            let (trigger_probes, key) = trigger_of(cx.config, rule);
            let onset = cx.scorer.trigger_state(
                &trigger_probes,
                rule.trigger.min_level,
                &rule.trigger.reasons,
            );
            let incident = cx.doc.incidents.open.get(&key).map(|i| i.id.clone());
            let failing_dependencies = rule
                .depends_on
                .iter()
                .filter(|d| cx.scorer.get(d).is_some_and(|s| s.level >= Level::P2))
                .cloned()
                .collect();
            let facts = Facts {
                now: cx.now,
                wall: cx.wall,
                trigger: onset,
                escalated: escalated_to(cx.config, &cx.doc.actions, &rule.id, incident.as_deref()),
                is_leader,
                failing,
                total,
                failing_dependencies,
                journal_problem: cx.journal_problem,
                actions: &cx.doc.actions,
                incident: incident.as_deref(),
                precondition: Ok(()),
            };
            let leader_lost_since = facts.trigger.leader_lost_since;
            let decision = policy::decide(cx.config, rule, &facts);
            if let Decision::Hold(Hold::PartitionSuspected { failing, total }) = &decision
                && self.partition_paged.is_none()
            {
                self.partition_paged = Some(cx.now);
                cx.events.push(Event::Paged {
                    incident: None,
                    text: format!("{failing} of {total} targets failing at once: astreinte holds every action and suspects itself (network, DNS, its node)"),
                });
            }
            if matches!(decision, Decision::Act { .. }) {
                let id = cx.doc.next_action_id();
                cx.doc.push_action(ActionRecord {
                    id,
                    rule: rule.id.clone(),
                    action: rule.action.name().to_owned(),
                    target: rule
                        .action
                        .object()
                        .unwrap_or_else(|| rule.action.name().to_owned()),
                    key: key.clone(),
                    incident: incident.clone(),
                    started_at: cx.now,
                    ended_at: None,
                    result: ActionResult::Running,
                    detail: Actuators::describe(&rule.action),
                    undo: None,
                    undone: false,
                    verified: None,
                    by: cx.writer.map(str::to_owned),
                    deadline: Some(rule.deadline()),
                    interrupted_by: None,
                    undo_run: None,
                });
                to_start.push(id);
                if let Some(since) = leader_lost_since {
                    self.leader_lost_since.insert(id, since);
                }
            }
            self.record(cx, rule, &key, decision, incident);
        }
        if let Some(paged_at) = self.partition_paged
            && !policy::partition_suspected(cx.config, failing, total)
        {
            self.partition_paged = None;
            let text = format!(
                "{failing} of {total} targets failing: astreinte no longer suspects itself; actions may run again"
            );
            info!("{text}");
            let mut inc = crate::incident::about_astreinte(&text, paged_at);
            inc.level = Level::Ok;
            inc.resolved_at = Some(cx.now);
            cx.events.push(Event::Resolved(inc));
        }
        to_start
    }

    /// Starts the tasks of records written by [`Remediator::evaluate`] and persisted.
    pub fn start(&mut self, config: &Arc<Config>, doc: &JournalDoc, records: &[u64]) {
        for id in records {
            let Some(rec) = doc.actions.iter().find(|a| a.id == *id) else {
                continue;
            };
            let Some(rule) = config.rules.iter().find(|r| r.id == rec.rule) else {
                continue;
            };
            let job = tasks::Job {
                record: *id,
                rule: rule.clone(),
                mode: policy::effective_mode(config, rule),
                trigger_probes: trigger_of(config, rule).0,
                leader_lost_since: self.leader_lost_since.remove(id),
                config: config.clone(),
            };
            self.tracker.spawn(tasks::act(
                job,
                self.prober.clone(),
                self.actuators.clone(),
                self.tx.clone(),
            ));
        }
    }

    /// Drops records that will not run: not persisted (no action without a journal entry),
    /// or persisted after this replica stopped leading. The decision becomes `hold`.
    pub fn abandon(&mut self, cx: &mut Context<'_>, records: &[u64], hold: Hold) {
        let writer = cx.writer;
        cx.doc
            .actions
            .retain(|a| !(records.contains(&a.id) && a.by.as_deref() == writer));
        self.leader_lost_since.retain(|id, _| !records.contains(id));
        for entry in self.last.values_mut() {
            if matches!(entry.decision, Decision::Act { .. }) {
                entry.decision = Decision::Hold(hold.clone());
                warn!(rule = %entry.rule, reason = hold.code(), "hold: {hold}");
            }
        }
    }

    /// Records a task's result in the journal, the timeline and the metrics.
    pub fn on_result(&mut self, cx: &mut Context<'_>, result: TaskResult) {
        match result {
            TaskResult::Held { record, rule, hold } => {
                cx.doc.actions.retain(|a| a.id != record);
                if let Some(r) = cx.config.rules.iter().find(|r| r.id == rule) {
                    let (_, key) = trigger_of(cx.config, r);
                    let incident = cx.doc.incidents.open.get(&key).map(|i| i.id.clone());
                    self.record(cx, r, &key, Decision::Hold(hold), incident);
                }
            }
            TaskResult::Done {
                record,
                rule,
                result,
                rehearsal,
            } => {
                if let Some(r) = cx.config.rules.iter().find(|r| r.id == rule).cloned()
                    && let Some(key) = cx
                        .doc
                        .actions
                        .iter()
                        .find(|a| a.id == record)
                        .map(|a| a.key.clone())
                {
                    let mode = if rehearsal {
                        Mode::DryRun
                    } else {
                        Mode::Enforce
                    };
                    self.announce_act(cx, &r, &key, mode);
                    if rehearsal && let Err(e) = &result {
                        // The API server refused the rehearsal: enforce would fail the same way.
                        let line = format!(
                            "{}: the rehearsal failed, enforce would too: {e}",
                            Decision::Act { mode }.explain(&r)
                        );
                        warn!(rule = %r.id, "{line}");
                        cx.doc
                            .incidents
                            .note(&key, EntryKind::Decision, line.clone(), cx.now);
                        if let Some(entry) = self.last.get_mut(&r.id) {
                            entry.line = line;
                        }
                    }
                }
                let Some(rec) = cx.doc.actions.iter_mut().find(|a| a.id == record) else {
                    return;
                };
                rec.ended_at = Some(cx.now);
                let (label, line) = match &result {
                    Ok(out) => {
                        rec.result = if rehearsal {
                            ActionResult::Rehearsed
                        } else {
                            ActionResult::Succeeded
                        };
                        rec.detail = out.detail.clone();
                        rec.undo = out.undo.clone();
                        (
                            if rehearsal { "rehearsed" } else { "succeeded" },
                            out.detail.clone(),
                        )
                    }
                    Err(e) => {
                        rec.result = ActionResult::Failed {
                            reason: e.kind().to_owned(),
                        };
                        rec.detail = e.to_string();
                        (e.kind(), format!("failed: {e}"))
                    }
                };
                let (key, action) = (rec.key.clone(), rec.action.clone());
                cx.metrics.action(&rule, &action, label);
                let text = format!("{action} (rule {rule}): {line}");
                info!(rule = %rule, action = %action, result = label, "{text}");
                // A `page` rule touches nothing: it pages in dry-run as well.
                if action == "page" && result.is_ok() {
                    cx.events.push(Event::Paged {
                        incident: cx.doc.incidents.open.get(&key).cloned(),
                        text: format!("rule {rule}: {line}"),
                    });
                }
                cx.doc.incidents.note(&key, EntryKind::Action, text, cx.now);
                let Some(r) = cx.config.rules.iter().find(|r| r.id == rule).cloned() else {
                    return;
                };
                match (&result, rehearsal) {
                    (Ok(_), false) if r.verify.is_some() => {
                        self.verifying.insert(record);
                        self.tracker.spawn(tasks::verify(
                            record,
                            r,
                            cx.config.clone(),
                            self.prober.clone(),
                            self.tx.clone(),
                        ));
                    }
                    (Err(_), false) => self.escalate(cx, &r, &key),
                    _ => {}
                }
            }
            TaskResult::Undone {
                record,
                rule,
                result,
            } => {
                let Some(rec) = cx.doc.actions.iter().find(|a| a.id == record) else {
                    return;
                };
                let (action, incident) = (rec.action.clone(), rec.incident.clone());
                let (label, text, outcome) = match &result {
                    Ok(out) => (
                        "undone",
                        format!("undo of {action} (rule {rule}): {}", out.detail),
                        Ok(out.detail.clone()),
                    ),
                    Err(e) => (
                        e.kind(),
                        format!("undo of {action} (rule {rule}) failed: {e}"),
                        Err((e.kind().to_owned(), e.to_string())),
                    ),
                };
                cx.doc.end_undo(record, cx.now, outcome);
                cx.metrics.action(&rule, &format!("undo_{action}"), label);
                info!(rule = %rule, result = label, "{text}");
                if let Some(id) = incident {
                    cx.doc
                        .incidents
                        .note_on(&id, EntryKind::Action, text, cx.now);
                }
            }
            TaskResult::Verified {
                record,
                rule,
                ok,
                detail,
            } => {
                self.verifying.remove(&record);
                let Some(rec) = cx.doc.actions.iter_mut().find(|a| a.id == record) else {
                    return;
                };
                rec.verified = Some(ok);
                let key = rec.key.clone();
                let text = format!(
                    "verification of rule {rule}: {}",
                    if ok { "ok" } else { "failed" }
                );
                info!(rule = %rule, ok, "{text}: {detail}");
                cx.doc.incidents.note(
                    &key,
                    EntryKind::Verification,
                    format!("{text}: {detail}"),
                    cx.now,
                );
                if !ok && let Some(r) = cx.config.rules.iter().find(|r| r.id == rule).cloned() {
                    self.escalate(cx, &r, &key);
                }
            }
        }
    }

    /// After a failed action or verification: the next rule, or a page. Never loops (the
    /// chain is validated and each rule acts once per incident).
    fn escalate(&mut self, cx: &mut Context<'_>, rule: &RuleConfig, key: &str) {
        // A next rule that has no budget left cannot take over: the chain would end
        // silently, so it pages instead.
        let spent = rule.escalate.as_deref().and_then(|next| {
            let next = cx.config.rules.iter().find(|r| r.id == next)?;
            let mode = policy::effective_mode(cx.config, next);
            (policy::budget_remaining(next, &cx.doc.actions, cx.now, mode) == Some(0))
                .then(|| next.id.clone())
        });
        let text = match (rule.escalate.as_deref(), spent) {
            (_, Some(next)) => {
                let incident = cx.doc.incidents.open.get(key).cloned();
                let text = format!(
                    "rule {} did not fix {key} and rule {next} has no budget left: paging the on-call",
                    rule.id
                );
                cx.events.push(Event::Paged {
                    incident,
                    text: text.clone(),
                });
                text
            }
            (Some("page") | None, None) => {
                let incident = cx.doc.incidents.open.get(key).cloned();
                let text = format!("rule {} did not fix {key}: paging the on-call", rule.id);
                cx.events.push(Event::Paged {
                    incident,
                    text: text.clone(),
                });
                text
            }
            (Some(next), None) => {
                format!(
                    "rule {} did not fix {key}: escalating to rule {next}",
                    rule.id
                )
            }
        };
        warn!(rule = %rule.id, "{text}");
        cx.doc
            .incidents
            .note(key, EntryKind::Decision, text, cx.now);
    }

    /// The undos due: the reversible actions (rules with `undo_on_resolve`, in enforce) of
    /// incidents that resolved in the last [`UNDO_WITHIN`], real and successful, with
    /// something to restore and no undo started yet; newest first. Each is written `Running`
    /// in the journal here: they start only once that entry is stored
    /// ([`Remediator::start_undos`]), like actions.
    /// The leader alone undoes: a follower's view of the incident may end before the
    /// leader's, and a second undo could overwrite what a person changed in between. A new
    /// leader undoes what its predecessor resolved and did not undo.
    pub fn undos_due(&mut self, cx: &mut Context<'_>) -> Vec<u64> {
        if !self.is_leader() {
            return vec![];
        }
        let resolved: BTreeSet<&str> = cx
            .doc
            .incidents
            .recent
            .iter()
            .filter(|i| {
                !i.removed_from_config()
                    && i.resolved_at
                        .is_some_and(|at| crate::clock::elapsed(cx.now, at) <= UNDO_WITHIN)
            })
            .map(|i| i.id.as_str())
            .collect();
        let due: Vec<u64> = cx
            .doc
            .actions
            .iter()
            .rev()
            .filter(|a| {
                a.incident.as_deref().is_some_and(|i| resolved.contains(i))
                    && a.result == ActionResult::Succeeded
                    && !a.undone
                    && a.undo_run.is_none()
                    && a.undo.is_some()
                    && cx.config.rules.iter().any(|r| {
                        r.id == a.rule
                            && r.undo_on_resolve
                            && policy::effective_mode(cx.config, r) == Mode::Enforce
                    })
            })
            .map(|a| a.id)
            .collect();
        for id in &due {
            cx.doc.begin_undo(*id, cx.now, cx.writer);
        }
        due
    }

    /// Starts the undos written by [`Remediator::undos_due`], once stored.
    pub fn start_undos(&mut self, config: &Config, doc: &JournalDoc, records: &[u64]) {
        for id in records {
            let Some(a) = doc.actions.iter().find(|a| a.id == *id) else {
                continue;
            };
            let (Some(value), Some(rule)) = (&a.undo, config.rules.iter().find(|r| r.id == a.rule))
            else {
                continue;
            };
            info!(rule = %rule.id, action = %a.action, "undoing after the incident resolved");
            self.tracker.spawn(tasks::undo(
                a.id,
                rule.clone(),
                value.clone(),
                self.actuators.clone(),
                self.tx.clone(),
            ));
        }
    }

    /// Logs, counts and notes a decision when it differs from the rule's last one. An `Act`
    /// is only announced once its task has re-probed the target and checked the action's
    /// precondition (see [`Remediator::announce_act`]): until then it is pending, and a
    /// re-probe or precondition that holds it is what gets logged.
    fn record(
        &mut self,
        cx: &mut Context<'_>,
        rule: &RuleConfig,
        key: &str,
        decision: Decision,
        incident: Option<String>,
    ) {
        let mut line = decision.explain(rule);
        let changed = self.last.get(&rule.id).is_none_or(|l| {
            l.decision.label() != decision.label() || l.decision.reason() != decision.reason()
        });
        let pending = matches!(decision, Decision::Act { .. });
        if changed && !pending {
            announce(cx, rule, key, &decision, &line);
        }
        if pending {
            line.push_str(" (pending: re-probing the target and checking the precondition first)");
        }
        let remaining = policy::budget_remaining(
            rule,
            &cx.doc.actions,
            cx.now,
            policy::effective_mode(cx.config, rule),
        );
        if let Some(n) = remaining {
            cx.metrics.budget_remaining(&rule.id, n);
        }
        self.last.insert(
            rule.id.clone(),
            DecisionEntry {
                rule: rule.id.clone(),
                decision,
                line,
                at: cx.now,
                incident,
            },
        );
    }

    /// Announces an `Act` whose task passed the re-probe and the precondition: logged
    /// (`act:` / `dry-run: would`), counted and noted now, not when the policy first said so.
    fn announce_act(&mut self, cx: &mut Context<'_>, rule: &RuleConfig, key: &str, mode: Mode) {
        let decision = Decision::Act { mode };
        let line = decision.explain(rule);
        announce(cx, rule, key, &decision, &line);
        if let Some(entry) = self.last.get_mut(&rule.id)
            && matches!(entry.decision, Decision::Act { .. })
        {
            entry.line = line;
        }
    }
}

/// Logs, counts and notes one decision on the incident's timeline.
fn announce(cx: &mut Context<'_>, rule: &RuleConfig, key: &str, decision: &Decision, line: &str) {
    cx.metrics
        .decision(&rule.id, decision.label(), decision.reason());
    match decision {
        Decision::Hold(Hold::NotTriggered { .. }) => {}
        Decision::Hold(_) => {
            info!(rule = %rule.id, decision = "hold", reason = decision.reason(), "{line}")
        }
        Decision::Act { .. } => {
            warn!(rule = %rule.id, decision = decision.label(), "{line}")
        }
    }
    if !matches!(decision, Decision::Hold(Hold::NotTriggered { .. })) {
        cx.doc
            .incidents
            .note(key, EntryKind::Decision, line.to_owned(), cx.now);
    }
    if let Decision::Hold(Hold::DependencyDown { probe }) = decision {
        attach_to_dependency(cx, key, probe);
    }
}

/// Whether `rule` was reached by escalation in `incident`: a rule escalating to it acted in
/// this incident and failed, or failed its verification. Derived from the journal, so it
/// survives a restart or a change of leader.
fn escalated_to(
    config: &Config,
    actions: &[ActionRecord],
    rule: &str,
    incident: Option<&str>,
) -> bool {
    let Some(incident) = incident else {
        return false;
    };
    config
        .rules
        .iter()
        .filter(|r| r.escalate.as_deref() == Some(rule))
        .any(|from| {
            actions.iter().any(|a| {
                a.rule == from.id
                    && a.incident.as_deref() == Some(incident)
                    && (a.verified == Some(false)
                        || matches!(
                            a.result,
                            ActionResult::Failed { .. } | ActionResult::Interrupted
                        ))
            })
        })
}

/// A failing dependency explains this incident: it is attached to the dependency's, so a
/// database outage reads as one story, not a storm of API incidents.
fn attach_to_dependency(cx: &mut Context<'_>, key: &str, dependency_probe: &str) {
    let Some(dep_key) = cx
        .config
        .probe(dependency_probe)
        .map(|p| p.incident_key().to_owned())
    else {
        return;
    };
    if dep_key == key {
        return;
    }
    let Some(parent) = cx.doc.incidents.open.get(&dep_key).map(|i| i.id.clone()) else {
        return;
    };
    if let Some(inc) = cx.doc.incidents.open.get_mut(key)
        && inc.attached_to.as_deref() != Some(parent.as_str())
    {
        inc.attached_to = Some(parent.clone());
        cx.doc.incidents.note(
            key,
            EntryKind::Decision,
            format!("attached to incident {parent}: its dependency {dependency_probe} is failing"),
            cx.now,
        );
    }
}

/// The probes a rule watches and the incident key it acts for.
fn trigger_of(config: &Config, rule: &RuleConfig) -> (Vec<String>, String) {
    match (&rule.trigger.probe, &rule.trigger.group) {
        (Some(p), _) => (
            vec![p.clone()],
            config
                .probe(p)
                .map_or_else(|| p.clone(), |c| c.incident_key().to_owned()),
        ),
        (None, Some(g)) => (
            config
                .enabled_probes()
                .filter(|p| p.group.as_deref() == Some(g.as_str()))
                .map(|p| p.id.clone())
                .collect(),
            g.clone(),
        ),
        (None, None) => (vec![], String::new()),
    }
}

/// Whether any rule could act (mode not off), to skip work on a probe-only daemon.
pub fn any_active(config: &Config) -> bool {
    config
        .rules
        .iter()
        .any(|r| policy::effective_mode(config, r) != Mode::Off)
}
