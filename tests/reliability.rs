//! Faults that must not make an outage worse: a failing dependency, an unwritable journal,
//! thousands of targets failing at once, a daemon killed in the middle of an action.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use astreinte::config::{Config, load_dir};
use astreinte::incident::Event;
use astreinte::journal::{ActionResult, JournalDoc};
use astreinte::probes::{Observation, Outcome, ProbeKind};
use support::engine_driver;
use support::http_target::HttpTarget;

fn load(dir: &Path, probes: &str, remediations: &str) -> Arc<Config> {
    std::fs::write(dir.join("probes.toml"), probes).unwrap();
    std::fs::write(dir.join("remediations.toml"), remediations).unwrap();
    Arc::new(load_dir(dir).unwrap())
}

fn failed(probe: &str, at: jiff::Timestamp) -> Observation {
    Observation {
        probe: Arc::from(probe),
        kind: ProbeKind::Tcp,
        target: Arc::from(probe),
        outcome: Outcome::failed("connection_refused"),
        detail: "connection refused".into(),
        latency: Duration::from_millis(1),
        at,
        measurements: vec![],
    }
}

fn tcp_probe(id: &str, group: Option<&str>) -> String {
    let group = group
        .map(|g| format!("group = \"{g}\"\n"))
        .unwrap_or_default();
    format!("[[probe]]\nid = \"{id}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n{group}\n")
}

#[tokio::test]
async fn a_failing_dependency_holds_the_dependent_and_links_the_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let probes = format!("{}{}", tcp_probe("api", None), tcp_probe("db", None));
    let target = HttpTarget::start().await;
    let rules = format!(
        "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"api-restart\"\ntrigger = {{ probe = \"api\", min_level = \"P2\" }}\naction = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\ndepends_on = [\"db\"]\n",
        target.url("/admin/noop")
    );
    let config = load(dir.path(), &probes, &rules);
    let (mut e, _rx) = engine_driver::engine(&dir.path().join("j.json"), config, None).await;
    let now = jiff::Timestamp::now();
    for s in 0..2 {
        e.handle(&failed("db", now + Duration::from_secs(s)));
        e.handle(&failed("api", now + Duration::from_secs(s)));
    }
    e.remediate(now + Duration::from_secs(3)).await;
    let d = e
        .decisions()
        .into_iter()
        .find(|d| d.rule == "api-restart")
        .unwrap();
    assert_eq!(d.decision.reason(), "dependency_down", "{}", d.line);
    assert_eq!(target.admin_calls.load(Ordering::SeqCst), 0);
    let incidents = &e.journal.doc.incidents.open;
    let db = incidents["db"].id.clone();
    assert_eq!(incidents["api"].attached_to.as_deref(), Some(db.as_str()));
}

#[tokio::test]
async fn no_action_without_a_journal_entry() {
    let dir = tempfile::tempdir().unwrap();
    let target = HttpTarget::start().await;
    let rules = format!(
        "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"fix\"\ntrigger = {{ probe = \"api\", min_level = \"P2\" }}\naction = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\n",
        target.url("/admin/noop")
    );
    // A journal that cannot be written (its directory cannot be created).
    let unwritable = Path::new("/proc/astreinte-no-such-dir/journal.json");
    let config = load(dir.path(), &tcp_probe("api", None), &rules);
    let (mut e, _rx) = engine_driver::engine(unwritable, config, None).await;
    let now = jiff::Timestamp::now();
    e.handle(&failed("api", now));
    e.handle(&failed("api", now + Duration::from_secs(1)));
    e.remediate(now + Duration::from_secs(2)).await;
    // Held before any task was started: nothing runs that could call the target later.
    assert_eq!(e.tasks_in_flight(), 0, "a task was started");
    assert_eq!(
        target.admin_calls.load(Ordering::SeqCst),
        0,
        "acted without a journal entry"
    );
    assert!(e.journal.doc.actions.is_empty());
    let d = e.decisions().into_iter().find(|d| d.rule == "fix").unwrap();
    assert_eq!(d.decision.reason(), "journal_unavailable", "{}", d.line);
}

