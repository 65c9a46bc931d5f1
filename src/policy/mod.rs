//! Policy (pure: no IO, the time is in the facts): whether a rule acts now. Each gate is a
//! check that returns a named [`Hold`]; the first that holds wins, so a decision is always
//! explained in one line: "hold restart rag-production/deployment/rag-api (rule
//! api-restart): cooldown, 4m12s left".

mod hold;
mod leader_loss;
mod window;

use std::time::Duration;

use serde::Serialize;

use crate::clock::elapsed;
use crate::config::{Budget, Config, Mode, RuleConfig};
use crate::journal::{ActionRecord, ActionResult};

pub use hold::Hold;
pub use window::{contains as window_contains, local as local_time};

/// The cooldown of a rule that does not set one.
pub const DEFAULT_COOLDOWN: Duration = Duration::from_secs(300);

/// What the policy decided for one rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Act, for real (`enforce`) or as a rehearsal (`dry-run`).
    Act {
        mode: Mode,
    },
    Hold(Hold),
}

impl Decision {
    /// `act`, `dry_run` or `hold` (the `decision` label).
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Act {
                mode: Mode::Enforce,
            } => "act",
            Decision::Act { .. } => "dry_run",
            Decision::Hold(_) => "hold",
        }
    }

    /// The `reason` label: the hold's code, or `ok`.
    pub fn reason(&self) -> &str {
        match self {
            Decision::Act { .. } => "ok",
            Decision::Hold(h) => h.code(),
        }
    }

    /// One line: "hold rollout_restart ns/deployment/api (rule api-restart): cooldown, 4m left".
    pub fn explain(&self, rule: &RuleConfig) -> String {
        let what = match rule.action.object() {
            Some(o) => format!("{} {o}", rule.action.name()),
            None => rule.action.name().to_owned(),
        };
        match self {
            Decision::Act {
                mode: Mode::Enforce,
            } => format!("act: {what} (rule {})", rule.id),
            Decision::Act { .. } => format!("dry-run: would {what} (rule {})", rule.id),
            Decision::Hold(h) => format!("hold {what} (rule {}): {h}", rule.id),
        }
    }
}

/// The trigger's current state, as the scores show it (one type: the scorer computes it,
/// the policy reads it).
pub use crate::score::Onset as TriggerState;

/// Everything a decision looks at. Gathered by the engine; nothing here does IO.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    /// The daemon's projected time ([`crate::clock`]): every duration is measured from it.
    pub now: jiff::Timestamp,
    /// The wall clock: only for time-of-day `windows`.
    pub wall: jiff::Timestamp,
    pub trigger: TriggerState,
    /// The rule was reached by escalation from a rule whose verification failed: its
    /// `for` duration is waived (its level and every other gate still apply).
    pub escalated: bool,
    pub is_leader: bool,
    /// Targets with a probe at P2 or worse, and targets watched (for the partition guard).
    pub failing: usize,
    pub total: usize,
    /// Failing probes among the rule's `depends_on`.
    pub failing_dependencies: Vec<String>,
    pub journal_problem: Option<&'a str>,
    pub actions: &'a [ActionRecord],
    /// The open incident the rule would act for.
    pub incident: Option<&'a str>,
    /// The action's own precondition, checked by its actuator beforehand.
    pub precondition: Result<(), Hold>,
}

/// The effective mode of a rule: the stricter of the global mode and its own.
pub fn effective_mode(config: &Config, rule: &RuleConfig) -> Mode {
    rule.mode
        .map_or(config.policy.mode, |m| m.min(config.policy.mode))
}

/// Decides for one rule.
pub fn decide(config: &Config, rule: &RuleConfig, f: &Facts<'_>) -> Decision {
    match gates(config, rule, f) {
        Ok(mode) => Decision::Act { mode },
        Err(hold) => Decision::Hold(hold),
    }
}

