//! The clock under ±1 h jumps of the system time, and what the pure modules (policy,
//! scoring, incidents) make of its stamps: cooldowns, budgets, `for` durations, flap damping
//! and green periods count monotonic time; windows follow the wall clock.

// Repeated from the parent's `#[cfg(test)] mod tests;`: this whole file is test code.
#[cfg(test)]
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::skew::{Change, SkewWatch};
use super::*;
use crate::config::{Config, IncidentSettings, load_from_strings};
use crate::incident::Incidents;
use crate::journal::{ActionRecord, ActionResult};
use crate::level::Level;
use crate::policy::{Decision, Facts, TriggerState, decide};
use crate::probes::{Observation, Outcome, ProbeKind};
use crate::score::Scorer;

const HOUR: SignedDuration = SignedDuration::from_hours(1);

/// 2026-01-15 12:00 UTC.
fn noon() -> Timestamp {
    "2026-01-15T12:00:00Z".parse().unwrap()
}

fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// One tcp probe and one rule: `for = 2m`, cooldown 5 min, budget 1 per hour (`extra`: more
/// rule fields).
fn config(extra: &str) -> Config {
    load_from_strings(
        "test/policy",
        "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        &format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"reboot\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\", for = \"2m\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"http://127.0.0.1:1/reboot\" }}\n\
             cooldown = \"5m\"\nbudget = {{ max = 1, per = \"1h\" }}\n{extra}\n"
        ),
    )
    .unwrap()
}

fn action(started_at: Timestamp) -> ActionRecord {
    ActionRecord {
        id: 1,
        rule: "reboot".into(),
        action: "http".into(),
        target: "http".into(),
        key: "api".into(),
        incident: None,
        started_at,
        ended_at: Some(started_at),
        result: ActionResult::Succeeded,
        detail: String::new(),
        undo: None,
        undone: false,
        verified: None,
        by: None,
        deadline: None,
        interrupted_by: None,
        undo_run: None,
    }
}

/// The decision at `now` for a trigger at P1 since `since`.
fn decision(c: &Config, now: Now, since: Timestamp, actions: &[ActionRecord]) -> Decision {
    let f = Facts {
        now: now.at,
        wall: now.wall,
        trigger: TriggerState {
            level: Level::P1,
            reason: "connection_refused".into(),
            since: Some(since),
            leader_lost_since: None,
            unknown_since: None,
            stale_evidence: None,
        },
        escalated: false,
        is_leader: true,
        failing: 1,
        total: 10,
        failing_dependencies: vec![],
        journal_problem: None,
        actions,
        incident: None,
        precondition: Ok(()),
    };
    decide(c, &c.rules[0], &f)
}

#[test]
fn a_wall_jump_moves_the_wall_reading_only() {
    let (clock, hand) = Clock::manual(noon());
    hand.advance(Duration::from_secs(10));
    hand.jump_wall(HOUR);
    assert_eq!(clock.now(), noon() + SignedDuration::from_secs(10));
    assert_eq!(clock.wall(), noon() + SignedDuration::from_secs(3610));
    assert_eq!(skew::skew_of(&clock), HOUR);
    hand.jump_wall(-HOUR * 2);
    assert_eq!(skew::skew_of(&clock), -HOUR);
    assert_eq!(clock.now(), noon() + SignedDuration::from_secs(10));
}

#[test]
fn the_system_clock_starts_at_the_wall_clock_and_never_goes_back() {
    let clock = Clock::system();
    let a = clock.now();
    let b = clock.now();
    assert!(b >= a);
    // This test process's system time does not jump.
    assert!(skew::skew_of(&clock).abs() < SignedDuration::from_secs(1));
}

#[test]
fn elapsed_from_a_future_stamp_is_zero() {
    assert_eq!(elapsed(noon() + HOUR, noon()), Duration::from_secs(3600));
    assert_eq!(elapsed(noon(), noon() + HOUR), Duration::ZERO);
}

