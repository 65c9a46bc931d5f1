//! The last observation of every probe, as `/status` and `astreinte check` show it.

use std::collections::BTreeMap;
use std::sync::RwLock;

use serde::Serialize;

use crate::probes::{Observation, Outcome};

/// One probe's latest result.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeStatus {
    pub probe: String,
    pub kind: &'static str,
    pub target: String,
    pub outcome: &'static str,
    pub reason: String,
    /// The measured figure behind a degraded outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    pub detail: String,
    pub latency_ms: f64,
    pub at: jiff::Timestamp,
}

impl From<&Observation> for ProbeStatus {
    fn from(o: &Observation) -> Self {
        ProbeStatus {
            probe: o.probe.to_string(),
            kind: o.kind.as_str(),
            target: o.target.to_string(),
            outcome: o.outcome.result_label(),
            reason: o.outcome.reason().to_owned(),
            value: match o.outcome {
                Outcome::Degraded { value, .. } => Some(value),
                _ => None,
            },
            detail: o.detail.clone(),
            latency_ms: o.latency.as_secs_f64() * 1000.0,
            at: o.at,
        }
    }
}

/// The part of a status the engine compares between runs.
#[derive(Debug, Clone, Copy)]
pub struct ProbeStatusSummary {
    pub outcome: &'static str,
}

/// Latest status per probe id.
#[derive(Default)]
pub struct StatusBoard {
    probes: RwLock<BTreeMap<String, ProbeStatus>>,
}

impl StatusBoard {
    pub fn record(&self, o: &Observation) {
        let status = ProbeStatus::from(o);
        let mut map = self.probes.write().unwrap_or_else(|e| e.into_inner());
        map.insert(status.probe.clone(), status);
    }

    /// Drops probes that are no longer configured (after a reload).
    pub fn retain(&self, ids: &[&str]) {
        let mut map = self.probes.write().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| ids.contains(&k.as_str()));
    }

    /// The outcome label last recorded for a probe.
    pub fn snapshot_one(&self, probe: &str) -> Option<ProbeStatusSummary> {
        let map = self.probes.read().unwrap_or_else(|e| e.into_inner());
        map.get(probe)
            .map(|s| ProbeStatusSummary { outcome: s.outcome })
    }

    pub fn snapshot(&self) -> Vec<ProbeStatus> {
        let map = self.probes.read().unwrap_or_else(|e| e.into_inner());
        map.values().cloned().collect()
    }
}