fn gates(config: &Config, rule: &RuleConfig, f: &Facts<'_>) -> Result<Mode, Hold> {
    let mode = effective_mode(config, rule);
    if mode == Mode::Off {
        return Err(Hold::ModeOff);
    }
    let t = &rule.trigger;
    let reason_matches = t.reasons.is_empty() || t.reasons.contains(&f.trigger.reason);
    if f.trigger.level < t.min_level || !reason_matches {
        return Err(Hold::NotTriggered {
            level: format!("{} {}", f.trigger.level, f.trigger.reason),
        });
    }
    if let Some(since) = f.trigger.unknown_since {
        return Err(Hold::TriggerUnknown {
            for_: elapsed(f.now, since),
        });
    }
    if let Some(at) = f.trigger.stale_evidence {
        return Err(Hold::StaleTrigger {
            age: elapsed(f.now, at),
        });
    }
    if let (Some(hold_for), false) = (t.for_, f.escalated) {
        let held = f
            .trigger
            .since
            .map_or(Duration::ZERO, |s| elapsed(f.now, s));
        if held < hold_for {
            return Err(Hold::TooEarly {
                left: hold_for - held,
            });
        }
    }
    leader_loss::check(config, rule, f)?;
    check_window(config, rule, f.wall)?;
    if let Some(object) = rule.action.object()
        && !config.policy.allow.is_empty()
        && !config
            .policy
            .allow
            .iter()
            .any(|p| crate::config::validate::allow_matches(p, &object))
    {
        return Err(Hold::NotAllowed { object });
    }
    if !f.is_leader {
        return Err(Hold::NotLeader);
    }
    if let Some(p) = f.journal_problem {
        return Err(Hold::JournalUnavailable {
            detail: p.to_owned(),
        });
    }
    if partition_suspected(config, f.failing, f.total) {
        return Err(Hold::PartitionSuspected {
            failing: f.failing,
            total: f.total,
        });
    }
    if let Some(dep) = f.failing_dependencies.first() {
        return Err(Hold::DependencyDown { probe: dep.clone() });
    }
    let mine: Vec<&ActionRecord> = f
        .actions
        .iter()
        .filter(|a| a.rule == rule.id && counted(a, mode))
        .collect();
    if mine.iter().any(|a| {
        a.result == ActionResult::Running
            || (a.result == ActionResult::Succeeded
                && a.verified.is_none()
                && rule.verify.is_some())
    }) {
        return Err(Hold::InFlight);
    }
    if let Some(incident) = f.incident
        && mine
            .iter()
            .any(|a| a.incident.as_deref() == Some(incident) && !worked(a))
    {
        return Err(Hold::AlreadyTried);
    }
    check_budgets(config, rule, f, mode)?;
    // A rule without a cooldown still waits between two actions: no tight loops.
    let cooldown = rule.cooldown.unwrap_or(DEFAULT_COOLDOWN);
    if let Some(last) = mine.iter().map(|a| a.started_at).max() {
        let since = elapsed(f.now, last);
        if since < cooldown {
            return Err(Hold::Cooldown {
                left: cooldown - since,
            });
        }
    }
    f.precondition.clone()?;
    Ok(mode)
}

/// Whether the partition guard suspects astreinte itself: at least `min_targets` targets
/// watched and at least `max_failing_ratio` of them failing at once.
pub fn partition_suspected(config: &Config, failing: usize, total: usize) -> bool {
    config.policy.partition_guard.as_ref().is_some_and(|g| {
        total >= g.min_targets && failing as f64 >= g.max_failing_ratio * total as f64
    })
}

/// Whether a past action counts in this mode: real ones always; rehearsals only in dry-run,
/// so that a rehearsal shows the budgets and cooldowns enforce would meet.
fn counted(a: &ActionRecord, mode: Mode) -> bool {
    a.counts() || mode == Mode::DryRun
}

/// An action that did its job (succeeded and verified, or nothing to verify).
fn worked(a: &ActionRecord) -> bool {
    a.result == ActionResult::Succeeded && a.verified != Some(false)
}

/// Windows are times of day: they read the wall clock (`wall`), not the projected time.
fn check_window(config: &Config, rule: &RuleConfig, wall: jiff::Timestamp) -> Result<(), Hold> {
    if rule.windows.is_empty() {
        return Ok(());
    }
    let tz = config
        .policy
        .timezone
        .as_deref()
        .and_then(|n| jiff::tz::TimeZone::get(n).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let (text, minute) = local_time(wall, &tz);
    if rule.windows.iter().any(|w| window_contains(w, minute)) {
        Ok(())
    } else {
        Err(Hold::OutsideWindow { local_time: text })
    }
}

fn check_budgets(
    config: &Config,
    rule: &RuleConfig,
    f: &Facts<'_>,
    mode: Mode,
) -> Result<(), Hold> {
    let within =
        |b: &Budget, a: &&ActionRecord| counted(a, mode) && elapsed(f.now, a.started_at) < b.per;
    let object = rule.action.object();
    type Applies<'r> = &'r dyn Fn(&ActionRecord) -> bool;
    let scopes: [(&str, Option<&Budget>, Applies<'_>); 3] = [
        ("rule", rule.budget.as_ref(), &|a| a.rule == rule.id),
        ("target", config.policy.target_budget.as_ref(), &|a| {
            Some(&a.target) == object.as_ref()
        }),
        ("global", config.policy.global_budget.as_ref(), &|a| {
            a.action != "page"
        }),
    ];
    for (scope, budget, applies) in scopes {
        let Some(b) = budget else { continue };
        let used = f
            .actions
            .iter()
            .filter(|a| applies(a))
            .filter(|a| within(b, a))
            .count();
        if used >= b.max as usize {
            return Err(Hold::BudgetExhausted {
                scope: scope.to_owned(),
                max: b.max,
                per: b.per,
            });
        }
    }
    Ok(())
}

/// Actions of a rule still allowed in its budget window (for `astreinte_remediation_budget_remaining`).
pub fn budget_remaining(
    rule: &RuleConfig,
    actions: &[ActionRecord],
    now: jiff::Timestamp,
    mode: Mode,
) -> Option<u32> {
    let b = rule.budget.as_ref()?;
    let used = actions
        .iter()
        .filter(|a| a.rule == rule.id && counted(a, mode))
        .filter(|a| elapsed(now, a.started_at) < b.per)
        .count();
    Some(
        b.max
            .saturating_sub(u32::try_from(used).unwrap_or(u32::MAX)),
    )
}

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod tests;