#[test]
fn one_jump_is_one_warning() {
    let mut w = SkewWatch::default();
    assert_eq!(w.check(SignedDuration::from_secs(2)), None, "noise");
    assert_eq!(
        w.check(HOUR),
        Some(Change::Jumped {
            by: HOUR,
            skew: HOUR
        })
    );
    assert_eq!(
        w.check(HOUR + SignedDuration::from_secs(1)),
        None,
        "same jump"
    );
    assert_eq!(
        w.check(-HOUR),
        Some(Change::Jumped {
            by: -HOUR * 2,
            skew: -HOUR
        })
    );
    assert_eq!(w.check(SignedDuration::from_secs(1)), Some(Change::Back));
    assert_eq!(w.check(SignedDuration::ZERO), None);
}

#[test]
fn the_skew_gauge_shows_the_jump() {
    let (clock, hand) = Clock::manual(noon());
    let metrics = crate::metrics::Metrics::new();
    let mut w = SkewWatch::default();
    hand.jump_wall(HOUR);
    assert!(matches!(
        skew::observe(&clock, &mut w, &metrics),
        Some(Change::Jumped { .. })
    ));
    let text = metrics.encode();
    assert!(
        text.contains("astreinte_clock_skew_seconds 3600.0"),
        "{text}"
    );
    hand.jump_wall(-HOUR * 2);
    skew::observe(&clock, &mut w, &metrics);
    assert!(
        metrics
            .encode()
            .contains("astreinte_clock_skew_seconds -3600.0")
    );
}

#[test]
fn cooldown_and_budget_hold_through_jumps_both_ways() {
    let c = config("");
    let (clock, hand) = Clock::manual(noon());
    let since = clock.now();
    hand.advance(mins(3));
    let acted = [action(clock.now())];
    hand.advance(Duration::from_secs(30));

    // +1 h: a wall-clock daemon would find both the cooldown and the budget over.
    hand.jump_wall(HOUR);
    let now = clock.read();
    assert_eq!(
        decision(&c, now, since, &acted).reason(),
        "budget_exhausted"
    );
    assert_eq!(
        decision(&c, Now::from(now.wall), since, &acted).reason(),
        "ok",
        "what stamping with the wall clock would do"
    );
    // -1 h from the true time (-2 h from there): a wall-clock daemon would see the action in
    // the future; it still counts.
    hand.jump_wall(-HOUR * 2);
    assert_eq!(
        decision(&c, clock.read(), since, &acted).reason(),
        "budget_exhausted"
    );

    // The cooldown alone (a budget of 2): over after 5 real minutes, not before.
    let mut c2_config = c.clone();
    c2_config.rules[0].budget = Some(crate::config::Budget {
        max: 2,
        per: Duration::from_secs(3600),
    });
    hand.jump_wall(HOUR * 2);
    assert_eq!(
        decision(&c2_config, clock.read(), since, &acted).reason(),
        "cooldown"
    );
    hand.advance(mins(5));
    assert_eq!(
        decision(&c2_config, clock.read(), since, &acted).reason(),
        "ok"
    );
    // The budget of one frees up an hour after the action, by the monotonic clock.
    assert_eq!(
        decision(&c, clock.read(), since, &acted).reason(),
        "budget_exhausted"
    );
    hand.advance(mins(55));
    assert_eq!(decision(&c, clock.read(), since, &acted).reason(), "ok");
}

#[test]
fn a_for_duration_is_not_shortened_or_stretched_by_a_jump() {
    let c = config("");
    let (clock, hand) = Clock::manual(noon());
    let since = clock.now();
    hand.advance(Duration::from_secs(30));
    hand.jump_wall(HOUR);
    assert_eq!(decision(&c, clock.read(), since, &[]).reason(), "too_early");
    hand.jump_wall(-HOUR * 2);
    hand.advance(mins(2));
    assert_eq!(decision(&c, clock.read(), since, &[]).reason(), "ok");
}

#[test]
fn windows_follow_the_wall_clock() {
    // 22:00–04:00 UTC: at noon the rule is outside it; after a jump to 23:00 it is inside.
    let c = config("windows = [{ from = \"22:00\", to = \"04:00\" }]");
    let (clock, hand) = Clock::manual(noon());
    let since = clock.now();
    hand.advance(mins(3));
    assert_eq!(
        decision(&c, clock.read(), since, &[]).reason(),
        "outside_window"
    );
    hand.jump_wall(HOUR * 11);
    assert_eq!(decision(&c, clock.read(), since, &[]).reason(), "ok");
}

