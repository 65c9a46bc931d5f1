//! What a probe saw: the outcome types shared by every probe kind, scoring and the status page.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A short, bounded reason code (`connection_refused`, `timeout`, `lag_above_limit`…).
/// Codes are fixed strings in the probe code, so they are safe as metric labels.
pub type Reason = Cow<'static, str>;

/// The result of one probe run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// The target is fine.
    Healthy,
    /// The target works but worse than it should; `value` is the measured figure the
    /// reason refers to (degradation %, used ratio, lag bytes…).
    Degraded { value: f64, reason: Reason },
    /// The target is down or wrong.
    Failed { reason: Reason },
    /// The probe could not see. astreinte never acts on an unknown outcome.
    Unknown { reason: Reason },
}

impl Outcome {
    pub fn degraded(value: f64, reason: impl Into<Reason>) -> Self {
        Outcome::Degraded {
            value,
            reason: reason.into(),
        }
    }

    pub fn failed(reason: impl Into<Reason>) -> Self {
        Outcome::Failed {
            reason: reason.into(),
        }
    }

    pub fn unknown(reason: impl Into<Reason>) -> Self {
        Outcome::Unknown {
            reason: reason.into(),
        }
    }

    /// The label used in `astreinte_probe_runs_total{result}`.
    pub fn result_label(&self) -> &'static str {
        match self {
            Outcome::Healthy => "healthy",
            Outcome::Degraded { .. } => "degraded",
            Outcome::Failed { .. } => "failed",
            Outcome::Unknown { .. } => "unknown",
        }
    }

    /// The reason code, or `ok` for a healthy outcome.
    pub fn reason(&self) -> &str {
        match self {
            Outcome::Healthy => "ok",
            Outcome::Degraded { reason, .. }
            | Outcome::Failed { reason }
            | Outcome::Unknown { reason } => reason,
        }
    }

    /// The reason code as a [`Reason`]: a copy of the pointer for the usual static codes.
    pub fn reason_code(&self) -> Reason {
        match self {
            Outcome::Healthy => Reason::Borrowed("ok"),
            Outcome::Degraded { reason, .. }
            | Outcome::Failed { reason }
            | Outcome::Unknown { reason } => reason.clone(),
        }
    }

    pub fn is_healthy(&self) -> bool {
        matches!(self, Outcome::Healthy)
    }

    /// Severity order used by `astreinte check`: healthy < degraded < unknown < failed.
    pub fn rank(&self) -> u8 {
        match self {
            Outcome::Healthy => 0,
            Outcome::Degraded { .. } => 1,
            Outcome::Unknown { .. } => 2,
            Outcome::Failed { .. } => 3,
        }
    }
}

/// A per-kind figure a probe measured, exported as a gauge (`astreinte_disk_used_ratio`…).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    pub gauge: crate::metrics::GaugeName,
    /// Label pairs; values come from config (probe ids, member names), so they stay bounded.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Measurement {
    pub fn new(gauge: crate::metrics::GaugeName, labels: &[(&str, &str)], value: f64) -> Self {
        Measurement {
            gauge,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value,
        }
    }
}

/// One probe run, as the scheduler hands it to the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Observation {
    pub probe: Arc<str>,
    pub kind: super::ProbeKind,
    /// What the probe observes (a service, a cluster, a mount); incidents are keyed on it.
    pub target: Arc<str>,
    pub outcome: Outcome,
    /// A human sentence with the details (status code, lag, error). Never holds a secret.
    pub detail: String,
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    pub at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
}

/// What a probe kind returns before the runner stamps it with id, time and latency.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub outcome: Outcome,
    pub detail: String,
    pub measurements: Vec<Measurement>,
}

impl Finding {
    pub fn new(outcome: Outcome, detail: impl Into<String>) -> Self {
        Finding {
            outcome,
            detail: detail.into(),
            measurements: Vec::new(),
        }
    }

    pub fn healthy(detail: impl Into<String>) -> Self {
        Self::new(Outcome::Healthy, detail)
    }

    pub fn with(mut self, m: Measurement) -> Self {
        self.measurements.push(m);
        self
    }
}
