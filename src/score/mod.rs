//! Scoring (pure: no IO, the time comes with each observation): an observation becomes a raw
//! level (seed defaults, per-probe overrides), and flap damping turns raw levels into the
//! probe's level: entered after N consecutive results or X of the last Y, left with
//! hysteresis; frequent intermittent errors are a P2; `Unknown` neither raises nor clears.

mod baseline;
mod code;
mod damping;
mod defaults;

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Damping, ProbeConfig, ProbeSpec};
use crate::level::Level;
use crate::probes::{Observation, Outcome, Reason};

pub use baseline::Baseline;
pub use code::Code;
pub use damping::{Sample, damped};
pub use defaults::{NO_LEADER_P1_AFTER, degradation_level, level_of};

/// A probe's level changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub probe: String,
    /// The incident key (group or target).
    pub key: String,
    pub from: Level,
    pub to: Level,
    pub reason: String,
    pub detail: String,
    pub at: jiff::Timestamp,
}

/// A rule's trigger as the scores show it (see [`Scorer::trigger_state`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Onset {
    pub level: Level,
    pub reason: String,
    /// Since when the trigger has matched: the later of the moment the probe reached the
    /// rule's `min_level` and the moment its current reason began. `None`: no match.
    pub since: Option<jiff::Timestamp>,
    /// Since when the trigger probes have said the Patroni leader is lost, if they do.
    pub leader_lost_since: Option<jiff::Timestamp>,
    /// The trigger matches only on probes whose latest result is Unknown: since when. Their
    /// level holds (Unknown neither raises nor clears) but nothing acts on it.
    pub unknown_since: Option<jiff::Timestamp>,
    /// The trigger matches only on a level whose newest supporting result is older than the
    /// probe's window (hysteresis keeps it after a pause): that result's time.
    pub stale_evidence: Option<jiff::Timestamp>,
}

impl ProbeScore {
    /// The newest raw result at `min` or worse with one of `reasons` (any when empty).
    fn evidence(&self, min: Level, reasons: &[String]) -> Option<i64> {
        self.history
            .iter()
            .rev()
            .find(|s| {
                s.level >= min
                    && (reasons.is_empty() || reasons.iter().any(|r| *r == *s.code.reason()))
            })
            .map(|s| s.at_ms)
    }

    /// Whether the newest supporting result is inside the window, measured from the newest.
    fn fresh(&self, evidence: Option<i64>) -> bool {
        let newest = self.history.back().map_or(i64::MIN, |s| s.at_ms);
        evidence.is_some_and(|at| at > newest.saturating_sub(self.window_ms))
    }
}

/// The scoring state of one probe.
#[derive(Debug, Clone)]
pub struct ProbeScore {
    /// Raw levels, their reasons and times, newest last (Unknown results are not kept).
    history: VecDeque<Sample>,
    pub level: Level,
    pub reason: Reason,
    pub since: jiff::Timestamp,
    baseline: Baseline,
    /// When the current run of `no_leader` results started.
    no_leader_since: Option<jiff::Timestamp>,
    /// When the current run of results that say the leader is lost (`no_leader`,
    /// `leader_unreachable`) started: the moment Patroni's `ttl` counts from.
    pub leader_lost_since: Option<jiff::Timestamp>,
    /// Since when the probe's results have been Unknown (`None`: the latest is known).
    pub unknown_since: Option<jiff::Timestamp>,
    /// How far back a result still counts as evidence for acting: the time the damping's
    /// entry window (`enter_after`, `x_of_y`) takes at the probe's interval.
    window_ms: i64,
    /// Since when the damped reason has been the current one (a change of reason restarts
    /// it; a change of level with the same reason does not).
    pub reason_since: jiff::Timestamp,
    /// For each level up to the current one: since when the level has been at least that.
    pub at_least: BTreeMap<Level, jiff::Timestamp>,
}

