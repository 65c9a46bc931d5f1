//! The engine: the one task that consumes observations in order and moves them through the
//! pipeline (metrics, status; scoring, incidents and policy plug in here).

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::check;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::probes::{Observation, Outcome};
use crate::status::StatusBoard;

/// What the engine needs, shared with the HTTP server.
pub struct Engine {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusBoard>,
    /// Collects the first result of every probe, printed once as a table on stdout so whoever
    /// started the daemon sees real results at once.
    pub first_round: Option<FirstRound>,
}

/// The first result of each probe, until every enabled probe has reported once.
#[derive(Default)]
pub struct FirstRound {
    seen: BTreeMap<Arc<str>, Observation>,
}

impl Engine {
    pub fn new(config: Arc<Config>, metrics: Arc<Metrics>, status: Arc<StatusBoard>) -> Self {
        Engine {
            config,
            metrics,
            status,
            first_round: Some(FirstRound::default()),
        }
    }

    /// Handles one observation.
    pub fn handle(&mut self, obs: &Observation) {
        self.print_first_round(obs);
        self.metrics.observe(obs);
        let previous = self.status.snapshot_one(&obs.probe).map(|s| s.outcome);
        self.status.record(obs);
        log_observation(obs, previous);
    }

    fn print_first_round(&mut self, obs: &Observation) {
        let Some(round) = &mut self.first_round else {
            return;
        };
        round
            .seen
            .entry(obs.probe.clone())
            .or_insert_with(|| obs.clone());
        if round.seen.len() < self.config.enabled_probes().count() {
            return;
        }
        let in_order: Vec<Observation> = self
            .config
            .enabled_probes()
            .filter_map(|p| round.seen.get(p.id.as_str()).cloned())
            .collect();
        println!("{}", check::render_table(&self.config, &in_order));
        self.first_round = None;
    }

    /// Consumes observations until every sender is gone.
    pub async fn run(mut self, mut rx: mpsc::Receiver<Observation>) {
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
