//! The IO side of remediation, run as tasks that are never cancelled halfway: re-probe just
//! before acting, check the action's precondition, act (or rehearse), then verify by
//! re-probing until healthy or the deadline. Each reports back to the engine on a channel.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::actuators::{ActionError, ActionOutcome, Actuators};
use crate::config::{Config, Mode, RuleConfig};
use crate::policy::Hold;
use crate::probes::Prober;

/// What a task reports.
#[derive(Debug)]
pub enum TaskResult {
    /// Nothing was done: the failure was gone, or a precondition held.
    Held {
        record: u64,
        rule: String,
        hold: Hold,
    },
    Done {
        record: u64,
        rule: String,
        result: Result<ActionOutcome, ActionError>,
        rehearsal: bool,
    },
    Verified {
        record: u64,
        rule: String,
        ok: bool,
        detail: String,
    },
    /// A reversible action was undone after its incident resolved.
    Undone {
        record: u64,
        rule: String,
        result: Result<ActionOutcome, ActionError>,
    },
}

/// One action to carry out.
pub struct Job {
    pub record: u64,
    pub rule: RuleConfig,
    pub mode: Mode,
    /// The probes whose failure triggered the rule, re-probed just before acting.
    pub trigger_probes: Vec<String>,
    /// Since when the trigger probes have seen the Patroni leader lost (the failover gate
    /// waits Patroni's `ttl` from it).
    pub leader_lost_since: Option<jiff::Timestamp>,
    pub config: Arc<Config>,
}

pub async fn act(job: Job, prober: Prober, actuators: Actuators, tx: mpsc::Sender<TaskResult>) {
    let Job {
        record,
        rule,
        mode,
        trigger_probes,
        leader_lost_since,
        config,
    } = job;
    let rule_id = rule.id.clone();
    if still_healthy(&config, &prober, &trigger_probes).await {
        let _ = tx
            .send(TaskResult::Held {
                record,
                rule: rule_id,
                hold: Hold::Recovered,
            })
            .await;
        return;
    }
    let leader_lost_for =
        leader_lost_since.map(|since| crate::clock::elapsed(prober.clock().now(), since));
    if let Err(hold) = actuators
        .check(&rule.action, &config, leader_lost_for)
        .await
    {
        let _ = tx
            .send(TaskResult::Held {
                record,
                rule: rule_id,
                hold,
            })
            .await;
        return;
    }
    let result = if mode == Mode::Enforce {
        actuators.run(&rule.action, &config, rule.deadline()).await
    } else {
        actuators.rehearse(&rule.action, rule.deadline()).await
    };
    let _ = tx
        .send(TaskResult::Done {
            record,
            rule: rule_id,
            result,
            rehearsal: mode != Mode::Enforce,
        })
        .await;
}

/// Whether every trigger probe is healthy right now (a fresh run of each).
async fn still_healthy(config: &Config, prober: &Prober, probes: &[String]) -> bool {
    if probes.is_empty() {
        return false;
    }
    for id in probes {
        let Some(p) = config.probe(id) else {
            return false;
        };
        if !prober.observe(config, p).await.outcome.is_healthy() {
            return false;
        }
    }
    true
}

/// Re-probes the rule's verify probe until it is healthy or `within` has passed.
pub async fn verify(
    record: u64,
    rule: RuleConfig,
    config: Arc<Config>,
    prober: Prober,
    tx: mpsc::Sender<TaskResult>,
) {
    let Some(v) = rule.verify.clone() else { return };
    let Some(probe) = config.probe(&v.probe).cloned() else {
        return;
    };
    let pause = config
        .unhealthy_interval(&probe)
        .unwrap_or(config.interval(&probe))
        .min(Duration::from_secs(10))
        .max(Duration::from_millis(200));
    let deadline = tokio::time::Instant::now() + v.within;
    let (ok, detail) = loop {
        let obs = prober.observe(&config, &probe).await;
        if obs.outcome.is_healthy() {
            break (true, format!("{} healthy again: {}", v.probe, obs.detail));
        }
        if tokio::time::Instant::now() + pause >= deadline {
            break (
                false,
                format!(
                    "{} still {} ({}) after {}",
                    v.probe,
                    obs.outcome.result_label(),
                    obs.outcome.reason(),
                    humantime::format_duration(v.within)
                ),
            );
        }
        tokio::time::sleep(pause).await;
    };
    let _ = tx
        .send(TaskResult::Verified {
            record,
            rule: rule.id,
            ok,
            detail,
        })
        .await;
}

/// Undoes a reversible action after its incident resolved.
pub async fn undo(
    record: u64,
    rule: RuleConfig,
    value: serde_json::Value,
    actuators: Actuators,
    tx: mpsc::Sender<TaskResult>,
) {
    let result = actuators.undo(&rule.action, &value, rule.deadline()).await;
    let _ = tx
        .send(TaskResult::Undone {
            record,
            rule: rule.id,
            result,
        })
        .await;
}
