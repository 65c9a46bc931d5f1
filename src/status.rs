//! What the daemon shows of itself: the last result and level of every probe, and the
//! incidents, as `/status`, `/incidents` and `astreinte check` read them. The engine writes,
//! the HTTP handlers read.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::incident::Incidents;
use crate::level::Level;
use crate::probes::{Observation, Outcome, Reason};
use crate::remediation::DecisionEntry;

/// One probe's latest result. Held for every probe, so the id and target share the
/// observation's `Arc<str>` and the reason codes are (usually static) `Reason`s.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    pub probe: Arc<str>,
    pub kind: &'static str,
    pub target: Arc<str>,
    pub outcome: &'static str,
    pub reason: Reason,
    /// The measured figure behind a degraded outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub detail: String,
    pub latency_ms: f64,
    pub at: jiff::Timestamp,
    /// The damped level (after flap damping), and its reason.
    pub level: Level,
    pub level_reason: Reason,
}

impl From<&Observation> for ProbeStatus {
    fn from(o: &Observation) -> Self {
        ProbeStatus {
            probe: o.probe.clone(),
            kind: o.kind.as_str(),
            target: o.target.clone(),
            outcome: o.outcome.result_label(),
            reason: o.outcome.reason_code(),
            value: match o.outcome {
                Outcome::Degraded { value, .. } => Some(value),
                _ => None,
            },
            detail: o.detail.clone(),
            latency_ms: o.latency.as_secs_f64() * 1000.0,
            at: o.at,
            level: Level::Ok,
            level_reason: Reason::Borrowed("ok"),
        }
    }
}

impl ProbeStatus {
    /// Takes the newer result `o` (of the same probe), keeping the buffers it already has.
    fn update(&mut self, o: &Observation, level: Level, level_reason: &Reason) {
        if *self.target != *o.target {
            self.target = o.target.clone();
        }
        self.kind = o.kind.as_str();
        self.outcome = o.outcome.result_label();
        self.reason = o.outcome.reason_code();
        self.value = match o.outcome {
            Outcome::Degraded { value, .. } => Some(value),
            _ => None,
        };
        self.detail.clone_from(&o.detail);
        self.latency_ms = o.latency.as_secs_f64() * 1000.0;
        self.at = o.at;
        self.level = level;
        self.level_reason = level_reason.clone();
    }
}

/// Latest status per probe id, and the incidents.
#[derive(Default)]
pub struct StatusBoard {
    probes: RwLock<BTreeMap<Arc<str>, ProbeStatus>>,
    incidents: RwLock<Incidents>,
    decisions: RwLock<Vec<DecisionEntry>>,
}

impl StatusBoard {
    /// Records a result with the probe's current level; returns the previous outcome label.
    pub fn record(
        &self,
        o: &Observation,
        level: Level,
        level_reason: &Reason,
    ) -> Option<&'static str> {
        let mut map = self.probes.write().unwrap_or_else(|e| e.into_inner());
        // Updated in place: the entry lives as long as the probe, and replacing it every run
        // would scatter long-lived allocations among short-lived ones (heap fragmentation).
        if let Some(status) = map.get_mut(&*o.probe) {
            let previous = status.outcome;
            status.update(o, level, level_reason);
            return Some(previous);
        }
        let mut status = ProbeStatus::from(o);
        status.level = level;
        status.level_reason = level_reason.clone();
        map.insert(status.probe.clone(), status);
        None
    }

    /// Drops probes that are no longer configured (after a reload).
    pub fn retain(&self, ids: &[&str]) {
        let mut map = self.probes.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| ids.contains(&&**k));
    }

    pub fn snapshot(&self) -> Vec<ProbeStatus> {
        let map = self.probes.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }

    pub fn set_incidents(&self, incidents: &Incidents) {
        let mut i = self.incidents.write().unwrap_or_else(|e| e.into_inner());
        i.clone_from(incidents);
    }

    pub fn set_decisions(&self, decisions: Vec<DecisionEntry>) {
        *self.decisions.write().unwrap_or_else(|e| e.into_inner()) = decisions;
    }

    /// The last decision of every rule.
    pub fn decisions(&self) -> Vec<DecisionEntry> {
        self.decisions
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn incidents(&self) -> Incidents {
        self.incidents
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