#[tokio::test]
async fn five_thousand_targets_failing_at_once_hold_everything_and_page_once() {
    let dir = tempfile::tempdir().unwrap();
    let probes: String = (0..5000)
        .map(|i| tcp_probe(&format!("t{i}"), None))
        .collect();
    let rules = "[policy]\nmode = \"enforce\"\npartition_guard = { max_failing_ratio = 0.5, min_targets = 4 }\n\n[[rule]]\nid = \"page-t0\"\ntrigger = { probe = \"t0\", min_level = \"P2\" }\naction = { kind = \"page\" }\n";
    let (mut e, mut rx) = engine_driver::engine(
        &dir.path().join("j.json"),
        load(dir.path(), &probes, rules),
        None,
    )
    .await;
    let now = jiff::Timestamp::now();
    for s in 0..2 {
        for i in 0..5000 {
            e.handle(&failed(&format!("t{i}"), now + Duration::from_secs(s)));
        }
    }
    for s in 2..5 {
        e.remediate(now + Duration::from_secs(s)).await;
    }
    let d = e
        .decisions()
        .into_iter()
        .find(|d| d.rule == "page-t0")
        .unwrap();
    assert_eq!(d.decision.reason(), "partition_suspected", "{}", d.line);
    assert!(e.journal.doc.actions.is_empty());
    let mut pages = 0;
    while let Ok(ev) = rx.try_recv() {
        if matches!(ev, Event::Paged { .. }) {
            pages += 1;
        }
    }
    assert_eq!(pages, 1, "one page, not 5,000");
    // The journal stays bounded even with 5,000 open incidents.
    e.persist().await;
    let size = std::fs::metadata(dir.path().join("j.json")).unwrap().len();
    assert!(size < 8 * 1024 * 1024, "journal is {size} bytes");
}

#[tokio::test]
async fn a_daemon_killed_mid_action_reads_it_back_as_interrupted_and_does_not_repeat_it() {
    let dir = tempfile::tempdir().unwrap();
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let port = support::free_port();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[journal]\npath = \"{}\"\n\n[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            dir.path().join("journal.json").display(),
            target.url("/switchable")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"slow-fix\"\ntrigger = {{ probe = \"api\", min_level = \"P2\" }}\naction = {{ kind = \"http\", method = \"POST\", url = \"{}\" }}\ndeadline = \"10m\"\n",
            target.url("/admin/hang")
        ),
    )
    .unwrap();
    let start = |log: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_astreinte"));
        cmd.args([
            "--config",
            dir.path().to_str().unwrap(),
            "--log-format",
            "json",
            "run",
        ]);
        astreinte::testbed::Proc::spawn("astreinte", cmd, &dir.path().join(log)).unwrap()
    };
    let mut daemon = start("first.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while target.admin_calls.load(Ordering::SeqCst) == 0 {
        let log = std::fs::read_to_string(dir.path().join("first.log")).unwrap_or_default();
        assert!(
            std::time::Instant::now() < deadline,
            "the action never started:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    daemon.kill(); // SIGKILL mid-action
    let doc: JournalDoc =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("journal.json")).unwrap())
            .unwrap();
    assert_eq!(doc.actions.len(), 1);
    assert_eq!(
        doc.actions[0].result,
        ActionResult::Running,
        "written before it ran"
    );

    let mut daemon = start("second.log");
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let held = |after: Option<jiff::Timestamp>| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let d: serde_json::Value = client
                .get(format!("{base}/decisions"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let d = d
                .as_array()?
                .iter()
                .find(|d| d["rule"] == "slow-fix")?
                .clone();
            let at: jiff::Timestamp = d["at"].as_str()?.parse().ok()?;
            (d["decision"]["reason"] == "already_tried" && after.is_none_or(|a| at > a))
                .then(|| (at, d["line"].as_str().unwrap_or_default().to_owned()))
        }
    };
    let (first_at, line) = support::wait_for(
        "a decision after the restart",
        Duration::from_secs(20),
        || held(None),
    )
    .await;
    assert!(line.contains("already tried"), "{line}");
    // "Nothing more happened" is a later evaluation that held the rule again, not time passing.
    support::wait_for(
        "a second evaluation holding the rule",
        Duration::from_secs(20),
        || held(Some(first_at)),
    )
    .await;
    assert_eq!(
        target.admin_calls.load(Ordering::SeqCst),
        1,
        "not repeated blindly"
    );
    let incidents: serde_json::Value = client
        .get(format!("{base}/incidents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let timeline = incidents["open"][0]["timeline"].to_string();
    assert!(timeline.contains("detected"), "{timeline}");
    daemon.kill();
    let doc: JournalDoc =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("journal.json")).unwrap())
            .unwrap();
    assert_eq!(doc.actions[0].result, ActionResult::Interrupted);
    assert!(
        doc.actions[0].counts(),
        "an interrupted action counts against the budget"
    );
}

#[tokio::test]
async fn a_daemon_killed_during_a_verification_escalates_after_the_window_if_still_failing() {
    killed_during_verification(false).await;
}

