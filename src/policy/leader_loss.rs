//! The failover gate that needs no IO: a `patroni_failover` waits until the trigger probes
//! have seen the leader lost for Patroni's `ttl` (Patroni elects a leader by itself within
//! it). Counted from the first result that said the leader was lost, not from when the
//! probe first failed for another reason. The actuator checks it again on a fresh look.

use std::time::Duration;

use crate::clock::elapsed;
use crate::config::{ActionSpec, Config, ProbeSpec, RuleConfig};

use super::{Facts, Hold};

/// `Err(patroni_handling_it)` while a failover rule's leader loss is younger than the
/// Patroni probe's `ttl`, or not seen at all. Other actions pass.
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
        None => Err(handling_it(format!(
            "the trigger probes do not see the leader lost ({} {}): a failover only replaces a lost leader",
            f.trigger.level, f.trigger.reason
        ))),
    }
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