impl ProbeScore {
    fn new(at: jiff::Timestamp) -> Self {
        ProbeScore {
            history: VecDeque::new(),
            level: Level::Ok,
            reason: Reason::Borrowed("ok"),
            since: at,
            baseline: Baseline::default(),
            no_leader_since: None,
            leader_lost_since: None,
            unknown_since: None,
            window_ms: 0,
            reason_since: at,
            at_least: BTreeMap::new(),
        }
    }
}

/// Scores of every probe, keyed by probe id.
#[derive(Debug, Default, Clone)]
pub struct Scorer {
    probes: BTreeMap<String, ProbeScore>,
}

impl Scorer {
    pub fn get(&self, probe: &str) -> Option<&ProbeScore> {
        self.probes.get(probe)
    }

    /// Forgets probes that are no longer configured (or disabled).
    pub fn retain(&mut self, config: &Config) {
        self.probes
            .retain(|id, _| config.probe(id).is_some_and(|p| p.enabled));
    }

    /// The level of an incident key: the worst level of the probes that share it.
    pub fn key_level(&self, probes_of_key: &[String]) -> (Level, String) {
        probes_of_key
            .iter()
            .filter_map(|id| self.probes.get(id))
            .map(|s| (s.level, &s.reason))
            .max_by_key(|(l, _)| *l)
            .map_or((Level::Ok, "ok".into()), |(l, r)| (l, r.to_string()))
    }

    /// The state of a rule's trigger over `probe_ids`: the worst of the probes that match it
    /// (level at least `min`, reason among `reasons`, any when empty) and since when that
    /// match has held (see [`Onset`]); without a match, the worst level and no onset.
    pub fn trigger_state(&self, probe_ids: &[String], min: Level, reasons: &[String]) -> Onset {
        let scores = || probe_ids.iter().filter_map(|id| self.probes.get(id));
        let leader_lost_since = scores().filter_map(|s| s.leader_lost_since).min();
        let matching: Vec<&ProbeScore> = scores()
            .filter(|s| {
                s.level >= min && (reasons.is_empty() || reasons.iter().any(|r| *r == *s.reason))
            })
            .collect();
        let (known, unknown): (Vec<&ProbeScore>, Vec<&ProbeScore>) =
            matching.iter().partition(|s| s.unknown_since.is_none());
        let (fresh, stale): (Vec<&ProbeScore>, Vec<&ProbeScore>) = known
            .iter()
            .partition(|s| s.fresh(s.evidence(min, reasons)));
        let since = fresh
            .iter()
            .filter_map(|s| Some(s.at_least.get(&min).copied()?.max(s.reason_since)))
            .min();
        let worst = fresh
            .iter()
            .chain(&unknown)
            .chain(&stale)
            .max_by_key(|s| s.level);
        let Some(worst) = worst else {
            let (level, reason) = self.key_level(probe_ids);
            return Onset {
                level,
                reason,
                since: None,
                leader_lost_since,
                unknown_since: None,
                stale_evidence: None,
            };
        };
        let none_fresh = fresh.is_empty();
        Onset {
            level: worst.level,
            reason: worst.reason.to_string(),
            since,
            leader_lost_since,
            unknown_since: none_fresh
                .then(|| unknown.iter().filter_map(|s| s.unknown_since).min())
                .flatten(),
            stale_evidence: (none_fresh && unknown.is_empty())
                .then(|| {
                    stale
                        .iter()
                        .filter_map(|s| s.evidence(min, reasons))
                        .max()
                        .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok())
                })
                .flatten(),
        }
    }

    /// How many targets (incident keys: a probe's group or target) have a probe at `min`
    /// or worse, and how many targets are scored. Several probes of one crashed node are one
    /// failing target, not several (the partition guard counts targets).
    pub fn failing_targets(&self, config: &Config, min: Level) -> (usize, usize) {
        let mut targets: BTreeMap<&str, bool> = BTreeMap::new();
        for (id, s) in &self.probes {
            let key = config.probe(id).map_or(id.as_str(), |p| p.incident_key());
            *targets.entry(key).or_default() |= s.level >= min;
        }
        let failing = targets.values().filter(|f| **f).count();
        (failing, targets.len())
    }

    /// Scores one observation; returns the change of the probe's level, if any. `interval`:
    /// the probe's interval, which bounds the time a window of N results spans.
    pub fn step(
        &mut self,
        probe: &ProbeConfig,
        damping: &Damping,
        interval: Duration,
        obs: &Observation,
    ) -> Option<Change> {
        // Not `entry(probe.id.clone())`: that would copy the id on every observation.
        if !self.probes.contains_key(&probe.id) {
            self.probes
                .insert(probe.id.clone(), ProbeScore::new(obs.at));
        }
        let state = self.probes.get_mut(&probe.id)?;
        let Some((raw, reason)) = raw_level(state, probe, obs) else {
            state.unknown_since.get_or_insert(obs.at);
            return None;
        };
        state.unknown_since = None;
        state.window_ms = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::from(damping.enter_after.max(damping.x_of_y[1]).max(1)));
        let keep = damping.x_of_y[1]
            .max(damping.error_window)
            .max(damping.enter_after)
            .max(damping.leave_after) as usize;
        // Sized once, exactly (kept for every probe; growth by doubling wastes up to half).
        if state.history.capacity() == 0 {
            state.history.reserve_exact(keep + 1);
        }
        state.history.push_back(Sample::new(raw, &reason, obs.at));
        while state.history.len() > keep {
            state.history.pop_front();
        }
        let (level, reason) = damped(state.level, &state.history, damping, interval);
        if level == state.level {
            if level != Level::Ok {
                if *reason != *state.reason {
                    state.reason_since = obs.at;
                }
                state.reason = reason;
            }
            return None;
        }
        let change = Change {
            probe: probe.id.clone(),
            key: probe.incident_key().to_owned(),
            from: state.level,
            to: level,
            reason: reason.to_string(),
            detail: obs.detail.clone(),
            at: obs.at,
        };
        state.at_least.retain(|l, _| *l <= level);
        for l in [Level::P4, Level::P3, Level::P2, Level::P1] {
            if l <= level {
                state.at_least.entry(l).or_insert(obs.at);
            }
        }
        if *reason != *state.reason {
            state.reason_since = obs.at;
        }
        state.level = level;
        state.reason = reason;
        state.since = obs.at;
        Some(change)
    }
}

