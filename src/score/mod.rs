//! Scoring (pure: no IO, the time comes with each observation): an observation becomes a raw
//! level (seed defaults, per-probe overrides), and flap damping turns raw levels into the
//! probe's level: entered after N consecutive results or X of the last Y, left with
//! hysteresis; frequent intermittent errors are a P2; `Unknown` neither raises nor clears.

mod baseline;
mod code;
mod defaults;

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::config::{Config, Damping, ProbeConfig, ProbeSpec};
use crate::level::Level;
use crate::probes::{Observation, Outcome, Reason};

pub use baseline::Baseline;
pub use code::Code;
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

/// The scoring state of one probe.
#[derive(Debug, Clone)]
pub struct ProbeScore {
    /// Raw levels and their reasons, newest last (Unknown results are not kept).
    history: VecDeque<(Level, Code)>,
    pub level: Level,
    pub reason: Reason,
    pub since: jiff::Timestamp,
    baseline: Baseline,
    /// When the current run of `no_leader` results started.
    no_leader_since: Option<jiff::Timestamp>,
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

    /// The worst level among `probe_ids`, its reason, and since when they have been at least
    /// `min` (the earliest of the probes at that level).
    pub fn trigger_state(
        &self,
        probe_ids: &[String],
        min: Level,
    ) -> (Level, String, Option<jiff::Timestamp>) {
        let (level, reason) = self.key_level(probe_ids);
        let since = probe_ids
            .iter()
            .filter_map(|id| self.probes.get(id))
            .filter_map(|s| s.at_least.get(&min).copied())
            .min();
        (level, reason, since)
    }

    /// How many probes are at `min` or worse, and how many are scored.
    pub fn failing(&self, min: Level) -> (usize, usize) {
        let failing = self.probes.values().filter(|s| s.level >= min).count();
        (failing, self.probes.len())
    }

    /// Scores one observation; returns the change of the probe's level, if any.
    pub fn step(
        &mut self,
        probe: &ProbeConfig,
        damping: &Damping,
        obs: &Observation,
    ) -> Option<Change> {
        // Not `entry(probe.id.clone())`: that would copy the id on every observation.
        if !self.probes.contains_key(&probe.id) {
            self.probes
                .insert(probe.id.clone(), ProbeScore::new(obs.at));
        }
        let state = self.probes.get_mut(&probe.id)?;
        let (raw, reason) = raw_level(state, probe, obs)?;
        let keep = damping.x_of_y[1]
            .max(damping.error_window)
            .max(damping.enter_after)
            .max(damping.leave_after) as usize;
        // Sized once, exactly (kept for every probe; growth by doubling wastes up to half).
        if state.history.capacity() == 0 {
            state.history.reserve_exact(keep + 1);
        }
        state.history.push_back((raw, Code::of(&reason)));
        while state.history.len() > keep {
            state.history.pop_front();
        }
        let (level, reason) = damped(state.level, &state.history, damping);
        if level == state.level {
            if level != Level::Ok {
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

/// The damped level from the raw history (newest last) and the current level.
pub fn damped(current: Level, history: &VecDeque<(Level, Code)>, d: &Damping) -> (Level, Reason) {
    let n = history.len();
    let last = |k: usize| history.iter().skip(n.saturating_sub(k)).map(|(l, _)| *l);
    let enter = d.enter_after.max(1) as usize;
    let consecutive = if n >= enter {
        last(enter).min().unwrap_or(Level::Ok)
    } else {
        Level::Ok
    };
    let [x, y] = d.x_of_y.map(|v| v.max(1) as usize);
    let x_of_y = {
        let mut recent: Vec<Level> = last(y).collect();
        recent.sort_by(|a, b| b.cmp(a));
        recent.get(x - 1).copied().unwrap_or(Level::Ok)
    };
    let mut target = consecutive.max(x_of_y);
    let window = d.error_window.max(1) as usize;
    let mut intermittent = false;
    if n >= window && target < Level::P2 {
        let recent: Vec<bool> = last(window).map(|l| l >= Level::P2).collect();
        let errors = recent.iter().filter(|e| **e).count();
        // Intermittent means errors come and go: at least two separate runs of them. One
        // solid outage that has just ended is not "frequent intermittent errors".
        let runs = recent.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(recent[0]);
        if runs >= 2 && errors as f64 / window as f64 >= d.error_ratio {
            target = Level::P2;
            intermittent = true;
        }
    }
    let leave = d.leave_after.max(1) as usize;
    // Rising takes effect at once; falling only after `leave_after` results below (hysteresis).
    let falls = n >= leave && last(leave).all(|l| l < current);
    let new = if target >= current || falls {
        target
    } else {
        current
    };
    let reason = if new == Level::Ok {
        Reason::Borrowed("ok")
    } else if intermittent && new == Level::P2 {
        Reason::Borrowed("intermittent_errors")
    } else {
        history
            .iter()
            .rev()
            .find(|(l, _)| *l >= new)
            .map(|(_, r)| r.reason())
            .unwrap_or_default()
    };
    (new, reason)
}

#[cfg(test)]
mod tests;
