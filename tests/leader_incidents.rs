//! The leader owns the incidents and their notices (issue 14 #4): two replicas share one
//! journal file (a compare-and-swap store, like the ConfigMap) and one webhook sink, each with
//! its own leadership channel and notifier; observations are fed by hand, as in
//! `journal_fence.rs`.
//!
//! - One incident gives one "opened" and one "resolved" notice, and both replicas serve the
//!   same incident (id, `opened_at`, timeline with the leader's action).
//! - A replica that takes over continues the stored incident (same id and `opened_at`), does
//!   not announce it again, and resolves it when its own view is green.
//! - A replica that takes over a corrupt journal (nothing to re-read) still opens and
//!   announces incidents; remediation holds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use astreinte::actuators::Actuators;
use astreinte::config::{Config, ReceiverKind, load_dir};
use astreinte::engine::Engine;
use astreinte::incident::{EntryKind, Incident};
use astreinte::journal::{FileStore, Journal};
use astreinte::metrics::Metrics;
use astreinte::notify::Notifier;
use astreinte::probes::{Observation, Outcome, ProbeKind, Prober};
use astreinte::remediation::Remediator;
use astreinte::status::StatusBoard;
use support::action_sink::ActionSink;
use support::webhook_sink::WebhookSink;
use tokio::sync::{Mutex, mpsc, watch};
use tokio_util::task::TaskTracker;

const WAIT: Duration = Duration::from_secs(15);

fn config(dir: &Path, sink: &ActionSink, who: &str) -> Arc<Config> {
    let dir = dir.join(who);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("probes.toml"),
        "[incidents]\ngreen_period = \"1s\"\n\n\
         [[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/\"\ntimeout = \"500ms\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("remediations.toml"),
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"act\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\n\
             budget = {{ max = 10, per = \"1h\" }}\ncooldown = \"1h\"\ndeadline = \"5s\"\n",
            sink.url(who)
        ),
    )
    .unwrap();
    Arc::new(load_dir(&dir).unwrap())
}

