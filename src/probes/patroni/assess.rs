//! The verdict on one [`PatroniView`]: a pure function from the view to an outcome, a detail
//! and the gauges.
//!
//! When several things are wrong, the worst one names the outcome:
//!
//! | order | reason | outcome | when |
//! |---|---|---|---|
//! | 1 | `split_brain` | Failed | two or more members run as primary |
//! | 2 | `unreadable_answer` | Unknown | a member answered `/patroni` or `/cluster` with something that cannot be decoded (not JSON, wrong types, too large, empty) or a body that stalled or was cut off after the headers |
//! | 3 | `all_members_down` | Failed | no member's Patroni answers |
//! | 4 | `dcs_unreachable` | Failed | members answer, but no `/cluster` does; or some `/cluster` fails and no member leads |
//! | 5 | `leader_unreachable` | Failed | no member runs as primary, and the one the DCS still names leader does not answer (its key has not expired yet: Patroni's ttl runs) |
//! | 5 | `no_leader` | Failed | no member runs as primary, and the DCS answers |
//! | 6 | `member_down` | Degraded (members down) | a member's Patroni does not answer |
//! | 7 | `member_dcs_unreachable` | Degraded (members) | a leader runs, but some member's `/cluster` fails |
//! | 8 | `replica_not_streaming` | Degraded (replicas) | stopped, absent from the leader's `replication`, or on an old timeline |
//! | 9 | `replica_lag` | Degraded (lag bytes) | a replica is further behind than `max_lag_bytes` |
//! | 10 | `paused` | Degraded (1) | maintenance mode |
//! | 11 | `failover_not_ready` | Degraded (0) | no automatic failover could succeed now |
//!
//! Three choices differ from a naive reading:
//! - `dcs_unreachable` outranks `no_leader`: without its DCS, Patroni demotes the leader on
//!   purpose (within `retry_timeout`), so "no leader" is the effect, the lost DCS the cause,
//!   and a failover (the remedy for `no_leader`) cannot work without the DCS anyway. Since
//!   replicas serve `/cluster` from a cache for a few seconds after etcd stops answering
//!   (see [`Dcs`]), one failing `/cluster` together with no leader is enough.
//! - `unreadable_answer` is Unknown and outranks everything but a split brain (two members
//!   that clearly say they are primary): a member that answers garbage is neither up nor
//!   down, and a leader whose answer cannot be read must not look like "no leader" (which a
//!   failover rule acts on). The fault matrix: garbage JSON, wrong types, a huge body
//!   → `Unknown`, no action.
//! - "Answered but unreadable" includes an answer whose status line and headers came and whose
//!   body then stalled until the deadline (`body_stalled`) or was cut off by a closed
//!   connection (`body_cut_short`): such a member is alive, so it is not down (that is kept
//!   for a member that sends nothing at all before the deadline, e.g. a SIGSTOPped Patroni
//!   whose kernel still accepts). A leader stalled mid-body is therefore `Unknown`, never
//!   `no_leader`: it may well be fine, and `no_leader` is what a failover rule acts on.
//! - One unreadable *replica* also makes the whole probe `Unknown`, even when the leader
//!   answers well and could be judged. That member's role is unknown (it could be a second
//!   primary: a split brain is exactly when it and the DCS disagree), it may be the only
//!   failover candidate (so readiness is unknown), and calling it down or lagging would be
//!   false. The detail still shows everything else (`pgN unreadable (…)`, the leader, lag
//!   from `/cluster`), its `member_up` gauge is left out rather than 0, and every Patroni
//!   action holds. The next run, with a whole answer, judges normally.
//! - `all_members_down` is Failed, not Unknown: the probe reached the network and every
//!   member refused or stayed silent. Unknown would hide a whole-cluster outage; the policy's
//!   partition guard is what protects against astreinte itself being cut off.

use super::view::{Dcs, PatroniView};
use crate::metrics::GaugeName;
use crate::probes::{Finding, Measurement, Outcome};

/// The outcome, detail and gauges of one view.
pub fn assess(view: &PatroniView) -> Finding {
    let (outcome, headline) = verdict(view);
    let mut finding = Finding::new(outcome, format!("{headline}; {}", view.summary()));
    finding.measurements = gauges(view);
    finding
}