#[test]
fn entries_from_a_previous_process_ahead_in_time_still_count() {
    // The previous process stamped its action 2 h ahead of this one's clock.
    let c = config("");
    let now = noon();
    let ahead = [action(now + HOUR * 2)];
    let since = now - SignedDuration::from_mins(10);
    assert_eq!(
        decision(&c, Now::from(now), since, &ahead).reason(),
        "budget_exhausted"
    );
    // It ages out an hour after its stamp (3 h from now), not an hour after now.
    let later = now + HOUR * 3 - SignedDuration::from_secs(1);
    assert_eq!(
        decision(&c, Now::from(later), since, &ahead).reason(),
        "budget_exhausted"
    );
    assert_eq!(
        decision(
            &c,
            Now::from(later + SignedDuration::from_secs(1)),
            since,
            &ahead
        )
        .reason(),
        "ok"
    );
}

fn no_leader(at: Timestamp) -> Observation {
    Observation {
        probe: Arc::from("api"),
        kind: ProbeKind::Tcp,
        target: Arc::from("api"),
        outcome: Outcome::failed("no_leader"),
        detail: String::new(),
        latency: Duration::from_millis(1),
        at,
        measurements: vec![],
    }
}

#[test]
fn damping_durations_count_monotonic_time() {
    // No leader for longer than the failover TTL (30 s) is a P1; a +1 h jump 10 s into the
    // outage must not make it one.
    let c = config("");
    let p = c.probes[0].clone();
    let d = c.damping(&p);
    let (clock, hand) = Clock::manual(noon());
    let mut s = Scorer::default();
    s.step(&p, &d, c.interval(&p), &no_leader(clock.now()));
    hand.advance(Duration::from_secs(5));
    s.step(&p, &d, c.interval(&p), &no_leader(clock.now()));
    assert_eq!(s.get("api").unwrap().level, Level::P2);
    hand.advance(Duration::from_secs(5));
    hand.jump_wall(HOUR);
    s.step(&p, &d, c.interval(&p), &no_leader(clock.now()));
    assert_eq!(s.get("api").unwrap().level, Level::P2, "10 s, not 1 h");
    hand.jump_wall(-HOUR * 2);
    hand.advance(Duration::from_secs(25));
    s.step(&p, &d, c.interval(&p), &no_leader(clock.now()));
    s.step(&p, &d, c.interval(&p), &no_leader(clock.now()));
    assert_eq!(s.get("api").unwrap().level, Level::P1, "35 s: past the TTL");
}

#[test]
fn green_periods_count_monotonic_time_and_wait_for_future_stamps() {
    let settings = IncidentSettings::default();
    let (clock, hand) = Clock::manual(noon());
    let mut inc = Incidents::default();
    inc.on_level("api", Level::P2, "down", "", clock.now(), &settings);
    hand.advance(mins(1));
    inc.on_level("api", Level::Ok, "ok", "", clock.now(), &settings);
    hand.advance(mins(1));
    hand.jump_wall(HOUR);
    assert_eq!(
        inc.clone().tick(clock.wall(), &settings).len(),
        1,
        "what stamping with the wall clock would do: resolved after 1 min"
    );
    assert!(inc.tick(clock.now(), &settings).is_empty(), "1 min green");
    hand.jump_wall(-HOUR * 2);
    hand.advance(mins(13));
    assert!(inc.tick(clock.now(), &settings).is_empty(), "14 min green");
    hand.advance(mins(1));
    assert_eq!(inc.tick(clock.now(), &settings).len(), 1, "15 min green");

    // An incident carried over from a process whose clock was 1 h ahead: green since "the
    // future" is green for zero minutes, not for an hour.
    let mut carried = Incidents::default();
    let ahead = noon() + HOUR;
    carried.on_level("api", Level::P2, "down", "", ahead, &settings);
    carried.on_level("api", Level::Ok, "ok", "", ahead, &settings);
    assert!(carried.tick(noon(), &settings).is_empty());
    assert!(!carried.open["api"].breached);
    assert_eq!(
        carried.tick(ahead + settings.green_period, &settings).len(),
        1
    );
}
