//! SIGHUP: re-reads the configuration directory the daemon was started with, as an SRE who
//! runs it outside Kubernetes (systemd `ExecReload=kill -HUP $MAINPID`) expects. Without this
//! handler SIGHUP would kill the daemon.
//!
//! When a policy ConfigMap is watched, it is the live source: SIGHUP then only logs that it is
//! ignored (re-reading the mounted files, which the kubelet refreshes late, would replace the
//! watched version with an older one). With the embedded example there is nothing to re-read.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::signal::unix::{Signal, SignalKind, signal};
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

/// Installs the SIGHUP handler: from now on SIGHUP no longer kills the process; signals
/// wait in the returned stream until [`spawn`] serves them.
pub fn listen() -> std::io::Result<Signal> {
    signal(SignalKind::hangup())
}

/// Serves `hangups` (from [`listen`]): each signal re-reads the directory (or logs why not).
pub fn spawn(
    mut hangups: Signal,
    on_hangup: OnHangup,
    tx: Arc<watch::Sender<Arc<Config>>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
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
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sighup_rereads_a_directory_unless_a_configmap_is_the_live_source() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(config::PROBES_FILE), "").unwrap();
        std::fs::write(dir.path().join(config::REMEDIATIONS_FILE), "").unwrap();
        let from_dir = config::load_dir(dir.path()).unwrap();
        assert_eq!(
            OnHangup::of(&from_dir, false),
            OnHangup::Reload(dir.path().to_path_buf())
        );
        assert!(matches!(OnHangup::of(&from_dir, true), OnHangup::Ignore(_)));
        let embedded = config::load_embedded().unwrap();
        assert!(matches!(
            OnHangup::of(&embedded, false),
            OnHangup::Ignore(_)
        ));
    }

    #[test]
    fn a_bad_directory_keeps_the_last_good_configuration() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(config::PROBES_FILE),
            "[[probe]]\nid = \"x\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join(config::REMEDIATIONS_FILE), "").unwrap();
        let good = Arc::new(config::load_dir(dir.path()).unwrap());
        let (tx, rx) = watch::channel(good.clone());
        let metrics = Metrics::new();
        std::fs::write(dir.path().join(config::PROBES_FILE), "[[probe]]\nid = 1\n").unwrap();
        reload(dir.path(), &tx, &metrics);
        assert!(Arc::ptr_eq(&rx.borrow(), &good));
        assert!(
            metrics
                .encode()
                .contains("astreinte_config_reload_total{result=\"invalid\"} 1")
        );
    }
}
