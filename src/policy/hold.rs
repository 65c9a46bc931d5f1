//! Why a rule did not act: one named reason per gate, each a bounded code for metrics and
//! a sentence for logs and timelines.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A gate that held an action.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Hold {
    /// The rule (or the global mode) is `off`.
    ModeOff,
    /// The trigger's level is not reached.
    NotTriggered {
        level: String,
    },
    /// The trigger probes' latest results are Unknown: their level holds, but nothing acts
    /// on an unknown observation.
    TriggerUnknown {
        #[serde(rename = "for")]
        for_: Duration,
    },
    /// The trigger's level is held (hysteresis) but its newest supporting result is older
    /// than the probe's window: nothing acts on old results.
    StaleTrigger {
        age: Duration,
    },
    /// The level is reached but not for long enough yet.
    TooEarly {
        left: Duration,
    },
    OutsideWindow {
        local_time: String,
    },
    BudgetExhausted {
        scope: String,
        max: u32,
        per: Duration,
    },
    Cooldown {
        left: Duration,
    },
    NotLeader,
    /// Too many targets fail at once: astreinte suspects itself.
    PartitionSuspected {
        failing: usize,
        total: usize,
    },
    /// A probe this rule's target depends on is failing.
    DependencyDown {
        probe: String,
    },
    /// The object is not in `policy.allow`.
    NotAllowed {
        object: String,
    },
    /// The action's own precondition (Patroni state, replicas bound…).
    Precondition {
        code: String,
        detail: String,
    },
    /// The journal cannot be written or read back: no action without a journal entry.
    JournalUnavailable {
        detail: String,
    },
    /// An action of this rule is still running or being verified.
    InFlight,
    /// This rule already acted in this incident and did not fix it; escalation takes over.
    AlreadyTried,
    /// The failure was gone when re-probed just before acting.
    Recovered,
    /// The action needs a system astreinte cannot reach (no Kubernetes cluster…).
    Unavailable {
        detail: String,
    },
}

impl Hold {
    /// The bounded code used as the `reason` label.
    pub fn code(&self) -> &str {
        match self {
            Hold::ModeOff => "mode_off",
            Hold::NotTriggered { .. } => "not_triggered",
            Hold::TriggerUnknown { .. } => "trigger_unknown",
            Hold::StaleTrigger { .. } => "stale_trigger",
            Hold::TooEarly { .. } => "too_early",
            Hold::OutsideWindow { .. } => "outside_window",
            Hold::BudgetExhausted { .. } => "budget_exhausted",
            Hold::Cooldown { .. } => "cooldown",
            Hold::NotLeader => "not_leader",
            Hold::PartitionSuspected { .. } => "partition_suspected",
            Hold::DependencyDown { .. } => "dependency_down",
            Hold::NotAllowed { .. } => "not_allowed",
            Hold::Precondition { code, .. } => code,
            Hold::JournalUnavailable { .. } => "journal_unavailable",
            Hold::InFlight => "in_flight",
            Hold::AlreadyTried => "already_tried",
            Hold::Recovered => "recovered",
            Hold::Unavailable { .. } => "unavailable",
        }
    }
}

fn short(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::ModeOff => write!(f, "mode is off"),
            Hold::NotTriggered { level } => write!(f, "not triggered (level {level})"),
            Hold::TriggerUnknown { for_ } => write!(
                f,
                "the trigger probe's latest results are unknown (for {}): no action on an unknown observation",
                short(*for_)
            ),
            Hold::StaleTrigger { age } => write!(
                f,
                "the trigger's newest failing result is {} old, outside its window: no action on old results",
                short(*age)
            ),
            Hold::TooEarly { left } => {
                write!(f, "level not held long enough, {} left", short(*left))
            }
            Hold::OutsideWindow { local_time } => {
                write!(f, "outside its time windows (now {local_time})")
            }
            Hold::BudgetExhausted { scope, max, per } => {
                write!(f, "{scope} budget exhausted ({max} per {})", short(*per))
            }
            Hold::Cooldown { left } => write!(f, "cooldown, {} left", short(*left)),
            Hold::NotLeader => write!(f, "this replica is not the leader"),
            Hold::PartitionSuspected { failing, total } => write!(
                f,
                "{failing} of {total} targets failing at once: astreinte suspects itself (network, DNS, its node)"
            ),
            Hold::DependencyDown { probe } => write!(f, "dependency {probe} is failing"),
            Hold::NotAllowed { object } => write!(f, "{object} is not in policy.allow"),
            Hold::Precondition { code, detail } => write!(f, "{code}: {detail}"),
            Hold::JournalUnavailable { detail } => write!(f, "journal unavailable: {detail}"),
            Hold::InFlight => write!(
                f,
                "a previous action of this rule is still running or being verified"
            ),
            Hold::AlreadyTried => {
                write!(f, "already tried in this incident; escalation takes over")
            }
            Hold::Recovered => write!(f, "the failure was gone when re-probed"),
            Hold::Unavailable { detail } => write!(f, "{detail}"),
        }
    }
}
