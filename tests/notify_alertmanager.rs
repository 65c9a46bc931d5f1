//! Notifications against a real Alertmanager (Debian `prometheus-alertmanager`): an incident
//! opens, escalates and resolves, and its alert follows (severity label, active, gone).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use astreinte::config::{IncidentSettings, ReceiverKind};
use astreinte::incident::Incidents;
use astreinte::level::Level;
use astreinte::notify::NoticeKind;
use astreinte::testbed::alertmanager::{self, Alertmanager};
use serde_json::Value;

use support::notify_harness::{only, receiver, start};

/// The alerts Alertmanager holds for `incident`, as (severity, state), and the latest endsAt.
async fn alerts_of(am: &Alertmanager, incident: &str) -> (Vec<(String, String)>, jiff::Timestamp) {
    let filter = format!("incident=\"{incident}\"");
    let url = url::Url::parse_with_params(
        &format!("{}/api/v2/alerts", am.url()),
        &[("filter", filter.as_str())],
    )
    .unwrap();
    let alerts: Vec<Value> = reqwest::Client::new()
        .get(url)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ends = jiff::Timestamp::UNIX_EPOCH;
    let mut out: Vec<(String, String)> = alerts
        .iter()
        .map(|a| {
            assert_eq!(a["labels"]["alertname"], alertmanager_name());
            ends = ends.max(a["endsAt"].as_str().unwrap().parse().unwrap());
            (
                a["labels"]["severity"].as_str().unwrap().to_owned(),
                a["status"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    out.sort();
    (out, ends)
}

fn active(severity: &str) -> Vec<(String, String)> {
    vec![(severity.to_owned(), "active".to_owned())]
}

fn alertmanager_name() -> &'static str {
    astreinte::notify::alertmanager::ALERT_NAME
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_follows_open_escalate_resolve() {
    support::require(alertmanager::BINARY, alertmanager::PACKAGE);
    let dir = tempfile::tempdir().unwrap();
    // Alerts sent without endsAt expire after 2 s unless sent again.
    let am = Alertmanager::start(dir.path(), Duration::from_secs(2))
        .await
        .unwrap();
    let settings = IncidentSettings {
        green_period: Duration::ZERO,
        ..IncidentSettings::default()
    };
    let mut am_receiver = receiver("am", ReceiverKind::Alertmanager, &am.url());
    am_receiver.resend = Duration::from_millis(300);
    let mut h = start(&[am_receiver], &settings);
    let mut incidents = Incidents::default();
    let id = "1-rag-api";

    let now = jiff::Timestamp::now();
    let opened = only(incidents.on_level("rag-api", Level::P2, "slow", "900 ms", now, &settings));
    assert_eq!(h.notifier.notify(&opened, now), 1);
    let d = h.next_delivery().await;
    assert!(d.ok && d.attempts == 1, "{d:?}");
    let first_expiry =
        support::wait_for("the P2 alert active", Duration::from_secs(10), || async {
            let (a, ends) = alerts_of(&am, id).await;
            (a == active("P2")).then_some(ends)
        })
        .await;
    // Past the expiry of the first send, the resends keep it active.
    support::wait_for(
        "the P2 alert still active after its first endsAt",
        Duration::from_secs(10),
        || async {
            let (a, ends) = alerts_of(&am, id).await;
            (jiff::Timestamp::now() > first_expiry && a == active("P2") && ends > first_expiry)
                .then_some(())
        },
    )
    .await;
    assert!(h.metric("am", "resent") >= 1);

    let now = jiff::Timestamp::now();
    let up = only(incidents.on_level(
        "rag-api",
        Level::P1,
        "service_down",
        "HTTP 503",
        now,
        &settings,
    ));
    h.notifier.notify(&up, now);
    let d = h.next_delivery().await;
    assert!(d.ok && d.kind == NoticeKind::Escalated, "{d:?}");
    support::wait_for(
        "only the P1 alert active",
        Duration::from_secs(10),
        || async { (alerts_of(&am, id).await.0 == active("P1")).then_some(()) },
    )
    .await;

    let now = jiff::Timestamp::now();
    assert!(
        incidents
            .on_level("rag-api", Level::Ok, "ok", "", now, &settings)
            .is_empty()
    );
    let resolved = only(incidents.tick(now, &settings));
    h.notifier.notify(&resolved, now);
    let d = h.next_delivery().await;
    assert!(d.ok && d.kind == NoticeKind::Resolved, "{d:?}");
    support::wait_for(
        "no alert left for the incident",
        Duration::from_secs(10),
        || async { alerts_of(&am, id).await.0.is_empty().then_some(()) },
    )
    .await;
    // The resends (every 300 ms) stopped with the resolve: it stays gone.
    let until = Instant::now() + Duration::from_secs(1);
    while Instant::now() < until {
        assert_eq!(alerts_of(&am, id).await.0, vec![]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.metric("am", "delivered"), 3);
    drop(h.notifier);
    h.tracker.close();
    h.tracker.wait().await;
}
