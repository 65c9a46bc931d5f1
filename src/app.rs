//! Wiring: build the pieces from the configuration, spawn the tasks, stop them cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::actuators::Actuators;
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::journal::{FileStore, Journal};
use crate::metrics::Metrics;
use crate::probes::Prober;
use crate::remediation::Remediator;
use crate::server::{self, AppState};
use crate::status::StatusBoard;
use crate::{check, client, scheduler, shutdown};

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

/// `astreinte run`: the daemon, until SIGTERM or SIGINT.
pub async fn run(config: Config, listen: Option<std::net::SocketAddr>) -> Result<()> {
    install_crypto();
    let mut config = config;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let config = Arc::new(config);
    let prober = Prober::new()?;
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
    let server_cancel = cancel.clone();
    let server = tokio::spawn(server::serve(listener, state.clone(), server_cancel));
    let (tx, rx) = mpsc::channel(1024);
    let journal = Journal::open(FileStore::new(&config.journal.path), jiff::Timestamp::now()).await;
    // Local mode: one daemon, always the leader.
    let (_leader_tx, leader) = watch::channel(true);
    let (remediator, results) = Remediator::new(Actuators::new()?, prober.clone(), leader);
    let engine = Engine::new(config.clone(), metrics.clone(), status, journal)
        .with_remediation(remediator, results);
    let action_deadline = config
        .rules
        .iter()
        .map(|r| r.deadline())
        .max()
        .unwrap_or(Duration::ZERO);
    let engine = tokio::spawn(engine.run(rx, cancel.clone(), action_deadline));
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
    // Probes stop at once; actions in flight get their own deadline to finish.
    let stopped = tokio::time::timeout(STOP_DEADLINE + action_deadline, async {
        let _ = tokio::time::timeout(STOP_DEADLINE, tracker.wait()).await;
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
    let prober = Prober::new()?;
    let observations = check::run_once(config, &prober).await;
    if json {
        println!("{}", check::render_json(&observations));
    } else {
        print!("{}", check::render_table(config, &observations));
    }
    Ok(check::exit_code(&observations))
}

/// `astreinte incidents` / `explain`: asks the daemon at `url` (default: `server.listen` on
/// loopback) and prints its answer; times in the policy time zone.
pub async fn query_daemon(
    config: &Config,
    url: Option<String>,
    request: &client::Request,
    output: client::Output,
) -> Result<i32> {
    let url = url.unwrap_or_else(|| client::default_url(config.server.listen));
    let tz = crate::when::policy_zone(config.policy.timezone.as_deref());
    let text = client::run(&url, request, output, &tz).await?;
    print!("{text}");
    Ok(0)
}
