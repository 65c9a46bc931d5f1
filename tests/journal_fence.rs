//! The fence between replicas that share a journal, deterministic and in process (the flapping
//! network of `kube_faults.rs` row B reaches these interleavings only by chance): two engines
//! write one journal file (a compare-and-swap store, like the ConfigMap), each with its own
//! leadership channel, acting through an `http` rule on a local action target.
//!
//! - A new leader re-reads the journal before it decides: its first decision is its
//!   predecessor's cooldown, and no `act` is logged or counted for an action already run.
//! - Two replicas that both believe they lead: the one whose copy misses the other's last
//!   action does not act on it: its fenced write is refused, it re-reads, the cooldown holds.
//! - A replica that stops leading while its action's entry is being written does not start
//!   the action, and removes the entry.
//! - A replica that died mid-action (no one will write its end) holds its rule as in flight
//!   only until the action's deadline plus a margin has passed; then the new leader marks it
//!   interrupted (who, why), it counts, and the rule acts again only on a new incident,
//!   within its budget and cooldown.
//! - A replica started while another one's action runs leaves that action alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use astreinte::actuators::Actuators;
use astreinte::config::{Config, load_dir};
use astreinte::engine::Engine;
use astreinte::journal::{
    ActionResult, FileStore, Journal, STALE_MARGIN, Snapshot, Store, StoreError,
};
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
    config_with(dir, target, sink, who, "max = 100, per = \"1h\"", "1h")
}