/// The raw level of one observation, after latency smoothing and time-based escalation.
fn raw_level(
    state: &mut ProbeScore,
    probe: &ProbeConfig,
    obs: &Observation,
) -> Option<(Level, Reason)> {
    let mut outcome = obs.outcome.clone();
    let mut degradation = 0.0;
    if let ProbeSpec::Http(http) = &probe.spec {
        let sample = match &outcome {
            Outcome::Healthy if http.slo_latency.is_none() => {
                let over = state
                    .baseline
                    .over_baseline(obs.latency.as_secs_f64() * 1000.0);
                if over > 0.0 {
                    outcome = Outcome::degraded(over, "slow_vs_baseline");
                }
                over
            }
            Outcome::Degraded { value, reason } if reason.starts_with("slow") => *value,
            _ => 0.0,
        };
        degradation = state.baseline.smooth(sample);
    }
    let mut level = level_of(
        probe.spec.kind().as_str(),
        &outcome,
        degradation,
        &probe.levels,
    )?;
    let reason = outcome.reason_code();
    if matches!(&*reason, "no_leader" | "leader_unreachable") {
        state.leader_lost_since.get_or_insert(obs.at);
    } else {
        state.leader_lost_since = None;
    }
    if reason == "no_leader" {
        let since = *state.no_leader_since.get_or_insert(obs.at);
        let lasted = crate::clock::elapsed(obs.at, since);
        if lasted >= NO_LEADER_P1_AFTER && !probe.levels.contains_key("no_leader") {
            level = Level::P1;
        }
    } else {
        state.no_leader_since = None;
    }
    Some((level, reason))
}

#[cfg(test)]
mod tests;
