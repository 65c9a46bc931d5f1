//! The fence between replicas that share a journal, deterministic and in process (the flapping
//! network of `kube_faults.rs` row B reaches these interleavings only by chance): two engines
//! write one journal file (a compare-and-swap store, like the ConfigMap), each with its own
//! leadership channel, acting through an `http` rule on a local action target.
//!
//! - A new leader whose copy of the journal misses its predecessor's last action does not act
//!   on it: its fenced write is refused, it re-reads, and the cooldown holds.
//! - A replica that stops leading while its action's entry is being written does not start
//!   the action, and removes the entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use astreinte::actuators::Actuators;
use astreinte::config::{Config, load_dir};
use astreinte::engine::Engine;
use astreinte::journal::{FileStore, Journal, Snapshot, Store, StoreError};
use astreinte::metrics::Metrics;
use astreinte::probes::{Observation, Outcome, ProbeKind, Prober};
use astreinte::remediation::Remediator;
use astreinte::status::StatusBoard;
use support::action_sink::ActionSink;
use support::http_target::HttpTarget;
use tokio::sync::watch;

/// A file store that takes the leadership away during the next save, as a network that
/// holds the write until the Lease has lapsed.
struct LoseLeadOnSave {
    inner: FileStore,
    leader: watch::Sender<bool>,
    armed: AtomicBool,
}

impl Store for LoseLeadOnSave {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        self.inner.load().await
    }

    async fn save(&self, data: &str, expected: Option<&str>) -> Result<String, StoreError> {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.leader.send_replace(false);
        }
        self.inner.save(data, expected).await
    }
}

fn config(dir: &Path, target: &HttpTarget, sink: &ActionSink, who: &str) -> Arc<Config> {
    let dir = dir.join(who);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("probes.toml"),
        format!(
            "[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ntimeout = \"500ms\"\n",
            target.url("/switchable")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("remediations.toml"),
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"act\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\n\
             budget = {{ max = 100, per = \"1h\" }}\ncooldown = \"1h\"\ndeadline = \"5s\"\n",
            sink.url(who)
        ),
    )
    .unwrap();
    Arc::new(load_dir(&dir).unwrap())
}

async fn replica<S: Store>(
    store: S,
    config: Arc<Config>,
    who: &str,
    leader: watch::Receiver<bool>,
) -> Engine<S> {
    astreinte::app::install_crypto();
    let journal = Journal::open_as(store, Some(who.into()), jiff::Timestamp::now()).await;
    let actuators = Actuators::new().unwrap();
    let (remediator, results) = Remediator::new(actuators, Prober::new().unwrap(), leader);
    Engine::new(
        config,
        Arc::new(Metrics::new()),
        Arc::new(StatusBoard::default()),
        journal,
    )
    .with_remediation(remediator, results)
    .without_table()
}

fn failed(at: jiff::Timestamp) -> Observation {
    Observation {
        probe: Arc::from("api"),
        kind: ProbeKind::Http,
        target: Arc::from("api"),
        outcome: Outcome::failed("http_status"),
        detail: "HTTP 500".into(),
        latency: Duration::from_millis(1),
        at,
        measurements: vec![],
    }
}

/// Scores the failure up to the rule's level, decides, and records what the tasks report.
async fn tick<S: Store>(e: &mut Engine<S>, now: jiff::Timestamp) {
    e.handle(&failed(now - Duration::from_secs(2)));
    e.handle(&failed(now - Duration::from_secs(1)));
    e.remediate(now).await;
    while let Ok(Some(r)) =
        tokio::time::timeout(Duration::from_millis(500), e.next_task_result()).await
    {
        e.on_task_result(r, jiff::Timestamp::now());
    }
    e.persist().await;
}

fn reason<S: Store>(e: &Engine<S>) -> String {
    let d = e.decisions().into_iter().find(|d| d.rule == "act").unwrap();
    d.decision.reason().to_owned()
}

#[tokio::test]
async fn a_new_leader_with_a_stale_journal_does_not_act_on_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let sink = ActionSink::start(Duration::from_millis(50)).await;
    let (lead_a, rx_a) = watch::channel(true);
    let (lead_b, rx_b) = watch::channel(false);
    let mut a = replica(
        FileStore::new(&path),
        config(dir.path(), &target, &sink, "a"),
        "a",
        rx_a,
    )
    .await;
    let mut b = replica(
        FileStore::new(&path),
        config(dir.path(), &target, &sink, "b"),
        "b",
        rx_b,
    )
    .await;
    let now = jiff::Timestamp::now();
    // b writes first (its incident), so its copy is one version behind a's action.
    tick(&mut b, now).await;
    tick(&mut a, now).await;
    tick(&mut a, now).await;
    assert_eq!(sink.calls().len(), 1, "a acted once");

    lead_a.send_replace(false);
    lead_b.send_replace(true);
    tick(&mut b, now + Duration::from_secs(1)).await;
    assert_eq!(
        reason(&b),
        "journal_unavailable",
        "the fenced write was refused"
    );
    tick(&mut b, now + Duration::from_secs(2)).await;
    assert_eq!(reason(&b), "cooldown", "decided again on what a wrote");
    let calls: Vec<String> = sink.calls().into_iter().map(|c| c.who).collect();
    assert_eq!(calls, ["a"], "b never acted inside a's cooldown");
}

#[tokio::test]
async fn a_replica_that_stops_leading_while_writing_does_not_act() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let sink = ActionSink::start(Duration::from_millis(50)).await;
    let (lead, rx) = watch::channel(true);
    let store = LoseLeadOnSave {
        inner: FileStore::new(&path),
        leader: lead,
        armed: AtomicBool::new(true),
    };
    let mut a = replica(store, config(dir.path(), &target, &sink, "a"), "a", rx).await;
    tick(&mut a, jiff::Timestamp::now()).await;
    assert_eq!(reason(&a), "not_leader");
    assert!(sink.calls().is_empty(), "{:?}", sink.calls());
    let stored = std::fs::read_to_string(&path).unwrap();
    let doc: astreinte::journal::JournalDoc = serde_json::from_str(&stored).unwrap();
    assert!(
        doc.actions.is_empty(),
        "the entry is removed: {:?}",
        doc.actions
    );
}
