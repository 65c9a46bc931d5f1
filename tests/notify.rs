//! Notifications end to end against local axum receivers: the exact webhook and Slack
//! bodies, retries, a dead receiver that never blocks the caller, queue overflow, min_level,
//! and secrets kept out of errors. (The real Alertmanager: tests/notify_alertmanager.rs.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use astreinte::config::{IncidentSettings, ReceiverKind, SecretRef};
use astreinte::incident::{EntryKind, Incidents};
use astreinte::level::Level;
use astreinte::notify::{Delivery, Notice, NoticeKind};
use serde_json::json;

use support::notify_harness::{fixed, only, receiver, start};
use support::webhook_sink::WebhookSink;

#[tokio::test]
async fn webhook_gets_the_exact_json_with_the_bearer_token() {
    let sink = WebhookSink::start(0).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "s3cret-token\n").unwrap();
    let mut hook = receiver("ops-hook", ReceiverKind::Webhook, &sink.url("/ok/hook"));
    hook.token = Some(SecretRef {
        env: None,
        file: Some(token_file),
    });
    let settings = IncidentSettings::default();
    let mut h = start(&[hook], &settings);
    let mut incidents = Incidents::default();
    let t0 = fixed("2026-11-23T03:12:00Z");
    let e = only(incidents.on_level(
        "rag-api",
        Level::P1,
        "service_down",
        "HTTP 503",
        t0,
        &settings,
    ));
    h.notifier.notify(&e, t0);
    let d = h.next_delivery().await;
    assert_eq!(
        d,
        Delivery {
            incident_id: "1-rag-api".into(),
            key: "rag-api".into(),
            receiver: "ops-hook".into(),
            kind: NoticeKind::Opened,
            ok: true,
            attempts: 1,
            error: None,
        }
    );
    // The engine writes it on the timeline.
    assert!(incidents.note(&d.key, EntryKind::Notification, d.timeline_text(), t0));
    assert_eq!(
        incidents.open["rag-api"].timeline.last().unwrap().text,
        "opened notice delivered to ops-hook (1 attempt)"
    );

    let got = sink.received("/ok/hook");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].authorization.as_deref(), Some("Bearer s3cret-token"));
    let text = "[INCIDENT] P1 - rag-api service down\n\
                Detected: 2026-11-23 03:12:00 UTC\n\
                Impact: service down (P1 detected: service_down (HTTP 503))\n\
                Affected: rag-api\n\
                Status: open, P1\n\
                Actions: none yet\n\
                ETA: by 03:27:00 UTC (P1 response target 15m)\n\
                Incident: 1-rag-api";
    assert_eq!(
        got[0].body,
        json!({
            "version": "1",
            "event": "opened",
            "at": "2026-11-23T03:12:00Z",
            "from": null,
            "incident": {
                "id": "1-rag-api",
                "key": "rag-api",
                "level": "P1",
                "peak": "P1",
                "reason": "service_down",
                "opened_at": "2026-11-23T03:12:00Z",
                "resolved_at": null,
                "breached": false,
                "duration_seconds": 0,
            },
            "title": "[INCIDENT] P1 - rag-api service down",
            "text": text,
        })
    );
    assert_eq!(h.metric("ops-hook", "delivered"), 1);
}

#[tokio::test]
async fn slack_gets_the_template_as_text_and_blocks() {
    let sink = WebhookSink::start(0).await;
    let plain = receiver("slack-plain", ReceiverKind::Slack, &sink.url("/ok/plain"));
    let mut rich = receiver("slack-rich", ReceiverKind::Slack, &sink.url("/ok/rich"));
    rich.blocks = true;
    let settings = IncidentSettings {
        green_period: Duration::from_secs(60),
        ..IncidentSettings::default()
    };
    let mut h = start(&[plain, rich], &settings);
    let mut incidents = Incidents::default();
    let t0 = fixed("2026-11-23T03:12:00Z");
    only(incidents.on_level(
        "pg",
        Level::P2,
        "failover",
        "new leader pg-1",
        t0,
        &settings,
    ));
    let t1 = t0 + jiff::SignedDuration::from_mins(2);
    incidents.note(
        "pg",
        EntryKind::Action,
        "patroni failover to pg-1".into(),
        t1,
    );
    let t2 = t0 + jiff::SignedDuration::from_mins(5);
    assert!(
        incidents
            .on_level("pg", Level::Ok, "ok", "", t2, &settings)
            .is_empty()
    );
    let t3 = t2 + jiff::SignedDuration::from_mins(1);
    let resolved = only(incidents.tick(t3, &settings));
    assert_eq!(h.notifier.notify(&resolved, t3), 2);
    for _ in 0..2 {
        assert!(h.next_delivery().await.ok);
    }
    let text = "[RESOLVED] P2 - pg failover\n\
                Detected: 2026-11-23 03:12:00 UTC\n\
                Resolved: 2026-11-23 03:18:00 UTC (lasted 6m)\n\
                Impact: failover (P2 detected: failover (new leader pg-1))\n\
                Affected: pg\n\
                Status: resolved after 1m of green monitoring, peak P2\n\
                Actions:\n\
                - 03:14:00 UTC action: patroni failover to pg-1\n\
                Incident: 1-pg";
    let got = sink.received("/ok/plain");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, json!({ "text": text }));
    // The template's lines, in its order.
    let prefixes = [
        "[RESOLVED] P2 - ",
        "Detected: ",
        "Resolved: ",
        "Impact: ",
        "Affected: ",
        "Status: ",
        "Actions:",
    ];
    for (line, prefix) in text.lines().zip(prefixes) {
        assert!(
            line.starts_with(prefix),
            "{line:?} should start with {prefix:?}"
        );
    }
    let got = sink.received("/ok/rich");
    assert_eq!(got[0].body["text"], text);
    assert_eq!(
        got[0].body["blocks"][0]["text"]["text"],
        "[RESOLVED] P2 - pg failover"
    );
    assert_eq!(
        got[0].body["blocks"][1]["text"]["text"],
        text.split_once('\n').unwrap().1
    );
}

