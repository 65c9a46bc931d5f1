//! Live configuration: new versions come from the policy ConfigMap watch ([`configmap`], in a
//! cluster) or from SIGHUP ([`hangup`], which re-reads the configuration directory). Both
//! publish on one channel that holds the last good configuration: a version is parsed and
//! validated as a whole, a good one replaces the running configuration (probes restart with
//! it, the engine takes it between two observations), a bad one is rejected with every
//! problem logged (naming the file or ConfigMap key, the probe or rule, and the field) and
//! `astreinte_config_reload_total{result="invalid"}`, and the last good one keeps running.
//! Nothing is half-applied. Edits are not debounced: each is judged in order, and since the
//! channel keeps only the latest good version, a burst of edits ends on the last good one.
//! Sections only a restart applies are kept as they run, and named in a warning
//! ([`restart`]).

pub mod configmap;
pub mod hangup;
pub mod restart;

use std::sync::Arc;

use tokio::sync::watch;

use crate::config::Config;
use crate::metrics::{Metrics, ResultLabels};

pub use configmap::{spawn, spawn_into};

/// Publishes a good version from `origin`.
fn accept(new: Config, origin: &str, tx: &watch::Sender<Arc<Config>>, metrics: &Metrics) {
    // The policy ConfigMap's first version at start, or a resync: the configuration that
    // runs already. Publishing it would restart every probe and "reload" for nothing.
    if **tx.borrow() == new {
        metrics
            .config_reload_total
            .get_or_create(&ResultLabels {
                result: "unchanged",
            })
            .inc();
        tracing::debug!(origin = %origin, "configuration unchanged");
        return;
    }
    metrics
        .config_reload_total
        .get_or_create(&ResultLabels { result: "applied" })
        .inc();
    tracing::info!(
        origin = %origin,
        probes = new.enabled_probes().count(),
        rules = new.rules.len(),
        mode = new.policy.mode.as_str(),
        "configuration reloaded"
    );
    tx.send_replace(Arc::new(new));
}

/// Logs and counts a rejected version from `origin`; each problem names its file or key.
fn reject(problems: &[String], origin: &str, metrics: &Metrics) {
    metrics
        .config_reload_total
        .get_or_create(&ResultLabels { result: "invalid" })
        .inc();
    for p in problems {
        tracing::error!(origin = %origin, problem = %p, "invalid configuration");
    }
    tracing::error!(
        origin = %origin,
        problems = problems.len(),
        "configuration rejected, keeping the last good configuration"
    );
}
