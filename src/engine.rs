//! The engine: the one task that consumes observations in order and moves them through the
//! pipeline (metrics, status; scoring, incidents and policy plug in here).

use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::probes::{Observation, Outcome};
use crate::status::StatusBoard;

/// What the engine needs, shared with the HTTP server.
pub struct Engine {
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusBoard>,
}

impl Engine {
    /// Handles one observation.
    pub fn handle(&self, obs: &Observation) {
        self.metrics.observe(obs);
        let previous = self.status.snapshot_one(&obs.probe).map(|s| s.outcome);
        self.status.record(obs);
        log_observation(obs, previous);
    }

    /// Consumes observations until every sender is gone.
    pub async fn run(self, mut rx: mpsc::Receiver<Observation>) {
        while let Some(obs) = rx.recv().await {
            self.handle(&obs);
        }
    }
}

/// Changes of outcome are logged at info (warn when worse); steady results at debug.
fn log_observation(obs: &Observation, previous: Option<&'static str>) {
    let now = obs.outcome.result_label();
    let latency_ms = obs.latency.as_secs_f64() * 1000.0;
    if previous == Some(now) {
        debug!(probe = %obs.probe, outcome = now, reason = obs.outcome.reason(), latency_ms, "probe result");
        return;
    }
    match obs.outcome {
        Outcome::Healthy => info!(
            probe = %obs.probe, target = %obs.target, outcome = now, was = previous.unwrap_or("none"),
            detail = %obs.detail, latency_ms, "probe healthy"
        ),
        _ => warn!(
            probe = %obs.probe, target = %obs.target, outcome = now, reason = obs.outcome.reason(),
            was = previous.unwrap_or("none"), detail = %obs.detail, latency_ms, "probe not healthy"
        ),
    }
}
