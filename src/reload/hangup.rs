//! SIGHUP: re-reads the configuration directory the daemon was started with, as an SRE who
//! runs it outside Kubernetes (systemd `ExecReload=kill -HUP $MAINPID`) expects. Without this
//! handler SIGHUP would kill the daemon.
//!
//! When a policy ConfigMap is watched, it is the live source: SIGHUP then only logs that it is
//! ignored (re-reading the mounted files, which the kubelet refreshes late, would replace the
//! watched version with an older one). With the embedded example there is nothing to re-read.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config};
use crate::metrics::Metrics;

/// Where a SIGHUP takes the configuration from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnHangup {
    /// Re-read this directory.
    Reload(PathBuf),
    /// Log why not.
    Ignore(&'static str),
}

impl OnHangup {
    /// What SIGHUP does for a daemon started with `config`.
    pub fn of(config: &Config, policy_configmap_watched: bool) -> OnHangup {
        match (&config.source, policy_configmap_watched) {
            (_, true) => OnHangup::Ignore(
                "the policy configmap is watched and is the live source: edit it instead",
            ),
            (config::Source::Dir(dir), false) => OnHangup::Reload(dir.clone()),
            (_, false) => OnHangup::Ignore(
                "started with the embedded example: there is no directory to re-read",
            ),
        }
    }
}

/// Installs the SIGHUP handler; each signal re-reads the directory (or logs why not).
pub fn spawn(
    on_hangup: OnHangup,
    tx: Arc<watch::Sender<Arc<Config>>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut hangups = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                got = hangups.recv() => if got.is_none() { return },
            }
            match &on_hangup {
                OnHangup::Reload(dir) => reload(dir, &tx, &metrics),
                OnHangup::Ignore(why) => tracing::warn!("SIGHUP ignored: {why}"),
            }
        }
    }))
}

/// Loads `dir` and publishes it if it is good.
pub fn reload(dir: &std::path::Path, tx: &watch::Sender<Arc<Config>>, metrics: &Metrics) {
    let origin = dir.display().to_string();
    tracing::info!(config = %origin, "SIGHUP: re-reading the configuration");
    match config::load_dir(dir) {
        Ok(new) => super::accept(new, &origin, tx, metrics),
        Err(e) => {
            let problems: Vec<String> = e.0.iter().map(ToString::to_string).collect();
            super::reject(&problems, &origin, metrics);
        }
    }
}