fn config_with(
    dir: &Path,
    target: &HttpTarget,
    sink: &ActionSink,
    who: &str,
    budget: &str,
    cooldown: &str,
) -> Arc<Config> {
    let dir = dir.join(who);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("probes.toml"),
        format!(
            "[incidents]\ngreen_period = \"1s\"\n\n\
             [[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ntimeout = \"500ms\"\n",
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
             budget = {{ {budget} }}\ncooldown = \"{cooldown}\"\ndeadline = \"5s\"\n",
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

/// How many times `e` counted an `act` decision (`astreinte_remediation_decisions_total`).
fn acts_counted<S: Store>(e: &Engine<S>) -> f64 {
    e.metrics
        .encode()
        .lines()
        .filter(|l| {
            l.starts_with("astreinte_remediation_decisions_total{")
                && l.contains("decision=\"act\"")
        })
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_new_leader_rereads_the_journal_before_it_decides() {
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
    // b, following, reads the journal before a acts: its copy is one version behind.
    tick(&mut b, now).await;
    tick(&mut a, now).await;
    tick(&mut a, now).await;
    assert_eq!(sink.calls().len(), 1, "a acted once");

    // b takes the lead: it re-reads the journal first, so its first decision is a's
    // cooldown; no `act` is logged or counted for the action a already ran.
    lead_a.send_replace(false);
    lead_b.send_replace(true);
    tick(&mut b, now + Duration::from_secs(1)).await;
    assert_eq!(acts_counted(&b), 0.0, "no act decision counted");
    assert_eq!(reason(&b), "cooldown", "decided on what a wrote");
    let calls: Vec<String> = sink.calls().into_iter().map(|c| c.who).collect();
    assert_eq!(calls, ["a"], "b never acted inside a's cooldown");
}

#[tokio::test]
async fn two_replicas_that_both_lead_are_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let sink = ActionSink::start(Duration::from_millis(50)).await;
    // Both believe they lead (b's Lease lapsed late): b read the journal at its start,
    // before a's action; only the fenced compare-and-swap stands between them.
    let (_lead_a, rx_a) = watch::channel(true);
    let (_lead_b, rx_b) = watch::channel(true);
    let mut b = replica(
        FileStore::new(&path),
        config(dir.path(), &target, &sink, "b"),
        "b",
        rx_b,
    )
    .await;
    let mut a = replica(
        FileStore::new(&path),
        config(dir.path(), &target, &sink, "a"),
        "a",
        rx_a,
    )
    .await;
    let now = jiff::Timestamp::now();
    tick(&mut a, now).await;
    tick(&mut a, now).await;
    assert_eq!(sink.calls().len(), 1, "a acted once");

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

fn healthy(at: jiff::Timestamp) -> Observation {
    Observation {
        outcome: Outcome::Healthy,
        detail: "HTTP 200".into(),
        ..failed(at)
    }
}

/// Green long enough for the open incident to resolve (green period: 1 s; the level falls
/// after a few healthy results, and ten clear the window of intermittent errors).
async fn recover<S: Store>(e: &mut Engine<S>, now: jiff::Timestamp) {
    for i in 0..10 {
        e.handle(&healthy(now + Duration::from_millis(100 * i)));
    }
    e.tick(now + Duration::from_secs(3));
    e.remediate(now + Duration::from_secs(3)).await;
    e.persist().await;
}

fn stored(path: &Path) -> astreinte::journal::JournalDoc {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[tokio::test]
async fn a_dead_replicas_running_action_holds_its_rule_until_its_deadline_then_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let sink = ActionSink::start(Duration::from_millis(50)).await;
    let t0 = jiff::Timestamp::now();
    let at = |s: u64| t0 + Duration::from_secs(s);
    let budget = "max = 2, per = \"1h\"";

    // a decides, writes its entry, starts the action and dies: no end is ever written.
    let (_lead_a, rx_a) = watch::channel(true);
    let mut a = replica(
        FileStore::new(&path),
        config_with(dir.path(), &target, &sink, "a", budget, "30s"),
        "a",
        rx_a,
    )
    .await;
    a.handle(&failed(at(0) - Duration::from_secs(2)));
    a.handle(&failed(at(0) - Duration::from_secs(1)));
    a.remediate(at(0)).await;
    drop(a);
    assert_eq!(stored(&path).actions[0].result, ActionResult::Running);

    // b starts (a new pod) and leads: a's action is not b's, and its deadline has not passed.
    let (_lead_b, rx_b) = watch::channel(true);
    let mut b = replica(
        FileStore::new(&path),
        config_with(dir.path(), &target, &sink, "b", budget, "30s"),
        "b",
        rx_b,
    )
    .await;
    tick(&mut b, at(1)).await;
    assert_eq!(reason(&b), "in_flight");
    // Deadline 5 s + margin: not before.
    let limit = 5 + STALE_MARGIN.as_secs();
    tick(&mut b, at(limit)).await;
    assert_eq!(
        reason(&b),
        "in_flight",
        "still within the deadline and margin"
    );
    assert_eq!(stored(&path).actions[0].result, ActionResult::Running);

    // Past it: interrupted, marked by b, counted, and not repeated blindly.
    tick(&mut b, at(limit + 1)).await;
    assert_eq!(
        reason(&b),
        "already_tried",
        "the same incident is not retried blindly"
    );
    let doc = stored(&path);
    let first = &doc.actions[0];
    assert_eq!(first.result, ActionResult::Interrupted);
    assert_eq!(first.by.as_deref(), Some("a"));
    assert_eq!(first.interrupted_by.as_deref(), Some("b"));
    assert!(
        first.detail.contains(
            "interrupted: replica a stopped answering; marked by b after the 5s deadline"
        ),
        "{}",
        first.detail
    );
    let noted = doc.incidents.open.values().any(|i| {
        i.timeline
            .iter()
            .any(|e| e.text.contains("replica a stopped answering; marked by b"))
    });
    assert!(
        noted,
        "on the incident's timeline: {:?}",
        doc.incidents.open
    );

    // A new incident: the rule acts again (one of its two per hour left)…
    recover(&mut b, at(limit + 2)).await;
    tick(&mut b, at(limit + 10)).await;
    let calls: Vec<String> = sink.calls().into_iter().map(|c| c.who).collect();
    assert_eq!(
        calls,
        ["a", "b"],
        "b acted once, on the new incident: {:?}",
        b.decisions()
    );
    // …and the interrupted action counted: the budget is spent.
    recover(&mut b, at(limit + 50)).await;
    tick(&mut b, at(limit + 60)).await;
    assert_eq!(reason(&b), "budget_exhausted");
    assert_eq!(sink.calls().len(), 2);
}

#[tokio::test]
async fn a_replica_started_during_anothers_action_leaves_it_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    // The action takes 3 s (its deadline is 5 s).
    let sink = ActionSink::start(Duration::from_secs(3)).await;
    let (lead_a, rx_a) = watch::channel(true);
    let mut a = replica(
        FileStore::new(&path),
        config(dir.path(), &target, &sink, "a"),
        "a",
        rx_a,
    )
    .await;
    let t0 = jiff::Timestamp::now();
    a.handle(&failed(t0 - Duration::from_secs(2)));
    a.handle(&failed(t0 - Duration::from_secs(1)));
    a.remediate(t0).await;
    a.persist().await;

    // b starts meanwhile, then leads: a's action stays a's, running, and holds the rule.
    let (_lead_b, rx_b) = watch::channel(false);
    let mut b = replica(
        FileStore::new(&path),
        config(dir.path(), &target, &sink, "b"),
        "b",
        rx_b,
    )
    .await;
    assert_eq!(stored(&path).actions[0].result, ActionResult::Running);
    lead_a.send_replace(false);
    _lead_b.send_replace(true);
    tick(&mut b, t0 + Duration::from_secs(1)).await;
    assert_eq!(reason(&b), "in_flight");
    assert_eq!(stored(&path).actions[0].result, ActionResult::Running);

    // a, alive, writes its end; b reads it and never marks it.
    let result = tokio::time::timeout(Duration::from_secs(5), a.next_task_result())
        .await
        .unwrap()
        .unwrap();
    a.on_task_result(result, jiff::Timestamp::now());
    a.persist().await;
    assert_eq!(stored(&path).actions[0].result, ActionResult::Succeeded);
    // b re-reads the shared journal at most once a second while a's action runs there.
    for _ in 0..10 {
        tick(&mut b, t0 + Duration::from_secs(4)).await;
        if reason(&b) != "in_flight" {
            break;
        }
    }
    assert_eq!(reason(&b), "cooldown", "b read a's end");
    let doc = stored(&path);
    let first = &doc.actions[0];
    assert_eq!(first.result, ActionResult::Succeeded);
    assert_eq!(first.interrupted_by, None);
    assert_eq!(sink.calls().len(), 1);
    // a, a follower now, writes no timeline: b, the leader, notes the end it read.
    let timeline = &doc.incidents.open["api"].timeline;
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == astreinte::incident::EntryKind::Action
                && e.text.starts_with("http (rule act, replica a): ")),
        "{timeline:#?}"
    );
}
