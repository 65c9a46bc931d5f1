//! Rendering tests of the status page (pure: a fixed `now`, a hand-made board).

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::config::{IncidentSettings, Mode};
use crate::incident::Incidents;
use crate::level::Level;
use crate::policy::{Decision, Hold};
use crate::remediation::DecisionEntry;
use crate::status::ProbeStatus;
use crate::when;

fn at(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn status(probe: &str, outcome: &'static str, level: Level, detail: &str) -> ProbeStatus {
    ProbeStatus {
        probe: probe.into(),
        kind: "http",
        target: probe.into(),
        outcome,
        reason: if outcome == "healthy" {
            "ok".into()
        } else {
            "connect_refused".into()
        },
        value: None,
        detail: detail.into(),
        latency_ms: 1.5,
        at: at("2026-11-23T11:59:50Z"),
        level,
        level_reason: "2 consecutive failures".into(),
    }
}

fn row(status: ProbeStatus) -> ProbeRow {
    ProbeRow {
        id: status.probe.to_string(),
        kind: "http",
        what: "http://127.0.0.1:1/health?a=1&b=2".into(),
        status: Some(status),
    }
}

fn page(probes: &[ProbeRow], incidents: &Incidents, decisions: &[DecisionEntry]) -> String {
    let tz = when::policy_zone(Some("Europe/Paris"));
    render(&PageData {
        now: at("2026-11-23T12:00:00Z"),
        tz: &tz,
        mode: Mode::DryRun,
        leader: true,
        version: "0.1.0",
        config_source: "/etc/astreinte",
        started: at("2026-11-23T11:00:00Z"),
        probes,
        incidents,
        decisions,
    })
}

#[test]
fn a_script_in_a_probe_detail_is_escaped() {
    let evil = status(
        "api",
        "failed",
        Level::P1,
        "HTTP 500: <script>alert('x')</script>",
    );
    let html = page(&[row(evil)], &Incidents::default(), &[]);
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("HTTP 500: &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(html.contains("health?a=1&amp;b=2"), "{html}");
}

#[test]
fn the_page_shows_mode_probes_incidents_and_decisions() {
    let settings = IncidentSettings::default();
    let mut incidents = Incidents::default();
    incidents.on_level(
        "api",
        Level::P1,
        "service_down",
        "connection refused <b>",
        at("2026-11-23T11:57:00Z"),
        &settings,
    );
    let decisions = [DecisionEntry {
        rule: "restart-api".into(),
        decision: Decision::Hold(Hold::Cooldown {
            left: Duration::from_secs(240),
        }),
        line: "hold restart api (rule restart-api): cooldown, 4m left".into(),
        at: at("2026-11-23T11:59:00Z"),
        incident: Some("1-api".into()),
    }];
    let probes = [
        row(status("api", "failed", Level::P1, "connection refused")),
        row(status("db", "healthy", Level::Ok, "ok")),
        ProbeRow {
            id: "later".into(),
            kind: "tcp",
            what: "127.0.0.1:5432".into(),
            status: None,
        },
    ];
    let html = page(&probes, &incidents, &decisions);
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains("http-equiv=\"refresh\" content=\"10\""));
    assert!(html.contains(">dry-run</span>"), "{html}");
    assert!(html.contains("id=\"leader\">yes<"), "{html}");
    assert!(
        html.contains("id=\"banner\">1 open incident, worst P1<"),
        "{html}"
    );
    assert!(!html.contains("(s)"), "{html}");
    // The incident card, with its anchor and its timeline in Paris time.
    assert!(html.contains("id=\"incident-1-api\""), "{html}");
    assert!(
        html.contains("P1 detected: service_down (connection refused &lt;b&gt;)"),
        "{html}"
    );
    assert!(html.contains(">12:57:00</span>"), "{html}");
    assert!(html.contains("3 min ago"), "{html}");
    // Probe rows are coloured by level; a probe without a result says so.
    assert!(html.contains("class=\"row-P1\" id=\"probe-api\""), "{html}");
    assert!(html.contains("class=\"row-ok\" id=\"probe-db\""), "{html}");
    assert!(html.contains("no result yet"), "{html}");
    // The decision, with its one-line reason and a link to the incident.
    assert!(html.contains("cooldown, 4m left"), "{html}");
    assert!(html.contains("href=\"#incident-1-api\""), "{html}");
}

#[test]
fn resolved_incidents_link_to_their_post_mortem() {
    let settings = IncidentSettings {
        green_period: Duration::from_secs(60),
        ..IncidentSettings::default()
    };
    let mut incidents = Incidents::default();
    let t0 = at("2026-11-23T11:00:00Z");
    incidents.on_level("db", Level::P2, "failover", "x", t0, &settings);
    incidents.on_level(
        "db",
        Level::Ok,
        "ok",
        "",
        at("2026-11-23T11:10:00Z"),
        &settings,
    );
    incidents.tick(at("2026-11-23T11:11:00Z"), &settings);
    incidents.recent[0].postmortem = Some("# Post-mortem".into());
    let html = page(&[], &incidents, &[]);
    assert!(html.contains("No open incident."), "{html}");
    assert!(
        html.contains("href=\"/incidents/1-db/postmortem\""),
        "{html}"
    );
    assert!(html.contains(">11 min<"), "{html}");
}

#[test]
fn the_page_renders_from_the_daemon_state() {
    let config = crate::config::load_embedded().unwrap();
    let expected = config.enabled_probes().count();
    let state = AppState {
        config: arc_swap::ArcSwap::new(Arc::new(config)),
        metrics: Arc::new(crate::metrics::Metrics::new()),
        status: Arc::new(crate::status::StatusBoard::default()),
        heartbeat: Arc::default(),
        started: at("2026-11-23T11:00:00Z"),
    };
    let html = render_state(&state, at("2026-11-23T12:00:00Z"));
    assert_eq!(html.matches("no result yet").count(), expected, "{html}");
    assert!(
        html.contains("Waiting for the first probe results"),
        "{html}"
    );
}

#[test]
fn long_timelines_show_the_detection_and_the_latest_entries() {
    let settings = IncidentSettings::default();
    let mut incidents = Incidents::default();
    let t0 = at("2026-11-23T11:00:00Z");
    incidents.on_level("api", Level::P2, "slow", "x", t0, &settings);
    for n in 0..300 {
        let text = format!("note {n}");
        incidents.note("api", crate::incident::EntryKind::Decision, text, t0);
    }
    let html = page(&[], &incidents, &[]);
    assert!(html.contains("P2 detected: slow"), "{html}");
    assert!(html.contains("101 entries not shown"), "{html}");
    assert!(!html.contains(">note 100<"), "{html}");
    assert!(
        html.contains(">note 101<") && html.contains(">note 299<"),
        "{html}"
    );
    assert_eq!(html.matches("class=\"kind kind-").count(), 200);
}

#[test]
fn a_follower_says_its_incidents_are_the_leaders() {
    let tz = when::policy_zone(None);
    let render_as = |leader| {
        render(&PageData {
            now: at("2026-11-23T12:00:00Z"),
            tz: &tz,
            mode: Mode::Enforce,
            leader,
            version: "0.1.0",
            config_source: "/etc/astreinte",
            started: at("2026-11-23T11:00:00Z"),
            probes: &[],
            incidents: &Incidents::default(),
            decisions: &[],
        })
    };
    assert!(!render_as(true).contains("follower-note"));
    let html = render_as(false);
    assert!(
        html.contains("id=\"follower-note\">This replica is not the leader"),
        "{html}"
    );
}
