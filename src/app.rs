//! Wiring: build the pieces from the configuration, spawn the tasks, stop them cleanly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::actuators::Actuators;
use crate::clock::Clock;
use crate::config::{self, Config};
use crate::engine::Engine;
use crate::journal::{AnyStore, FileStore, Journal, KubeStore};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::probes::Prober;
use crate::reload::restart::{RestartOnly, Sections};
use crate::remediation::Remediator;
use crate::server::{self, AppState};
use crate::status::StatusBoard;
use crate::supervisor::Supervisor;
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

/// What the cluster tasks give the rest of the daemon.
struct ClusterTasks {
    /// Whether this replica holds the Lease (only the leader remediates).
    leader: watch::Receiver<bool>,
    /// Whether the policy ConfigMap is watched (then it is the live source of configurations).
    policy_watched: bool,
}

/// In a cluster: leader election on the Lease, and the policy ConfigMap watch when one is
/// configured (a good new version is published on `configs`; a bad one is rejected).
fn spawn_cluster_tasks(
    client: &crate::clients::kube::Client,
    config: &Arc<Config>,
    configs: &Arc<watch::Sender<Arc<Config>>>,
    metrics: &Arc<Metrics>,
    cancel: &CancellationToken,
    supervisor: &mut Supervisor,
) -> ClusterTasks {
    let identity = identity();
    let leader_config = crate::leader::LeaderConfig::from_settings(&config.kubernetes, identity);
    let (leader, elector) = crate::leader::spawn(
        client.clone(),
        leader_config,
        cancel.clone(),
        Some(metrics.leader.clone()),
    );
    // Supervised (its fault point is in its loop), and a stop waits for the Lease release.
    supervisor.adopt("leader", elector);
    if let Some(name) = &config.kubernetes.policy_configmap {
        let watch = crate::reload::spawn_into(
            client.clone(),
            &config.kubernetes.namespace,
            name,
            configs.clone(),
            metrics.clone(),
            cancel.clone(),
        );
        supervisor.adopt_with_fault("policy-watch", watch);
    }
    ClusterTasks {
        leader,
        policy_watched: config.kubernetes.policy_configmap.is_some(),
    }
}

/// This replica's name: in the Lease's `holderIdentity`, the journal records it writes and
/// its Events' `reportingInstance`.
fn identity() -> String {
    crate::clients::kube::replica_name()
}

/// The journal's store: the ConfigMap named in `[kubernetes]` in a cluster, else the file.
fn journal_store(config: &Config, kube: Option<&crate::clients::kube::Client>) -> AnyStore {
    match (kube, &config.kubernetes.journal_configmap) {
        (Some(client), Some(name)) => AnyStore::Kube(Box::new(KubeStore::new(
            client.clone(),
            &config.kubernetes.namespace,
            name,
        ))),
        _ => AnyStore::File(FileStore::new(&config.journal.path)),
    }
}

/// Applies each new configuration: served at once, probes restarted with it, and the engine
/// told. The old probe tasks stop through their own child token. Sections only a restart
/// applies keep their running values; a change to one is a warning and
/// `astreinte_config_restart_pending` 1.
#[allow(clippy::too_many_arguments)]
fn spawn_reloader(
    mut configs: watch::Receiver<Arc<Config>>,
    restart: RestartOnly,
    state: Arc<AppState>,
    to_engine: watch::Sender<Arc<Config>>,
    (supervisor, tracker): (&mut Supervisor, TaskTracker),
    cancel: CancellationToken,
    mut probes_cancel: CancellationToken,
    prober: crate::probe_guard::Guarded<Prober>,
    sink: mpsc::Sender<crate::probes::Observation>,
    metrics: Arc<Metrics>,
) {
    let inner = tracker;
    supervisor.spawn("reloader", async move {
        while configs.changed().await.is_ok() {
            let read = Config::clone(&configs.borrow_and_update());
            let (changed, new) = restart.split(read);
            for section in &changed {
                warn!(section = %section, "`{section}` changed: restart to apply");
            }
            metrics
                .config_restart_pending
                .set(i64::from(!changed.is_empty()));
            let new = Arc::new(new);
            info!(
                probes = new.enabled_probes().count(),
                rules = new.rules.len(),
                mode = new.policy.mode.as_str(),
                "configuration applied"
            );
            state.config.store(new.clone());
            // The engine first, so the new probes' first results are not dropped as unknown.
            let _ = to_engine.send(new.clone());
            probes_cancel.cancel();
            probes_cancel = cancel.child_token();
            scheduler::spawn_all(
                &inner,
                &probes_cancel,
                new.clone(),
                prober.clone(),
                sink.clone(),
                metrics.clone(),
            );
        }
        Ok(())
    });
}

