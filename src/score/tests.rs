//! Table-driven tests of the damping rules and of scoring whole observation sequences.

// This file is the body of a `#[cfg(test)] mod`; the attribute repeats it for readers.
#[cfg(test)]
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::probes::ProbeKind;

/// Results one second apart, scored with a 1 s interval.
const EVERY_SECOND: Duration = Duration::from_secs(1);

fn at(second: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_700_000_000 + second).unwrap()
}

fn hist(levels: &[Level]) -> VecDeque<Sample> {
    levels
        .iter()
        .zip(0..)
        .map(|(l, i)| Sample::new(*l, &Reason::Owned(format!("r{}", l.as_str())), at(i)))
        .collect()
}

use Level::{Ok as OK, P1, P2, P3};

#[test]
fn damping_table() {
    let d = Damping::default(); // enter 2, 3 of 5, leave 3, 30 % of 10
    let cases: &[(&str, Level, &[Level], Level)] = &[
        ("one bad result does not enter", OK, &[OK, OK, P1], OK),
        ("two consecutive enter", OK, &[OK, P1, P1], P1),
        ("3 of the last 5 enter", OK, &[P1, OK, P1, OK, P1], P1),
        ("2 of the last 5 do not", OK, &[OK, P1, OK, OK, P1], OK),
        (
            "a worse level is entered the same way",
            P3,
            &[P3, P3, P1, P1],
            P1,
        ),
        ("one good result does not leave", P1, &[P1, P1, OK], P1),
        ("two good results do not leave", P1, &[P1, P1, OK, OK], P1),
        ("three good results leave", P1, &[P1, P1, OK, OK, OK], OK),
        (
            "leaving lands on the level still seen",
            P1,
            &[P1, P1, P3, P3, P3],
            P3,
        ),
        ("flapping stays in", P1, &[P1, OK, P1, OK, P1, OK], P1),
    ];
    for (name, current, history, want) in cases {
        let (got, _) = damped(*current, &hist(history), &d, EVERY_SECOND);
        assert_eq!(got, *want, "{name}");
    }
}

#[test]
fn frequent_intermittent_errors_are_p2() {
    let d = Damping::default();
    // 3 failures in 10, never two in a row nor 3 of 5.
    let h = hist(&[P1, OK, OK, OK, P1, OK, OK, OK, P1, OK]);
    let (level, reason) = damped(OK, &h, &d, EVERY_SECOND);
    assert_eq!((level, &*reason), (P2, "intermittent_errors"));
    let h = hist(&[P1, OK, OK, OK, OK, OK, OK, OK, P1, OK]);
    assert_eq!(
        damped(OK, &h, &d, EVERY_SECOND).0,
        OK,
        "2 in 10 is below 30 %"
    );
    // One solid outage that just ended is not intermittent: it clears after `leave_after`.
    let h = hist(&[P1, P1, P1, P1, P1, P1, P1, OK, OK, OK]);
    assert_eq!(damped(P1, &h, &d, EVERY_SECOND).0, OK);
}

#[test]
fn reason_is_the_latest_at_that_level() {
    let d = Damping::default();
    let h: VecDeque<Sample> = [(P1, "timeout", 0), (P1, "connection_refused", 1)]
        .map(|(l, r, t)| Sample::new(l, &Reason::Borrowed(r), at(t)))
        .into();
    assert_eq!(
        damped(OK, &h, &d, EVERY_SECOND),
        (P1, Reason::from("connection_refused"))
    );
}

fn probe(toml_extra: &str) -> (Config, ProbeConfig) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!("[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"http://x/\"\ngroup = \"rag\"\n{toml_extra}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let c = crate::config::load_dir(dir.path()).unwrap();
    let p = c.probes[0].clone();
    (c, p)
}

fn obs(outcome: Outcome, latency_ms: u64, second: i64) -> Observation {
    Observation {
        probe: Arc::from("api"),
        kind: ProbeKind::Http,
        target: Arc::from("api"),
        outcome,
        detail: String::new(),
        latency: Duration::from_millis(latency_ms),
        at: jiff::Timestamp::from_second(1_700_000_000 + second).unwrap(),
        measurements: vec![],
    }
}

