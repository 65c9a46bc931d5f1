// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::time::Duration;

use super::*;
use crate::incident::{Event, Incidents};
use crate::level::Level;

fn t(minutes: i64) -> jiff::Timestamp {
    let t0: jiff::Timestamp = "2026-11-23T03:12:00Z".parse().unwrap();
    t0 + jiff::SignedDuration::from_mins(minutes)
}

fn one(events: Vec<Event>) -> Event {
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

/// rag-api goes down at t0 (P1), with a decision and an action at t0+2m.
fn opened(incidents: &mut Incidents, s: &IncidentSettings) -> Event {
    let e = one(incidents.on_level("rag-api", Level::P1, "service_down", "HTTP 503", t(0), s));
    incidents.note(
        "rag-api",
        EntryKind::Decision,
        "rule api-restart: act".into(),
        t(2),
    );
    incidents.note(
        "rag-api",
        EntryKind::Action,
        "rollout restart rag-production/deployment/rag-api".into(),
        t(2),
    );
    e
}

#[test]
fn an_opened_incident_follows_the_template_exactly() {
    let s = IncidentSettings::default();
    let mut incidents = Incidents::default();
    let e = one(incidents.on_level("rag-api", Level::P1, "service_down", "HTTP 503", t(0), &s));
    let m = render(&Notice::new(&e, t(0)), &s);
    assert_eq!(m.title, "[INCIDENT] P1 - rag-api service down");
    assert_eq!(
        m.text,
        "[INCIDENT] P1 - rag-api service down\n\
         Detected: 2026-11-23 03:12:00 UTC\n\
         Impact: service down (P1 detected: service_down (HTTP 503))\n\
         Affected: rag-api\n\
         Status: open, P1\n\
         Actions: none yet\n\
         ETA: by 03:27:00 UTC (P1 response target 15m)\n\
         Incident: 1-rag-api"
    );
    assert!(m.body().starts_with("Detected: "), "{}", m.body());
}

#[test]
fn each_event_renders_its_lines() {
    let s = IncidentSettings::default();
    struct Case {
        name: &'static str,
        notice: Notice,
        lines: Vec<&'static str>,
        absent: Vec<&'static str>,
    }
    let mut cases = vec![];

    // Escalation P2 -> P1 after 5 minutes, with the actions so far.
    let mut inc = Incidents::default();
    one(inc.on_level("rag-api", Level::P2, "slow", "900 ms", t(0), &s));
    inc.note(
        "rag-api",
        EntryKind::Action,
        "scale rag-api to 6".into(),
        t(3),
    );
    let e = one(inc.on_level("rag-api", Level::P1, "service_down", "HTTP 503", t(5), &s));
    cases.push(Case {
        name: "escalated",
        notice: Notice::new(&e, t(5)),
        lines: vec![
            "[ESCALATED] P1 - rag-api service down",
            "Detected: 2026-11-23 03:12:00 UTC",
            "Impact: service down (escalated P2 → P1: service_down (HTTP 503))",
            "Status: escalated P2 → P1, open for 5m",
            "Actions:",
            "- 03:15:00 UTC action: scale rag-api to 6",
            "ETA: by 03:27:00 UTC (P1 response target 15m)",
        ],
        absent: vec!["Resolved:"],
    });

    // Past the 15 minutes of P1.
    let mut inc = Incidents::default();
    opened(&mut inc, &s);
    let e = one(inc.tick(t(16), &s));
    cases.push(Case {
        name: "breached",
        notice: Notice::new(&e, t(16)),
        lines: vec![
            "[BREACHED] P1 - rag-api service down",
            "Status: P1 response target of 15m breached, open for 16m, now P1",
            "- 03:14:00 UTC decision: rule api-restart: act",
            "- 03:14:00 UTC action: rollout restart rag-production/deployment/rag-api",
            "ETA: overdue since 03:27:00 UTC (P1 response target 15m)",
        ],
        absent: vec!["Actions: none yet"],
    });

    // Green at +5m, resolved 15 minutes later: the duration and the actions, no ETA.
    let mut inc = Incidents::default();
    opened(&mut inc, &s);
    assert!(
        inc.on_level("rag-api", Level::Ok, "", "", t(5), &s)
            .is_empty()
    );
    let e = one(inc.tick(t(20), &s));
    cases.push(Case {
        name: "resolved",
        notice: Notice::new(&e, t(20)),
        lines: vec![
            "[RESOLVED] P1 - rag-api service down",
            "Detected: 2026-11-23 03:12:00 UTC",
            "Resolved: 2026-11-23 03:32:00 UTC (lasted 20m)",
            "Status: resolved after 15m of green monitoring, peak P1",
            "- 03:14:00 UTC action: rollout restart rag-production/deployment/rag-api",
            "Incident: 1-rag-api",
        ],
        absent: vec!["ETA:"],
    });

    // Seven actions: the last five, and how many were left out.
    let mut inc = Incidents::default();
    let e = one(inc.on_level("pg", Level::P2, "failover", "new leader", t(0), &s));
    for i in 0..7 {
        inc.note("pg", EntryKind::Action, format!("step {i}"), t(i));
    }
    let current = inc.find(&incident_id(&e)).unwrap().clone();
    cases.push(Case {
        name: "many actions",
        notice: Notice {
            kind: NoticeKind::Opened,
            incident: current,
            from: None,
            at: t(7),
            page: None,
        },
        lines: vec![
            "[INCIDENT] P2 - pg failover",
            "- (2 earlier)",
            "- 03:14:00 UTC action: step 2",
            "- 03:18:00 UTC action: step 6",
            "ETA: by 03:42:00 UTC (P2 response target 30m)",
        ],
        absent: vec!["step 1"],
    });

    // A level without a response target.
    let mut custom = IncidentSettings::default();
    custom.response_targets.remove(&Level::P4);
    let mut inc = Incidents::default();
    let e = one(inc.on_level("disk", Level::P4, "disk_usage_high", "71 %", t(0), &custom));
    cases.push(Case {
        name: "no target",
        notice: Notice::new(&e, t(0)),
        lines: vec![
            "[INCIDENT] P4 - disk disk usage high",
            "ETA: no response target set for P4",
        ],
        absent: vec![],
    });

    for c in cases {
        let settings = if c.name == "no target" { &custom } else { &s };
        let text = render(&c.notice, settings).text;
        let lines: Vec<&str> = text.lines().collect();
        for want in &c.lines {
            assert!(
                lines.contains(want),
                "{}: no line `{want}` in\n{text}",
                c.name
            );
        }
        for not in &c.absent {
            assert!(!text.contains(not), "{}: `{not}` in\n{text}", c.name);
        }
    }
}

fn incident_id(e: &Event) -> String {
    match e {
        Event::Opened(i) | Event::Breached(i) | Event::Resolved(i) => i.id.clone(),
        Event::Escalated { incident, .. } => incident.id.clone(),
        Event::Paged { incident, .. } => {
            incident.as_ref().map(|i| i.id.clone()).unwrap_or_default()
        }
    }
}

#[test]
fn a_page_renders_as_a_p1_page() {
    let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    let n = Notice::new(
        &Event::Paged {
            incident: None,
            text: "6 of 8 probes failing".into(),
        },
        at,
    );
    assert_eq!((n.kind, n.level()), (NoticeKind::Paged, Level::P1));
    let m = render(&n, &IncidentSettings::default());
    assert!(m.title.starts_with("[PAGE] P1"), "{}", m.title);
    assert!(m.text.contains("6 of 8 probes failing"), "{}", m.text);
}

#[test]
fn the_level_of_a_notice_is_the_peak_once_it_ends() {
    let s = IncidentSettings {
        green_period: Duration::ZERO,
        ..IncidentSettings::default()
    };
    let mut inc = Incidents::default();
    one(inc.on_level("a", Level::P1, "down", "", t(0), &s));
    assert!(
        inc.on_level("a", Level::P3, "slow", "", t(1), &s)
            .is_empty()
    );
    assert!(inc.on_level("a", Level::Ok, "", "", t(2), &s).is_empty());
    let e = one(inc.tick(t(2), &s));
    let n = Notice::new(&e, t(2));
    assert_eq!((n.kind, n.level()), (NoticeKind::Resolved, Level::P1));
}