/// `astreinte run`: the daemon, until SIGTERM or SIGINT, or until a supervised task ends or
/// panics ([`crate::supervisor`]): then every other task is stopped and an error returned
/// (exit code 1).
pub async fn run(
    config: Config,
    listen: Option<std::net::SocketAddr>,
    record: Option<PathBuf>,
) -> Result<()> {
    install_crypto();
    crate::supervisor::init_fault_knob();
    // Before anything slow (the Kubernetes client may run an exec credential plugin): a
    // SIGHUP from now on is held until the reloader serves it, never fatal.
    let hangups = crate::reload::hangup::listen().context("cannot install the SIGHUP handler")?;
    // Only the restart-only sections: a whole clone would hold every probe twice more.
    let read = Sections::of(&config);
    let mut config = config;
    if let Some(addr) = listen {
        config.server.listen = addr;
    }
    let config = Arc::new(config);
    // Anchored now: every stamp from here on is this instant plus monotonic time.
    let clock = Clock::system();
    let kube = connect_kube(&config).await;
    let prober = Prober::new()?.with_kube(kube.clone());
    let metrics = Arc::new(Metrics::new());
    let status = Arc::new(StatusBoard::default());
    let heartbeat = Arc::new(crate::heartbeat::Heartbeat::default());
    let state = Arc::new(AppState {
        config: ArcSwap::new(config.clone()),
        metrics: metrics.clone(),
        status: status.clone(),
        heartbeat: heartbeat.clone(),
        started: clock.now(),
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
        cluster = kube.is_some(),
        listen = %listen,
        "astreinte started"
    );

    let mut supervisor = Supervisor::new();
    // The probe tasks: restarted with each configuration, so tracked, not supervised one by
    // one; a panic in a probe run reaches the supervisor through the `scheduler` task.
    let tracker = TaskTracker::new();
    let skew = crate::clock::skew::spawn(clock.clone(), metrics.clone(), cancel.clone());
    supervisor.adopt_with_fault("clock-skew", skew);
    // Every source of new configurations (policy ConfigMap, SIGHUP) publishes here.
    let (reload_tx, reload_rx) = watch::channel(config.clone());
    let reload_tx = Arc::new(reload_tx);
    let cluster = kube.as_ref().map(|client| {
        spawn_cluster_tasks(
            client,
            &config,
            &reload_tx,
            &metrics,
            &cancel,
            &mut supervisor,
        )
    });
    let on_hangup = crate::reload::hangup::OnHangup::of(
        &config,
        cluster.as_ref().is_some_and(|c| c.policy_watched),
    );
    let hangup = crate::reload::hangup::spawn(
        hangups,
        on_hangup,
        reload_tx,
        metrics.clone(),
        cancel.clone(),
    );
    supervisor.adopt_with_fault("sighup", hangup);
    let serving = server::serve(listener, state.clone(), cancel.clone());
    supervisor.spawn("server", async move {
        serving
            .await
            .map_err(|e| format!("HTTP server failed: {e}"))
    });
    let (tx, rx) = mpsc::channel(1024);
    let store = journal_store(&config, kube.as_ref());
    info!(journal = %store.describe(), "journal");
    // A journal in a ConfigMap is shared by the replicas: each names the records it writes.
    let writer = matches!(store, AnyStore::Kube(_)).then(identity);
    let journal = Journal::open_as(store, writer, clock.now()).await;
    // Local mode: one daemon, always the leader. In a cluster: the Lease holder.
    let (_local_leader, local) = watch::channel(true);
    let leader = cluster.as_ref().map_or(local, |c| c.leader.clone());
    let actuators = Actuators::new()?.with_kube(kube.clone());
    let (remediator, results) = Remediator::new(actuators, prober.clone(), leader);
    let (config_tx, config_rx) = watch::channel(config.clone());
    let mut engine = Engine::new(config.clone(), metrics.clone(), status, journal)
        .with_remediation(remediator, results)
        .with_config_updates(config_rx)
        .with_heartbeat(heartbeat);
    let notify_tracker = TaskTracker::new();
    let (delivery_tx, deliveries) = mpsc::channel(256);
    let notifier = Notifier::spawn(
        &config.notify,
        config.incidents.clone(),
        metrics.clone(),
        Some(delivery_tx),
        &notify_tracker,
    )?;
    notify_tracker.close();
    if config.notify.iter().any(|r| r.enabled) {
        // The receivers' tasks end when the engine drops the notifier (at a stop): all of
        // them gone before that is a failure.
        let lanes = notify_tracker.clone();
        supervisor.spawn("notifier", async move {
            lanes.wait().await;
            Ok(())
        });
    }
    engine = engine.with_notifier(notifier, deliveries);
    if let Some(path) = &record {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the recording {}", path.display()))?;
        engine = engine.with_recorder(file);
    }
    let action_deadline = config
        .rules
        .iter()
        .map(|r| r.deadline())
        .max()
        .unwrap_or(Duration::ZERO);
    // Its fault point is in its loop (on an observation).
    supervisor.spawn_own_fault("engine", engine.run(rx, cancel.clone(), action_deadline));
    let (guarded, panics) = crate::probe_guard::guard(prober);
    supervisor.spawn("scheduler", crate::probe_guard::watch(panics));
    let probes_cancel = cancel.child_token();
    scheduler::spawn_all(
        &tracker,
        &probes_cancel,
        config.clone(),
        guarded.clone(),
        tx.clone(),
        metrics.clone(),
    );
    spawn_reloader(
        reload_rx,
        RestartOnly::new(read, &config),
        state.clone(),
        config_tx,
        (&mut supervisor, tracker.clone()),
        cancel.clone(),
        probes_cancel,
        guarded,
        tx,
        metrics,
    );
    tracker.close();

    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => Ok(()),
        ended = supervisor.first_end() => {
            if cancel.is_cancelled() {
                // Ended by the stop signal that raced with it: not a failure.
                Ok(())
            } else {
                let why = ended.describe();
                error!(task = ended.task, error = %why, "supervised task ended: stopping the daemon");
                cancel.cancel();
                Err(anyhow::anyhow!(why))
            }
        }
    };
    // Probes stop at once; actions in flight get their own deadline to finish.
    let stopped = tokio::time::timeout(STOP_DEADLINE + action_deadline, async {
        let _ = tokio::time::timeout(STOP_DEADLINE, tracker.wait()).await;
        supervisor.stop(STOP_DEADLINE + action_deadline).await;
    })
    .await;
    match stopped {
        Ok(()) => info!("astreinte stopped"),
        Err(_) => info!(deadline = ?STOP_DEADLINE, "astreinte stopped with tasks still running"),
    }
    outcome
}

/// `astreinte simulate`: replays a recording through the policy and prints the decisions.
pub async fn simulate(
    config: &Config,
    recording: &std::path::Path,
    as_configured: bool,
) -> Result<i32> {
    let file = std::fs::File::open(recording)
        .with_context(|| format!("cannot open {}", recording.display()))?;
    let observations = crate::simulate::read(std::io::BufReader::new(file))
        .with_context(|| format!("in {}", recording.display()))?;
    let lines = crate::simulate::replay(config, &observations, as_configured).await?;
    println!(
        "{} observation(s) replayed from {}",
        observations.len(),
        recording.display()
    );
    for line in lines {
        println!("{line}");
    }
    Ok(0)
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