#[tokio::test]
async fn a_daemon_killed_during_a_verification_holds_quietly_if_the_target_recovered() {
    killed_during_verification(true).await;
}

/// SIGKILL while the first rule's verification is pending (12s window), restart: the rule is
/// not held `in_flight` forever.
async fn killed_during_verification(recovered: bool) {
    let dir = tempfile::tempdir().unwrap();
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let port = support::free_port();
    let journal = dir.path().join("journal.json");
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[journal]\npath = \"{}\"\n\n[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            journal.display(),
            target.url("/switchable")
        ),
    )
    .unwrap();
    // A verify window far longer than the daemon lives: it is killed while verifying.
    std::fs::write(
        dir.path().join("remediations.toml"),
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"first-fix\"\ntrigger = {{ probe = \"api\", min_level = \"P2\" }}\naction = {{ kind = \"http\", method = \"POST\", url = \"{noop}\" }}\nverify = {{ probe = \"api\", within = \"12s\" }}\nescalate = \"second-fix\"\n\n[[rule]]\nid = \"second-fix\"\ntrigger = {{ probe = \"api\", min_level = \"P2\", for = \"1h\" }}\naction = {{ kind = \"http\", method = \"POST\", url = \"{noop}\" }}\n",
            noop = target.url("/admin/noop")
        ),
    )
    .unwrap();
    let start = |log: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_astreinte"));
        cmd.args([
            "--config",
            dir.path().to_str().unwrap(),
            "--log-format",
            "json",
            "run",
        ]);
        astreinte::testbed::Proc::spawn("astreinte", cmd, &dir.path().join(log)).unwrap()
    };
    let read_doc = || -> Option<JournalDoc> {
        serde_json::from_str(&std::fs::read_to_string(&journal).ok()?).ok()
    };
    let mut daemon = start("first.log");
    support::wait_for(
        "the first action succeeded, its verification pending",
        Duration::from_secs(20),
        || async {
            let doc = read_doc()?;
            doc.actions
                .iter()
                .any(|a| a.result == ActionResult::Succeeded && a.verified.is_none())
                .then_some(())
        },
    )
    .await;
    daemon.kill(); // SIGKILL during the verify window
    assert_eq!(target.admin_calls.load(Ordering::SeqCst), 1);
    if recovered {
        target.status.store(200, Ordering::SeqCst);
    }

    let mut daemon = start("second.log");
    if recovered {
        let doc = support::wait_for(
            "the verification settled after the restart",
            Duration::from_secs(40),
            || async {
                let doc = read_doc()?;
                (doc.actions[0].verified == Some(false)).then_some(doc)
            },
        )
        .await;
        let timeline = serde_json::to_string(&doc.incidents).unwrap();
        assert!(timeline.contains("verification interrupted"), "{timeline}");
        assert!(timeline.contains("nothing escalated"), "{timeline}");
        assert!(!timeline.contains("escalating"), "{timeline}");
        let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
        assert!(log.contains("verification interrupted"), "{log}");
        daemon.kill();
        let doc = read_doc().unwrap();
        assert_eq!(doc.actions.len(), 1, "nothing acted on a recovered target");
        assert_eq!(target.admin_calls.load(Ordering::SeqCst), 1);
        return;
    }
    // Still failing: once the window has passed, the verification is settled as not
    // confirmed and the chain goes on to the next rule (instead of `in_flight` forever).
    support::wait_for(
        "the escalated rule acted after the restart",
        Duration::from_secs(40),
        || async { (target.admin_calls.load(Ordering::SeqCst) >= 2).then_some(()) },
    )
    .await;
    let doc = support::wait_for("the journal written", Duration::from_secs(10), || async {
        let doc = read_doc()?;
        (doc.actions.len() == 2 && doc.actions[1].result == ActionResult::Succeeded).then_some(doc)
    })
    .await;
    assert_eq!(doc.actions[0].rule, "first-fix");
    assert_eq!(doc.actions[0].verified, Some(false));
    assert!(
        doc.actions[0]
            .detail
            .contains("verification interrupted: the previous run of this daemon stopped"),
        "{}",
        doc.actions[0].detail
    );
    assert_eq!(doc.actions[1].rule, "second-fix");
    let timeline = serde_json::to_string(&doc.incidents).unwrap();
    assert!(timeline.contains("verification interrupted"), "{timeline}");
    assert!(
        timeline.contains("escalating to rule second-fix"),
        "{timeline}"
    );
    daemon.kill();
    assert_eq!(
        target.admin_calls.load(Ordering::SeqCst),
        2,
        "first-fix not repeated"
    );
}