#[tokio::test]
async fn a_flaky_receiver_gets_it_on_the_third_attempt_and_a_400_is_not_retried() {
    let sink = WebhookSink::start(2).await;
    let flaky = receiver("flaky", ReceiverKind::Webhook, &sink.url("/flaky/x"));
    let bad = receiver("bad", ReceiverKind::Webhook, &sink.url("/bad/x"));
    let settings = IncidentSettings::default();
    let mut h = start(&[flaky, bad], &settings);
    let mut incidents = Incidents::default();
    let now = jiff::Timestamp::now();
    let e = only(incidents.on_level(
        "redis",
        Level::P3,
        "replica_down",
        "link down",
        now,
        &settings,
    ));
    assert_eq!(h.notifier.notify(&e, now), 2);
    let mut by_name = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let d = h.next_delivery().await;
        by_name.insert(d.receiver.clone(), d);
    }
    let d = &by_name["flaky"];
    assert!(d.ok && d.attempts == 3, "{d:?}");
    assert_eq!(sink.received("/flaky/x").len(), 3);
    let d = &by_name["bad"];
    assert!(!d.ok && d.attempts == 1, "{d:?}");
    assert_eq!(d.error.as_deref(), Some("answered HTTP 400"));
    assert_eq!(sink.received("/bad/x").len(), 1);
    assert_eq!(h.metric("flaky", "delivered"), 1);
    assert_eq!(h.metric("bad", "failed"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_never_blocks_the_caller() {
    // A port nobody listens on; the URL also carries a token-like path that must not leak.
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}/services/T000/B000/XXXXSECRET");
    let dir = tempfile::tempdir().unwrap();
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, &url).unwrap();
    let mut dead = receiver("dead", ReceiverKind::Slack, "http://unused");
    dead.url = None;
    dead.url_from = Some(SecretRef {
        env: None,
        file: Some(url_file),
    });
    dead.retries = 2;
    dead.retry_delay = Duration::from_millis(200);
    dead.queue_size = 2;
    let settings = IncidentSettings::default();
    let mut h = start(&[dead], &settings);
    let mut incidents = Incidents::default();
    let now = jiff::Timestamp::now();
    let e = only(incidents.on_level("api", Level::P1, "service_down", "refused", now, &settings));

    let mut queued = 0;
    for _ in 0..20 {
        queued += h.notifier.notify(&e, now);
    }
    // Each delivery takes at least the two pauses (200 ms + 400 ms) and the queue holds 2: had
    // notify() waited for room, all 20 would be queued and none dropped.
    assert!((2..=3).contains(&queued), "queued {queued}");
    assert_eq!(h.metric("dead", "dropped"), 20 - queued as u64);

    let d = h.next_delivery().await;
    assert!(!d.ok, "{d:?}");
    assert_eq!(d.attempts, 3, "{d:?}");
    let error = d.error.clone().unwrap();
    assert_eq!(error, "request failed: connection_refused");
    assert!(!d.timeline_text().contains("XXXXSECRET"));
    for _ in 1..queued {
        assert!(!h.next_delivery().await.ok);
    }
    assert_eq!(h.metric("dead", "failed"), queued as u64);
}

#[tokio::test]
async fn min_level_and_missing_secrets() {
    let sink = WebhookSink::start(0).await;
    let mut pager = receiver("pager", ReceiverKind::Webhook, &sink.url("/ok/pager"));
    pager.min_level = Level::P1;
    let mut broken = receiver("broken", ReceiverKind::Webhook, &sink.url("/ok/broken"));
    broken.token = Some(SecretRef {
        env: None,
        file: Some("/nonexistent/astreinte-token".into()),
    });
    broken.min_level = Level::P3;
    let settings = IncidentSettings::default();
    let mut h = start(&[pager, broken], &settings);
    let mut incidents = Incidents::default();
    let now = jiff::Timestamp::now();
    let e = only(incidents.on_level("disk", Level::P3, "disk_usage_high", "75 %", now, &settings));
    // P3 is below the pager's P1: only `broken` gets it, and cannot read its token.
    assert_eq!(h.notifier.notify(&e, now), 1);
    let d = h.next_delivery().await;
    assert_eq!(
        (d.receiver.as_str(), d.ok, d.attempts),
        ("broken", false, 0)
    );
    assert!(
        d.error
            .unwrap()
            .starts_with("token: cannot read secret file")
    );
    assert!(sink.received("/ok/broken").is_empty());
    // A resolve of a P1 incident reaches the pager.
    let notice = Notice {
        kind: NoticeKind::Resolved,
        incident: {
            let mut i = incidents.open["disk"].clone();
            i.peak = Level::P1;
            i.resolved_at = Some(now);
            i
        },
        page: None,
        from: None,
        at: now,
    };
    assert_eq!(h.notifier.notify_notice(notice), 2);
    let mut oks = vec![];
    for _ in 0..2 {
        let d = h.next_delivery().await;
        oks.push((d.receiver, d.ok));
    }
    oks.sort();
    assert_eq!(
        oks,
        [("broken".to_owned(), false), ("pager".to_owned(), true)]
    );
    assert_eq!(sink.received("/ok/pager").len(), 1);
}
