//! The failover gate that needs no IO: a `patroni_failover` waits until the trigger probes
//! have seen the leader lost for Patroni's `ttl` (Patroni elects a leader by itself within
//! it). Counted from the first result that said the leader was lost, not from when the
//! probe first failed for another reason. The actuator checks it again on a fresh look.

use std::time::Duration;

use crate::clock::elapsed;
use crate::config::{ActionSpec, Config, ProbeSpec, RuleConfig};

use super::{Facts, Hold};

/// `Err(patroni_handling_it)` while a failover rule's leader loss is younger than the
/// Patroni probe's `ttl`, or when it triggered on a leader loss the latest result no longer
/// shows. Other actions pass.
pub fn check(config: &Config, rule: &RuleConfig, f: &Facts<'_>) -> Result<(), Hold> {
    let ActionSpec::PatroniFailover { probe } = &rule.action else {
        return Ok(());
    };
    let ttl = match config.probe(probe).map(|p| &p.spec) {
        Some(ProbeSpec::Patroni(spec)) => spec.ttl,
        // Validation rejects it; if it ever happens, nothing acts on it.
        _ => {
            return Err(Hold::Unavailable {
                detail: format!("probe {probe} is not a patroni probe"),
            });
        }
    };
    let lost_for = f.trigger.leader_lost_since.map(|s| elapsed(f.now, s));
    match lost_for {
        Some(d) if d >= ttl => Ok(()),
        Some(d) => Err(handling_it(format!(
            "no leader for {}, less than Patroni's ttl of {}: Patroni elects one by itself",
            secs(d),
            secs(ttl)
        ))),
        // Triggered on a leader loss whose run has just ended (the level is held by
        // hysteresis, the latest result sees a leader): nothing to replace.
        None if is_leader_loss(&f.trigger.reason) => Err(handling_it(format!(
            "the latest result no longer sees the leader lost ({} {}): a failover only replaces a lost leader",
            f.trigger.level, f.trigger.reason
        ))),
        // Another reason (a lost DCS, a split brain): the actuator's gates judge it on a
        // fresh view and hold with their own reason (`dcs_unavailable`, `split_brain`…).
        None => Ok(()),
    }
}

fn is_leader_loss(reason: &str) -> bool {
    matches!(reason, "no_leader" | "leader_unreachable")
}

fn handling_it(detail: String) -> Hold {
    Hold::Precondition {
        code: "patroni_handling_it".into(),
        detail,
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}