fn names<'a>(members: impl IntoIterator<Item = &'a super::view::MemberView>) -> String {
    members
        .into_iter()
        .map(|m| m.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn verdict(view: &PatroniView) -> (Outcome, String) {
    let leaders = view.leaders();
    if leaders.len() >= 2 {
        return (
            Outcome::failed("split_brain"),
            format!("split brain: {} all run as primary", names(leaders)),
        );
    }
    if !view.unreadable.is_empty() {
        let which: Vec<String> = view
            .unreadable
            .iter()
            .map(|(member, f)| format!("{member} ({})", f.detail))
            .collect();
        return (
            Outcome::unknown("unreadable_answer"),
            format!("cannot read the answer of {}", which.join(", ")),
        );
    }
    if view.members.iter().all(|m| !m.is_up()) {
        return (
            Outcome::failed("all_members_down"),
            "no member's Patroni answers".to_owned(),
        );
    }
    match &view.dcs {
        Dcs::Unreachable(_) => {
            return (
                Outcome::failed("dcs_unreachable"),
                "members answer but the DCS does not (GET /cluster fails everywhere)".to_owned(),
            );
        }
        // A leader that loses its DCS demotes itself: no leader is the effect, not the cause.
        Dcs::Partial { members, .. } if leaders.is_empty() => {
            return (
                Outcome::failed("dcs_unreachable"),
                format!(
                    "no leader while the DCS does not answer {}",
                    members.join(", ")
                ),
            );
        }
        _ => {}
    }
    if let Some(lost) = view.unreachable_leader() {
        return (
            Outcome::failed("leader_unreachable"),
            format!(
                "{} holds the leader key but its REST API does not answer ({}): Patroni elects a new leader once the key expires",
                lost.name,
                lost.down.as_ref().map_or("down", |f| f.detail.as_str())
            ),
        );
    }
    let Some(leader) = view.leader() else {
        return (
            Outcome::failed("no_leader"),
            "no member runs as primary".to_owned(),
        );
    };
    let down = view.members_down();
    if !down.is_empty() {
        return (
            Outcome::degraded(down.len() as f64, "member_down"),
            format!("{} does not answer", names(down)),
        );
    }
    if let Dcs::Partial { members, .. } = &view.dcs {
        return (
            Outcome::degraded(members.len() as f64, "member_dcs_unreachable"),
            format!("the DCS does not answer {}", members.join(", ")),
        );
    }
    let not_streaming = view.not_streaming();
    if !not_streaming.is_empty() {
        return (
            Outcome::degraded(not_streaming.len() as f64, "replica_not_streaming"),
            format!(
                "{} does not stream from {}",
                names(not_streaming),
                leader.name
            ),
        );
    }
    let lagging = view.lagging();
    if let Some(worst) = lagging.iter().map(|(_, lag)| *lag).max() {
        return (
            Outcome::degraded(worst as f64, "replica_lag"),
            format!(
                "{} behind by more than {} bytes (worst {worst})",
                names(lagging.iter().map(|(m, _)| *m)),
                view.max_lag_bytes
            ),
        );
    }
    if view.paused {
        return (
            Outcome::degraded(1.0, "paused"),
            "the cluster is paused: Patroni will not fail over".to_owned(),
        );
    }
    if !view.failover_ready() {
        return (
            Outcome::degraded(0.0, "failover_not_ready"),
            format!("leader {}, but no replica could take over now", leader.name),
        );
    }
    (Outcome::Healthy, format!("leader {}", leader.name))
}

fn gauges(view: &PatroniView) -> Vec<Measurement> {
    let cluster = view.cluster.as_str();
    let mut out = vec![
        Measurement::new(
            GaugeName::PatroniLeaders,
            &[("cluster", cluster)],
            view.leaders().len() as f64,
        ),
        Measurement::new(
            GaugeName::PatroniFailoverReady,
            &[("cluster", cluster)],
            f64::from(u8::from(view.failover_ready())),
        ),
    ];
    for m in &view.members {
        let labels = [("cluster", cluster), ("member", m.name.as_str())];
        // A member whose answer began but cannot be read is neither up nor down: no sample.
        if !m.is_unreadable() {
            out.push(Measurement::new(
                GaugeName::PatroniMemberUp,
                &labels,
                f64::from(u8::from(m.is_up())),
            ));
        }
        if let Some(t) = m.timeline {
            out.push(Measurement::new(
                GaugeName::PatroniTimeline,
                &labels,
                t as f64,
            ));
        }
        let lag = if m.is_leader() && m.is_up() {
            Some(0)
        } else {
            m.lag_bytes()
        };
        if let Some(lag) = lag {
            out.push(Measurement::new(
                GaugeName::PatroniLagBytes,
                &labels,
                lag as f64,
            ));
        }
    }
    out
}

#[cfg(test)]
#[path = "assess_tests.rs"]
mod tests;
