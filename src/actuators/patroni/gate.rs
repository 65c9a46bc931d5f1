//! The preconditions of the Patroni actions: pure functions of a fresh [`PatroniView`] (and,
//! for a failover, how long the cluster has had no leader). Each refusal is a
//! [`Hold::Precondition`] with a bounded code and a one-line detail.
//!
//! | code | failover | reinitialize | when |
//! |---|---|---|---|
//! | `split_brain` | hold | hold | two or more members run as primary: never add a third |
//! | `unreadable_answer` | hold | hold | a member's `/patroni` or `/cluster` answer cannot be decoded: the view is incomplete |
//! | `dcs_unavailable` | hold | hold | some member's `/cluster` fails: Patroni can do nothing without its DCS |
//! | `paused` | hold | hold | maintenance mode: an operator is at work |
//! | `patroni_handling_it` | hold | | a leader runs (Patroni failed over by itself), or no leader for less than Patroni's `ttl` |
//! | `no_healthy_candidate` | hold | | no running replica within `max_lag_bytes`, not tagged `nofailover` |
//! | `no_healthy_leader` | | hold | no single running leader to clone from |
//! | `no_stuck_replica` | | hold | every replica streams on the leader's timeline (or is stopped) |
//!
//! A failover goes to the candidate with the lowest lag (ties: by name). A switchover is never
//! used: it moves a healthy leader, which is planned work, not a remedy.

use std::time::Duration;

use crate::policy::Hold;
use crate::probes::patroni::{Dcs, MemberView, PatroniView};

fn hold(code: &str, detail: impl Into<String>) -> Hold {
    Hold::Precondition {
        code: code.to_owned(),
        detail: detail.into(),
    }
}

fn names(members: &[&MemberView]) -> String {
    members
        .iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The gates both actions share: no split brain, the DCS answers, not paused.
fn cluster_gates(view: &PatroniView) -> Result<(), Hold> {
    let leaders = view.leaders();
    if leaders.len() >= 2 {
        return Err(hold(
            "split_brain",
            format!(
                "split brain: {} all run as primary; acting would make it worse, page a human",
                names(&leaders)
            ),
        ));
    }
    if let Some((member, failure)) = view.unreadable.first() {
        return Err(hold(
            "unreadable_answer",
            format!(
                "cannot read {member}'s answer ({}): not acting on a cluster it cannot see",
                failure.detail
            ),
        ));
    }
    match &view.dcs {
        Dcs::Answered => {}
        Dcs::Partial { members, failure } => {
            return Err(hold(
                "dcs_unavailable",
                format!(
                    "the DCS does not answer {} ({}): Patroni cannot act without it",
                    members.join(", "),
                    failure.detail
                ),
            ));
        }
        Dcs::Unreachable(failure) => {
            return Err(hold(
                "dcs_unavailable",
                format!(
                    "the DCS does not answer ({}): Patroni cannot act without it",
                    failure.detail
                ),
            ));
        }
    }
    if view.paused {
        return Err(hold(
            "paused",
            "the cluster is in maintenance mode (paused): an operator is at work",
        ));
    }
    Ok(())
}

/// The replica a failover would promote, or why none may be (every gate but the `ttl` one).
pub fn failover_target(view: &PatroniView) -> Result<&MemberView, Hold> {
    cluster_gates(view)?;
    if let Some(leader) = view.leader() {
        return Err(hold(
            "patroni_handling_it",
            format!("{} leads: Patroni failed over by itself", leader.name),
        ));
    }
    // A failover while the DCS still names a leader could demote a leader that only
    // astreinte cannot reach: Patroni expires the key of a dead one within its ttl.
    if let Some(named) = view.members.iter().find(|m| m.dcs_leader) {
        return Err(hold(
            "patroni_handling_it",
            format!(
                "the DCS still names {} leader: Patroni expires its key within its ttl and elects a new one",
                named.name
            ),
        ));
    }
    let mut candidates = view.candidates();
    candidates
        .sort_by(|a, b| (a.lag_bytes(), a.name.as_str()).cmp(&(b.lag_bytes(), b.name.as_str())));
    candidates.first().copied().ok_or_else(|| {
        hold(
            "no_healthy_candidate",
            format!(
                "no running replica within {} B of lag and without nofailover ({})",
                view.max_lag_bytes,
                view.summary()
            ),
        )
    })
}

/// Whether a failover may go ahead now: [`failover_target`], and Patroni has had its `ttl`
/// to elect a leader by itself (`no_leader_for`: how long the trigger has held; `None`:
/// unknown, which holds).
pub fn failover_allowed(
    view: &PatroniView,
    no_leader_for: Option<Duration>,
    ttl: Duration,
) -> Result<String, Hold> {
    let target = failover_target(view)?;
    match no_leader_for {
        Some(d) if d >= ttl => Ok(target.name.clone()),
        _ => Err(hold(
            "patroni_handling_it",
            format!(
                "no leader for {}, less than Patroni's ttl of {}: Patroni elects one by itself",
                no_leader_for.map_or_else(|| "an unknown time".to_owned(), secs),
                secs(ttl)
            ),
        )),
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs())
}

/// The replica to reinitialize: running (its Patroni answers and its postgres runs) yet not
/// replicating from the single healthy leader (missing from its `replication` list, or on an
/// older timeline). Never the leader.
pub fn reinitialize_target(view: &PatroniView) -> Result<&MemberView, Hold> {
    cluster_gates(view)?;
    let Some(leader) = view.leader().filter(|l| l.is_up()) else {
        return Err(hold(
            "no_healthy_leader",
            "no single running leader whose Patroni answers: nothing to clone from",
        ));
    };
    let mut stuck: Vec<&MemberView> = view
        .not_streaming()
        .into_iter()
        .filter(|m| m.is_up() && m.is_running() && m.name != leader.name)
        .collect();
    stuck.sort_by(|a, b| a.name.cmp(&b.name));
    stuck.first().copied().ok_or_else(|| {
        hold(
            "no_stuck_replica",
            format!(
                "no running replica is stuck (a stopped one is Patroni's to restart): {}",
                view.summary()
            ),
        )
    })
}

#[cfg(test)]
#[path = "gate_tests.rs"]
mod tests;