/// A replica named `who` on the journal at `path`, notifying `url`; the tracker ends once
/// the engine is dropped and every notice it queued was delivered.
async fn replica(
    path: &Path,
    config: Arc<Config>,
    who: &str,
    leader: watch::Receiver<bool>,
    url: &str,
) -> (Engine<FileStore>, TaskTracker) {
    astreinte::app::install_crypto();
    let journal = Journal::open_as(
        FileStore::new(path),
        Some(who.into()),
        jiff::Timestamp::now(),
    )
    .await;
    let (remediator, results) =
        Remediator::new(Actuators::new().unwrap(), Prober::new().unwrap(), leader);
    let metrics = Arc::new(Metrics::new());
    let tracker = TaskTracker::new();
    let (tx, deliveries) = mpsc::channel(64);
    let receiver = support::notify_harness::receiver("oncall", ReceiverKind::Webhook, url);
    let notifier = Notifier::spawn(
        &[receiver],
        config.incidents.clone(),
        metrics.clone(),
        Some(tx),
        &tracker,
    )
    .unwrap();
    tracker.close();
    let e = Engine::new(config, metrics, Arc::new(StatusBoard::default()), journal)
        .with_remediation(remediator, results)
        .with_notifier(notifier, deliveries)
        .without_table();
    (e, tracker)
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

fn healthy(at: jiff::Timestamp) -> Observation {
    Observation {
        outcome: Outcome::Healthy,
        detail: "HTTP 200".into(),
        ..failed(at)
    }
}

/// One turn of the engine's loop: the observations, the tick, remediation, the results of
/// the actions it started, the save.
async fn turn(e: &mut Engine<FileStore>, observations: &[Observation], now: jiff::Timestamp) {
    for o in observations {
        e.handle(o);
    }
    e.tick(now);
    e.remediate(now).await;
    while e.tasks_in_flight() > 0 {
        let r = tokio::time::timeout(WAIT, e.next_task_result())
            .await
            .expect("the action's result")
            .expect("a result");
        e.on_task_result(r, jiff::Timestamp::now());
    }
    e.persist().await;
}

fn failing(t: jiff::Timestamp) -> Vec<Observation> {
    vec![
        failed(t - Duration::from_secs(2)),
        failed(t - Duration::from_secs(1)),
    ]
}

/// Ten healthy results from `t` (the level falls after a few; the green period starts).
fn recovering(t: jiff::Timestamp) -> Vec<Observation> {
    (0..10)
        .map(|i| healthy(t + Duration::from_millis(100 * i)))
        .collect()
}

/// The incident `id` as `e` serves it (`/incidents`, the status page, `astreinte incidents`).
fn served(e: &Engine<FileStore>, id: &str) -> Option<Incident> {
    e.status.incidents().find(id).cloned()
}

/// Waits until the shared engine serves the incident `id` resolved, re-reading as it does
/// on every tick.
async fn wait_resolved(e: &Arc<Mutex<Engine<FileStore>>>, id: &str, what: &str) -> Incident {
    support::wait_for(what, WAIT, || async {
        let mut e = e.lock().await;
        e.remediate(jiff::Timestamp::now()).await;
        served(&e, id).filter(|i| i.resolved_at.is_some())
    })
    .await
}

/// Every notice the sink received, as (path, event, incident id, opened_at).
fn notices(sink: &WebhookSink, paths: &[&str]) -> Vec<(String, String, String, String)> {
    paths
        .iter()
        .flat_map(|p| sink.received(p))
        .map(|r| {
            let b = &r.body;
            (
                r.path.clone(),
                b["event"].as_str().unwrap_or_default().to_owned(),
                b["incident"]["id"].as_str().unwrap_or_default().to_owned(),
                b["incident"]["opened_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

/// Drops the engines (their notifiers) and waits until every notice they queued was sent.
async fn drain(trackers: Vec<TaskTracker>) {
    for t in trackers {
        tokio::time::timeout(WAIT, t.wait())
            .await
            .expect("the notifier's queues drained");
    }
}

#[tokio::test]
async fn one_incident_one_timeline_and_one_set_of_notices_whichever_replica_serves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let actions = ActionSink::start(Duration::from_millis(20)).await;
    let sink = WebhookSink::start(0).await;
    let url = sink.url("/ok/oncall");
    let (_lead_a, rx_a) = watch::channel(true);
    let (_lead_b, rx_b) = watch::channel(false);
    let (mut a, tracker_a) =
        replica(&path, config(dir.path(), &actions, "a"), "a", rx_a, &url).await;
    let (b, tracker_b) = replica(&path, config(dir.path(), &actions, "b"), "b", rx_b, &url).await;
    let b = Arc::new(Mutex::new(b));

    // Both replicas probe the failing service, each at its own moments.
    let t0 = jiff::Timestamp::now();
    turn(&mut a, &failing(t0), t0).await;
    let t1 = t0 + Duration::from_millis(700);
    turn(&mut *b.lock().await, &failing(t1), t1).await;
    assert_eq!(actions.calls().len(), 1, "the leader acted once");
    let id = a.journal.doc.incidents.open["api"].id.clone();

    // The service recovers; both see it, the leader resolves the incident.
    let t2 = t0 + Duration::from_secs(2);
    turn(&mut a, &recovering(t2), t2 + Duration::from_secs(3)).await;
    let t3 = t2 + Duration::from_millis(700);
    turn(
        &mut *b.lock().await,
        &recovering(t3),
        t3 + Duration::from_secs(3),
    )
    .await;
    let on_a = served(&a, &id).expect("the leader serves its incident");
    assert!(on_a.resolved_at.is_some(), "{on_a:#?}");
    assert!(
        on_a.timeline.iter().any(|e| e.kind == EntryKind::Action),
        "{on_a:#?}"
    );

    // The follower serves the leader's incident: same id, same opening, same timeline (the
    // action included).
    let on_b = wait_resolved(&b, &id, "the follower to serve the resolved incident").await;
    assert_eq!(on_b, on_a, "one timeline, whichever replica serves it");

    // One "opened" and one "resolved" notice in all, both about that incident.
    drop(a);
    drop(b);
    drain(vec![tracker_a, tracker_b]).await;
    let got = notices(&sink, &["/ok/oncall"]);
    let events: Vec<&str> = got.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(events, ["opened", "resolved"], "{got:#?}");
    let opened_at = on_a.opened_at.to_string();
    assert!(
        got.iter().all(|n| n.2 == id && n.3 == opened_at),
        "{got:#?}"
    );
}

#[tokio::test]
async fn a_new_leader_continues_the_stored_incident_and_resolves_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    let actions = ActionSink::start(Duration::from_millis(20)).await;
    let sink = WebhookSink::start(0).await;
    let (lead_a, rx_a) = watch::channel(true);
    let (lead_b, rx_b) = watch::channel(false);
    let (mut a, tracker_a) = replica(
        &path,
        config(dir.path(), &actions, "a"),
        "a",
        rx_a,
        &sink.url("/ok/a"),
    )
    .await;
    let (mut b, tracker_b) = replica(
        &path,
        config(dir.path(), &actions, "b"),
        "b",
        rx_b,
        &sink.url("/ok/b"),
    )
    .await;

    // a leads, opens the incident and announces it; b follows.
    let t0 = jiff::Timestamp::now();
    turn(&mut a, &failing(t0), t0).await;
    let t1 = t0 + Duration::from_millis(700);
    turn(&mut b, &failing(t1), t1).await;
    let opened = a.journal.doc.incidents.open["api"].clone();
    support::wait_for("a's opened notice", WAIT, || async {
        (!sink.received("/ok/a").is_empty()).then_some(())
    })
    .await;

    // The Lease moves to b, which continues the incident a opened.
    lead_a.send_replace(false);
    lead_b.send_replace(true);
    let t2 = t0 + Duration::from_secs(2);
    turn(&mut b, &failing(t2), t2).await;
    let continued = served(&b, &opened.id).expect("b serves a's incident");
    assert_eq!(
        (continued.id.as_str(), continued.opened_at),
        (opened.id.as_str(), opened.opened_at)
    );
    assert!(continued.resolved_at.is_none());

    // b's view goes green: b resolves it.
    let t3 = t2 + Duration::from_secs(1);
    turn(&mut b, &recovering(t3), t3 + Duration::from_secs(3)).await;
    let resolved = served(&b, &opened.id).expect("b serves the incident");
    assert!(resolved.resolved_at.is_some(), "{resolved:#?}");
    assert_eq!(resolved.opened_at, opened.opened_at);

    drop(a);
    drop(b);
    drain(vec![tracker_a, tracker_b]).await;
    let got = notices(&sink, &["/ok/a", "/ok/b"]);
    let seen: Vec<(&str, &str)> = got.iter().map(|n| (n.0.as_str(), n.1.as_str())).collect();
    assert_eq!(
        seen,
        [("/ok/a", "opened"), ("/ok/b", "resolved")],
        "{got:#?}"
    );
    let opened_at = opened.opened_at.to_string();
    assert!(
        got.iter().all(|n| n.2 == opened.id && n.3 == opened_at),
        "{got:#?}"
    );
}

#[tokio::test]
async fn a_new_leader_with_a_corrupt_journal_still_opens_and_announces_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.json");
    std::fs::write(&path, "{ not json").unwrap();
    let actions = ActionSink::start(Duration::from_millis(20)).await;
    let sink = WebhookSink::start(0).await;
    let (lead, rx) = watch::channel(false);
    let (mut a, tracker) = replica(
        &path,
        config(dir.path(), &actions, "a"),
        "a",
        rx,
        &sink.url("/ok/a"),
    )
    .await;
    assert!(a.journal.problem.is_some(), "the journal is corrupt");
    // It takes the lead: the journal cannot be re-read, but the on-call is still told.
    lead.send_replace(true);
    let t0 = jiff::Timestamp::now();
    turn(&mut a, &[], t0).await;
    turn(&mut a, &failing(t0), t0).await;
    assert!(
        a.status.incidents().open.contains_key("api"),
        "{:#?}",
        a.status.incidents()
    );
    let d = a.decisions().into_iter().find(|d| d.rule == "act").unwrap();
    assert_eq!(d.decision.reason(), "journal_unavailable");
    assert!(actions.calls().is_empty());
    drop(a);
    drain(vec![tracker]).await;
    let got = notices(&sink, &["/ok/a"]);
    let events: Vec<&str> = got.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(events, ["opened"], "{got:#?}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{ not json",
        "the corrupt journal is left untouched"
    );
}
