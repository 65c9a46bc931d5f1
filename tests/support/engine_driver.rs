//! A real `Engine` with a `Remediator`, driven round by round the way `Engine::run` drives it,
//! for the remediation tests (real probes, real actuators, a journal file in a temp dir).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use astreinte::actuators::Actuators;
use astreinte::config::Config;
use astreinte::engine::Engine;
use astreinte::incident::Event;
use astreinte::journal::{FileStore, Journal};
use astreinte::metrics::Metrics;
use astreinte::probes::Prober;
use astreinte::remediation::Remediator;
use astreinte::status::StatusBoard;
use tokio::sync::{mpsc, watch};

/// An engine that is the leader, with its journal at `journal`, Kubernetes actions through
/// `kube` when given, and incident events on the returned receiver.
pub async fn engine(
    journal: &Path,
    config: Arc<Config>,
    kube: Option<kube::Client>,
) -> (Engine<FileStore>, mpsc::Receiver<Event>) {
    replica(journal, config, kube, true).await
}

/// Like [`engine`], but a replica that never leads (its leader channel says `false`).
pub async fn follower(
    journal: &Path,
    config: Arc<Config>,
    kube: Option<kube::Client>,
) -> (Engine<FileStore>, mpsc::Receiver<Event>) {
    replica(journal, config, kube, false).await
}

/// An engine whose leadership stays `leading` for the whole test.
async fn replica(
    journal: &Path,
    config: Arc<Config>,
    kube: Option<kube::Client>,
    leading: bool,
) -> (Engine<FileStore>, mpsc::Receiver<Event>) {
    astreinte::app::install_crypto();
    let journal = Journal::open(FileStore::new(journal), jiff::Timestamp::now()).await;
    let (leader_tx, leader) = watch::channel(leading);
    std::mem::forget(leader_tx);
    let actuators = Actuators::new().unwrap().with_kube(kube);
    let (remediator, results) = Remediator::new(actuators, Prober::new().unwrap(), leader);
    let (tx, rx) = mpsc::channel(10_000);
    let e = Engine::new(
        config,
        Arc::new(Metrics::new()),
        Arc::new(StatusBoard::default()),
        journal,
    )
    .with_events(tx)
    .with_remediation(remediator, results)
    .without_table();
    (e, rx)
}

/// One round: every probe once, the tick, remediation, then task results for up to `wait`.
pub async fn round(
    e: &mut Engine<FileStore>,
    events: &mut mpsc::Receiver<Event>,
    wait: Duration,
) -> Vec<Event> {
    let prober = Prober::new().unwrap();
    let config = e.config.clone();
    for p in config.enabled_probes() {
        e.handle(&prober.observe(&config, p).await);
    }
    let now = jiff::Timestamp::now();
    e.tick(now);
    e.remediate(now).await;
    let until = tokio::time::Instant::now() + wait;
    while let Ok(Some(r)) = tokio::time::timeout_at(until, e.next_task_result()).await {
        e.on_task_result(r, jiff::Timestamp::now());
    }
    e.persist().await;
    let mut seen = vec![];
    while let Ok(ev) = events.try_recv() {
        seen.push(ev);
    }
    seen
}

/// `rounds` rounds; every incident event seen.
pub async fn drive(
    e: &mut Engine<FileStore>,
    events: &mut mpsc::Receiver<Event>,
    rounds: usize,
    wait: Duration,
) -> Vec<Event> {
    let mut seen = vec![];
    for _ in 0..rounds {
        seen.extend(round(e, events, wait).await);
    }
    seen
}