#[test]
fn a_down_service_becomes_p1_on_the_second_failure_and_clears_after_three_good() {
    let (c, p) = probe("");
    let d = c.damping(&p);
    let mut s = Scorer::default();
    assert_eq!(
        s.step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 5, 0)),
        None
    );
    assert_eq!(
        s.step(
            &p,
            &d,
            c.interval(&p),
            &obs(Outcome::failed("connection_refused"), 1, 10)
        ),
        None
    );
    let change = s
        .step(
            &p,
            &d,
            c.interval(&p),
            &obs(Outcome::failed("connection_refused"), 1, 20),
        )
        .unwrap();
    assert_eq!(
        (change.from, change.to, change.key.as_str()),
        (OK, P1, "rag")
    );
    assert_eq!(change.reason, "connection_refused");
    // Unknown neither clears nor raises.
    assert_eq!(
        s.step(
            &p,
            &d,
            c.interval(&p),
            &obs(Outcome::unknown("no_cluster"), 1, 25)
        ),
        None
    );
    assert_eq!(s.get("api").unwrap().level, P1);
    assert_eq!(
        s.step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 5, 30)),
        None
    );
    assert_eq!(
        s.step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 5, 40)),
        None
    );
    let change = s
        .step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 5, 50))
        .unwrap();
    assert_eq!((change.from, change.to), (P1, OK));
}

#[test]
fn slowness_is_judged_over_a_window_not_one_sample() {
    let (c, p) = probe("slo_latency = \"100ms\"");
    let d = c.damping(&p);
    let mut s = Scorer::default();
    for i in 0..5 {
        s.step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 50, i));
    }
    // One sample 3× over the SLO: the median of the last five is still 0.
    assert_eq!(
        s.step(
            &p,
            &d,
            c.interval(&p),
            &obs(Outcome::degraded(200.0, "slow"), 300, 10)
        ),
        None
    );
    // Sustained 30 % over the SLO: P2 (seed 000: 20–50 %).
    let mut last = None;
    for i in 0..5 {
        last = s
            .step(
                &p,
                &d,
                c.interval(&p),
                &obs(Outcome::degraded(30.0, "slow"), 130, 20 + i),
            )
            .or(last);
    }
    assert_eq!(last.unwrap().to, P2);
}

#[test]
fn without_an_slo_the_baseline_is_learned() {
    let (c, p) = probe("");
    let d = c.damping(&p);
    let mut s = Scorer::default();
    for i in 0..12 {
        assert_eq!(
            s.step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 100, i)),
            None
        );
    }
    // 250 ms against a 100 ms baseline: 150 % degraded → P1 once the window agrees.
    let mut last = None;
    for i in 0..4 {
        last = s
            .step(&p, &d, c.interval(&p), &obs(Outcome::Healthy, 250, 20 + i))
            .or(last);
    }
    let change = last.unwrap();
    assert_eq!(
        (change.to, change.reason.as_str()),
        (P1, "slow_vs_baseline")
    );
}

#[test]
fn no_leader_becomes_p1_after_the_failover_ttl() {
    let (c, mut p) = probe("");
    p.spec = ProbeSpec::Tcp(crate::config::TcpSpec {
        address: "x:1".into(),
    });
    let d = c.damping(&p);
    let mut s = Scorer::default();
    let no_leader = |t| obs(Outcome::failed("no_leader"), 1, t);
    s.step(&p, &d, c.interval(&p), &no_leader(0));
    let c1 = s.step(&p, &d, c.interval(&p), &no_leader(5)).unwrap();
    assert_eq!(c1.to, P2, "PostgreSQL primary lost: P2 (seed 004)");
    assert_eq!(s.step(&p, &d, c.interval(&p), &no_leader(20)), None);
    s.step(&p, &d, c.interval(&p), &no_leader(31));
    let c2 = s.step(&p, &d, c.interval(&p), &no_leader(36)).unwrap();
    assert_eq!(c2.to, P1, "no primary for longer than the TTL: P1");
}

#[test]
fn per_probe_overrides_apply() {
    let (c, p) = probe("levels = { bad_status = \"P3\" }");
    let d = c.damping(&p);
    let mut s = Scorer::default();
    s.step(
        &p,
        &d,
        c.interval(&p),
        &obs(Outcome::failed("bad_status"), 1, 0),
    );
    let ch = s
        .step(
            &p,
            &d,
            c.interval(&p),
            &obs(Outcome::failed("bad_status"), 1, 10),
        )
        .unwrap();
    assert_eq!(ch.to, P3);
}

/// Issue #15 (2): results from before a gap (Unknown results are not kept, a pause) are not
/// part of a window of N results: two old P3s and a new one are not "3 of the last 5".
#[test]
fn results_from_before_a_gap_are_not_part_of_the_window() {
    let d = Damping::default(); // enter 2, 3 of 5
    let h: VecDeque<Sample> = [(P3, 0), (OK, 1), (P3, 2), (OK, 100), (P3, 101)]
        .map(|(l, t)| Sample::new(l, &Reason::Borrowed("replica_not_streaming"), at(t)))
        .into();
    assert_eq!(damped(OK, &h, &d, EVERY_SECOND).0, OK);
    // The same five results one second apart are 3 of 5.
    assert_eq!(
        damped(OK, &hist(&[P3, OK, P3, OK, P3]), &d, EVERY_SECOND).0,
        P3
    );
}
