//! Incident lifecycle tests with the clock as a parameter.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::time::Duration;

use super::*;

fn t(s: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000 + s).unwrap()
}

fn settings() -> IncidentSettings {
    IncidentSettings::default()
}

#[test]
fn opens_once_and_resolves_exactly_after_the_green_period() {
    let s = settings();
    let mut inc = Incidents::default();
    let ev = inc.on_level("rag", Level::P2, "bad_status", "HTTP 500", t(0), &s);
    assert!(matches!(ev.as_slice(), [Event::Opened(i)] if i.level == Level::P2));
    // The same level again opens nothing new.
    assert!(
        inc.on_level("rag", Level::P2, "bad_status", "HTTP 500", t(10), &s)
            .is_empty()
    );
    assert_eq!(inc.open.len(), 1);
    assert!(
        inc.on_level("rag", Level::Ok, "ok", "", t(60), &s)
            .is_empty()
    );
    let green = s.green_period.as_secs() as i64;
    assert!(
        inc.tick(t(60 + green - 1), &s).is_empty(),
        "not before the green period"
    );
    let ev = inc.tick(t(60 + green), &s);
    assert!(matches!(ev.as_slice(), [Event::Resolved(i)] if i.resolved_at == Some(t(60 + green))));
    assert!(inc.open.is_empty());
    assert_eq!(inc.recent.len(), 1);
}

#[test]
fn a_relapse_restarts_the_green_period() {
    let s = settings();
    let mut inc = Incidents::default();
    inc.on_level("rag", Level::P1, "timeout", "", t(0), &s);
    inc.on_level("rag", Level::Ok, "ok", "", t(100), &s);
    inc.on_level("rag", Level::P1, "timeout", "", t(200), &s);
    inc.on_level("rag", Level::Ok, "ok", "", t(300), &s);
    let green = s.green_period.as_secs() as i64;
    assert!(
        inc.tick(t(100 + green), &s)
            .iter()
            .all(|e| !matches!(e, Event::Resolved(_)))
    );
    assert!(matches!(
        inc.tick(t(300 + green), &s).as_slice(),
        [Event::Resolved(_)]
    ));
    let kinds: Vec<EntryKind> = inc.recent[0].timeline.iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EntryKind::Relapsed));
}

#[test]
fn escalation_notifies_once_per_rise() {
    let s = settings();
    let mut inc = Incidents::default();
    inc.on_level("db", Level::P3, "replica_lag", "", t(0), &s);
    let ev = inc.on_level("db", Level::P1, "split_brain", "", t(10), &s);
    assert!(
        matches!(ev.as_slice(), [Event::Escalated { from: Level::P3, incident }] if incident.level == Level::P1)
    );
    assert!(
        inc.on_level("db", Level::P1, "split_brain", "", t(20), &s)
            .is_empty()
    );
    assert!(
        inc.on_level("db", Level::P2, "no_leader", "", t(30), &s)
            .is_empty(),
        "improving does not notify"
    );
    assert_eq!(inc.open["db"].peak, Level::P1);
    assert_eq!(inc.open["db"].level, Level::P2);
}

#[test]
fn an_incident_open_past_its_target_is_breached_once() {
    let s = settings();
    let mut inc = Incidents::default();
    inc.on_level("k", Level::P1, "timeout", "", t(0), &s);
    assert!(inc.tick(t(14 * 60), &s).is_empty());
    assert!(matches!(
        inc.tick(t(15 * 60 + 1), &s).as_slice(),
        [Event::Breached(_)]
    ));
    assert!(inc.tick(t(16 * 60), &s).is_empty());
    assert!(inc.open["k"].breached);
}

#[test]
fn ids_are_unique_and_survive_serialization() {
    let s = settings();
    let mut inc = Incidents::default();
    inc.on_level("a/b c", Level::P3, "x", "", t(0), &s);
    inc.on_level("a/b c", Level::Ok, "ok", "", t(1), &s);
    inc.tick(t(1) + s.green_period + Duration::from_secs(1), &s);
    inc.on_level("a/b c", Level::P3, "x", "", t(5000), &s);
    let ids: Vec<String> = inc
        .recent
        .iter()
        .chain(inc.open.values())
        .map(|i| i.id.clone())
        .collect();
    assert_eq!(ids, ["1-a-b-c", "2-a-b-c"]);
    let json = serde_json::to_string(&inc).unwrap();
    let back: Incidents = serde_json::from_str(&json).unwrap();
    assert_eq!(back, inc);
}

#[test]
fn notes_go_to_the_open_incident() {
    let s = settings();
    let mut inc = Incidents::default();
    assert!(!inc.note("k", EntryKind::Decision, "x".into(), t(0)));
    inc.on_level("k", Level::P2, "r", "", t(0), &s);
    assert!(inc.note(
        "k",
        EntryKind::Decision,
        "hold restart: cooldown".into(),
        t(1)
    ));
    assert_eq!(
        inc.open["k"].timeline.last().unwrap().kind,
        EntryKind::Decision
    );
}

#[test]
fn a_removed_target_resolves_its_open_incident_at_once_and_says_why() {
    let s = settings();
    let mut inc = Incidents::default();
    assert_eq!(inc.resolve_removed("k", t(0), &s), None);
    inc.on_level("k", Level::P2, "r", "", t(0), &s);
    let Some(Event::Resolved(resolved)) = inc.resolve_removed("k", t(90), &s) else {
        panic!("not resolved: {inc:?}");
    };
    assert!(inc.open.is_empty());
    assert_eq!(inc.recent.front(), Some(&resolved));
    assert_eq!(resolved.resolved_at, Some(t(90)));
    let last = resolved.timeline.last().unwrap();
    assert_eq!(last.kind, EntryKind::Resolved);
    assert_eq!(
        last.text,
        "resolved after 1m 30s: target removed from configuration"
    );
    assert!(resolved.removed_from_config());
    // A key that goes green the usual way is not "removed".
    inc.on_level("j", Level::P3, "r", "", t(100), &s);
    inc.on_level("j", Level::Ok, "ok", "", t(101), &s);
    let events = inc.tick(t(101) + s.green_period, &s);
    assert!(matches!(&events[..], [Event::Resolved(i)] if !i.removed_from_config()));
}

/// Issue #15 (6): an open incident follows the reason of its current level ("no leader" must
/// not stay the reason once a leader runs and a member is down), and a resolved one is named
/// after its worst moment (a split brain that ended as a lagging replica resolves as a split
/// brain, not "replica not streaming").
#[test]
fn the_reason_follows_the_level_and_the_resolved_title_names_the_peak() {
    let s = settings();
    let mut inc = Incidents::default();
    inc.on_level("pg", Level::P2, "no_leader", "", t(0), &s);
    inc.on_level("pg", Level::P2, "member_down", "", t(10), &s);
    let open = &inc.open["pg"];
    assert_eq!(open.reason, "member_down");
    assert_eq!(open.title(), "pg member down");
    assert!(
        open.timeline
            .iter()
            .any(|e| e.text.contains("now member_down (was no_leader)"))
    );

    inc.on_level("pg", Level::P1, "split_brain", "", t(20), &s);
    inc.on_level("pg", Level::P3, "replica_not_streaming", "", t(30), &s);
    inc.on_level("pg", Level::Ok, "ok", "", t(40), &s);
    let ev = inc.tick(t(40) + s.green_period, &s);
    let [Event::Resolved(done)] = ev.as_slice() else {
        panic!("{ev:?}")
    };
    assert_eq!((done.peak, done.worst_reason()), (Level::P1, "split_brain"));
    assert_eq!(done.title(), "pg split brain");
}
