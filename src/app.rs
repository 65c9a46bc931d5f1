//! Wiring: build the pieces from the configuration, spawn the tasks, stop them cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::config::{self, Config};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::probes::Prober;
use crate::server::{self, AppState};
use crate::status::StatusBoard;
use crate::{check, scheduler, shutdown};

/// How long the daemon waits for its tasks after a stop signal.
const STOP_DEADLINE: Duration = Duration::from_secs(4);

/// Loads `dir`, or the embedded local example when no directory is given.
pub fn load_config(dir: Option<&PathBuf>) -> Result<Config, config::ConfigError> {
    match dir {
        Some(d) => config::load_dir(d),
        None => config::load_embedded(),
    }
}

/// rustls needs one process-wide crypto provider; astreinte uses ring everywhere.
pub fn install_crypto() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The cluster client, or `None` (local mode, or a broken kubeconfig, which is logged: the
/// daemon keeps probing everything else and the Kubernetes probes say `Unknown`).
async fn connect_kube(config: &Config) -> Option<crate::clients::kube::Client> {
    match crate::clients::kube::connect(config.kubernetes.kubeconfig.as_deref()).await {
        Ok(Some(client)) => Some(client),
        Ok(None) => {
            info!("no kubernetes cluster configured: kubernetes probes report unknown");
            None
        }
        Err(e) => {
            error!(error = %e, "cannot build the kubernetes client: kubernetes probes report unknown");
            None
        }
    }
}

/// In a cluster: leader election on the Lease, and the policy ConfigMap watch when one is
/// configured (a good new version replaces the served configuration; a bad one is rejected).
fn spawn_cluster_tasks(
    client: &crate::clients::kube::Client,
    config: &Arc<Config>,
    state: &Arc<AppState>,
    metrics: &Arc<Metrics>,
    cancel: &CancellationToken,
    tracker: &TaskTracker,
) {
    let identity =
        std::env::var("HOSTNAME").unwrap_or_else(|_| format!("astreinte-{}", std::process::id()));
    let leader_config = crate::leader::LeaderConfig::from_settings(&config.kubernetes, identity);
    // The receiver is for the remediation engine; the gauge shows leadership meanwhile.
    let (_leading, leader) = crate::leader::spawn(
        client.clone(),
        leader_config,
        cancel.clone(),
        Some(metrics.leader.clone()),
    );
    // Tracked, so that a stop waits for the Lease to be released.
    tracker.spawn(async move {
        let _ = leader.await;
    });
    if let Some(name) = &config.kubernetes.policy_configmap {
        let (mut rx, watch) = crate::reload::spawn(
            client.clone(),
            &config.kubernetes.namespace,
            name,
            config.clone(),
            metrics.clone(),
            cancel.clone(),
        );
        let state = state.clone();
        tracker.spawn(async move {
            // Ends when the watch task stops (on cancel) and drops the sender.
            while rx.changed().await.is_ok() {
                let new = rx.borrow_and_update().clone();
                state.config.store(new);
            }
            let _ = watch.await;
        });
    }
}

/// `astreinte run`: the daemon, until SIGTERM or SIGINT.
pub async fn run(config: Config, listen: Option<std::net::SocketAddr>) -> Result<()> {
    install_crypto();
    let mut config = config;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let config = Arc::new(config);
    let kube = connect_kube(&config).await;
    let prober = Prober::new()?.with_kube(kube.clone());
    let metrics = Arc::new(Metrics::new());
    let status = Arc::new(StatusBoard::default());
    let state = Arc::new(AppState {
        config: ArcSwap::new(config.clone()),
        metrics: metrics.clone(),
        status: status.clone(),
        scheduler_running: false.into(),
        started: jiff::Timestamp::now(),
    });
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let listen = listener.local_addr()?;
    let cancel = CancellationToken::new();
    shutdown::on_signal(cancel.clone()).context("cannot install signal handlers")?;
    let files: Vec<String> = config
        .files()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %config.source,
        files = ?files,
        probes = config.enabled_probes().count(),
        rules = config.rules.len(),
        mode = config.policy.mode.as_str(),
        listen = %listen,
        "astreinte started"
    );

    let tracker = TaskTracker::new();
    if let Some(client) = &kube {
        spawn_cluster_tasks(client, &config, &state, &metrics, &cancel, &tracker);
    }
    let server_cancel = cancel.clone();
    let server = tokio::spawn(server::serve(listener, state.clone(), server_cancel));
    let (tx, rx) = mpsc::channel(1024);
    let engine = tokio::spawn(
        Engine {
            metrics: metrics.clone(),
            status,
        }
        .run(rx),
    );
    scheduler::spawn_all(&tracker, &cancel, config.clone(), prober, tx, metrics);
    tracker.close();
    state.scheduler_running.store(true, Ordering::Release);

    let outcome = tokio::select! {
        _ = cancel.cancelled() => Ok(()),
        r = server => {
            let e = match r {
                Ok(Ok(())) => anyhow::anyhow!("HTTP server stopped unexpectedly"),
                Ok(Err(e)) => anyhow::Error::new(e).context("HTTP server failed"),
                Err(e) => anyhow::Error::new(e).context("HTTP server task panicked"),
            };
            error!(error = %format!("{e:#}"), "supervised task failed, stopping");
            cancel.cancel();
            Err(e)
        }
    };
    state.scheduler_running.store(false, Ordering::Release);
    let stopped = tokio::time::timeout(STOP_DEADLINE, async {
        tracker.wait().await;
        let _ = engine.await;
    })
    .await;
    match stopped {
        Ok(()) => info!("astreinte stopped"),
        Err(_) => info!(deadline = ?STOP_DEADLINE, "astreinte stopped with tasks still running"),
    }
    outcome
}

/// `astreinte check`: runs every probe once and prints the table; returns the exit code.
pub async fn check_once(config: &Config, json: bool) -> Result<i32> {
    install_crypto();
    let prober = Prober::new()?.with_kube(connect_kube(config).await);
    let observations = check::run_once(config, &prober).await;
    if json {
        println!("{}", check::render_json(&observations));
    } else {
        print!("{}", check::render_table(config, &observations));
    }
    Ok(check::exit_code(&observations))
}
