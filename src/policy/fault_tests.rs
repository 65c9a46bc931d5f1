//! Property tests of the decision layer (scorer + policy, pure) over generated fault
//! sequences: leader crashes and recoveries, flaps, changes of reason, gaps of Unknown
//! results, one target's probes failing together, everything failing at once. On every
//! decision: no failover before Patroni's `ttl` since the leader loss; no action before its
//! trigger, as the rule defines it, has held for `for`; no action on results older than
//! their window; the partition guard never suspects itself when one target fails.
//! `ASTREINTE_FAULT_CASES=N` runs N sequences instead of the default.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Repeated from the parent's `#[cfg(test)] mod`: this whole file is test code.
#[cfg(test)]
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::config::load_dir;
use crate::level::Level;
use crate::probes::{Observation, Outcome, ProbeKind};
use crate::score::Scorer;

const TTL: i64 = 12;
const FAILOVER_FOR: i64 = 5;
const RESTART_FOR: i64 = 10;
/// The restart rule's probe window (x_of_y = 3 of 5, 1 s interval).
const WINDOW: i64 = 5;

/// The probes besides `pg`, named after their target: `a`, a node with four probes (half of
/// all probes), and three targets with one each.
const PROBES: [&str; 7] = [
    "a-http", "a-tcp", "a-dns", "a-tls", "b-http", "c-http", "d-http",
];

fn config() -> Config {
    let dir = tempfile::tempdir().unwrap();
    let mut probes = String::from(
        "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n[[probe]]\nid = \"pg\"\nkind = \"patroni\"\ntarget = \"pg\"\n\
         ttl = \"12s\"\nmembers = [{ url = \"http://127.0.0.1:1\", name = \"a\" }, { url = \"http://127.0.0.1:2\", name = \"b\" }]\n",
    );
    for id in PROBES {
        let target = &id[..1];
        probes.push_str(&format!(
            "\n[[probe]]\nid = \"{id}\"\nkind = \"tcp\"\ntarget = \"{target}\"\naddress = \"127.0.0.1:9\"\n"
        ));
    }
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        format!(
            "[policy]\nmode = \"enforce\"\npartition_guard = {{ max_failing_ratio = 0.5, min_targets = 4 }}\n\n\
             [[rule]]\nid = \"failover\"\ntrigger = {{ probe = \"pg\", min_level = \"P2\", reasons = [\"no_leader\", \"leader_unreachable\"], for = \"{FAILOVER_FOR}s\" }}\n\
             action = {{ kind = \"patroni_failover\", probe = \"pg\" }}\n\n\
             [[rule]]\nid = \"restart\"\ntrigger = {{ probe = \"a-http\", min_level = \"P2\", reasons = [\"connection_refused\"], for = \"{RESTART_FOR}s\" }}\n\
             action = {{ kind = \"rollout_restart\", namespace = \"ns\", deployment = \"a\" }}\n"
        ),
    )
    .unwrap();
    load_dir(dir.path()).unwrap()
}

/// What one probe returns for a while.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pg {
    Healthy,
    MemberDown,
    NoLeader,
    LeaderUnreachable,
    DcsUnreachable,
    Unknown,
}

impl Pg {
    fn outcome(self) -> Outcome {
        match self {
            Pg::Healthy => Outcome::Healthy,
            Pg::MemberDown => Outcome::failed("member_down"),
            Pg::NoLeader => Outcome::failed("no_leader"),
            Pg::LeaderUnreachable => Outcome::failed("leader_unreachable"),
            Pg::DcsUnreachable => Outcome::failed("dcs_unreachable"),
            Pg::Unknown => Outcome::unknown("timeout"),
        }
    }

    fn leader_lost(self) -> bool {
        matches!(self, Pg::NoLeader | Pg::LeaderUnreachable)
    }
}

/// What the other targets do for a while.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Targets {
    Healthy,
    /// Target `a`'s two probes refuse connections (a crashed node).
    ACrashed,
    /// `a` times out: same level, another reason.
    ATimesOut,
    /// `a` flaps: refused and healthy on alternate runs.
    AFlaps,
    /// `a`'s results are Unknown (a gap).
    AUnknown,
    /// Every target fails at once: astreinte's own network.
    AllDown,
}

/// One stretch of a fault sequence: what each side returns, for `runs` runs `gap_ms` apart.
#[derive(Debug, Clone)]
struct Stretch {
    pg: Pg,
    targets: Targets,
    runs: u8,
    gap_ms: u64,
}

fn stretch() -> impl Strategy<Value = Stretch> {
    let pg = prop::sample::select(vec![
        Pg::Healthy,
        Pg::MemberDown,
        Pg::NoLeader,
        Pg::LeaderUnreachable,
        Pg::DcsUnreachable,
        Pg::Unknown,
    ]);
    let targets = prop::sample::select(vec![
        Targets::Healthy,
        Targets::ACrashed,
        Targets::ATimesOut,
        Targets::AFlaps,
        Targets::AUnknown,
        Targets::AllDown,
    ]);
    // Mostly one run per second; sometimes late runs, sometimes a long pause.
    let gap = prop_oneof![8 => Just(1000u64), 3 => 300u64..3000, 1 => 10_000u64..40_000];
    (pg, targets, 1u8..30, gap).prop_map(|(pg, targets, runs, gap_ms)| Stretch {
        pg,
        targets,
        runs,
        gap_ms,
    })
}

fn t0() -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_768_435_200).unwrap()
}

fn observation(probe: &str, outcome: Outcome, at: jiff::Timestamp) -> Observation {
    Observation {
        probe: Arc::from(probe),
        kind: ProbeKind::Tcp,
        target: Arc::from(probe),
        outcome,
        detail: String::new(),
        latency: Duration::from_millis(1),
        at,
        measurements: vec![],
    }
}

fn target_outcome(targets: Targets, target: &str, run: u8) -> Outcome {
    match (targets, target) {
        (Targets::AllDown, _) => Outcome::failed("connection_refused"),
        (Targets::ACrashed, "a") => Outcome::failed("connection_refused"),
        (Targets::ATimesOut, "a") => Outcome::failed("timeout"),
        (Targets::AFlaps, "a") if run % 2 == 0 => Outcome::failed("connection_refused"),
        (Targets::AUnknown, "a") => Outcome::unknown("no_route"),
        _ => Outcome::Healthy,
    }
}

/// The ground truth the decisions are checked against, kept by the test from the raw
/// results (not from the scorer).
#[derive(Default)]
struct Truth {
    /// The first result of the current run of "leader lost" results (Unknown continues it).
    leader_lost_since: Option<jiff::Timestamp>,
    /// Every raw result of `a-http`: time, and whether it refused the connection.
    a_http: Vec<(jiff::Timestamp, bool)>,
    /// After each run: whether the restart rule's trigger matched, as the scorer said.
    restart_matched: Vec<(jiff::Timestamp, bool)>,
}

fn facts<'a>(
    config: &Config,
    scorer: &Scorer,
    rule: &RuleConfig,
    now: jiff::Timestamp,
) -> Facts<'a> {
    let probe = rule.trigger.probe.clone().unwrap();
    let onset = scorer.trigger_state(&[probe], rule.trigger.min_level, &rule.trigger.reasons);
    let (failing, total) = scorer.failing_targets(config, Level::P2);
    Facts {
        now,
        wall: now,
        trigger: onset,
        escalated: false,
        is_leader: true,
        failing,
        total,
        failing_dependencies: vec![],
        journal_problem: None,
        actions: &[],
        incident: None,
        precondition: Ok(()),
    }
}

/// Runs a sequence; returns the first broken invariant, if any.
fn check(config: &Config, stretches: &[Stretch]) -> Result<(), String> {
    let mut scorer = Scorer::default();
    let mut truth = Truth::default();
    let mut now = t0();
    let failover = config.rules.iter().find(|r| r.id == "failover").unwrap();
    let restart = config.rules.iter().find(|r| r.id == "restart").unwrap();
    for (i, s) in stretches.iter().enumerate() {
        for run in 0..s.runs {
            now += Duration::from_millis(s.gap_ms);
            // Ground truth first.
            match s.pg {
                Pg::Unknown => {}
                p if p.leader_lost() => {
                    truth.leader_lost_since.get_or_insert(now);
                }
                _ => truth.leader_lost_since = None,
            }
            let a = target_outcome(s.targets, "a", run);
            if !matches!(a, Outcome::Unknown { .. }) {
                truth
                    .a_http
                    .push((now, a.reason_code() == "connection_refused"));
            }
            // Then the scorer, probe by probe.
            let mut observations = vec![observation("pg", s.pg.outcome(), now)];
            for id in PROBES {
                observations.push(observation(
                    id,
                    target_outcome(s.targets, &id[..1], run),
                    now,
                ));
            }
            for obs in &observations {
                let probe = config.probe(&obs.probe).unwrap();
                scorer.step(probe, &config.damping(probe), config.interval(probe), obs);
            }
            let matched = scorer
                .get("a-http")
                .is_some_and(|p| p.level >= Level::P2 && p.reason == "connection_refused");
            truth.restart_matched.push((now, matched));

            let at = format!("stretch {i} run {run} ({:?}, {:?})", s.pg, s.targets);
            // No failover before Patroni's ttl since the leader loss.
            let d = decide(config, failover, &facts(config, &scorer, failover, now));
            if matches!(d, Decision::Act { .. }) {
                let lost = truth.leader_lost_since.map(|s| elapsed(now, s));
                if lost.is_none_or(|l| l < Duration::from_secs(TTL as u64)) {
                    return Err(format!("{at}: failover with the leader lost for {lost:?}"));
                }
            }
            let d = decide(config, restart, &facts(config, &scorer, restart, now));
            if let Decision::Act { .. } = d {
                // Its trigger held, as the rule defines it, for `for`.
                let from = now - Duration::from_secs(RESTART_FOR as u64);
                let broken = truth
                    .restart_matched
                    .iter()
                    .filter(|(t, _)| *t >= from)
                    .any(|(_, m)| !*m);
                let first = truth.restart_matched.first().map(|(t, _)| *t);
                if broken || first.is_some_and(|f| f > from) {
                    return Err(format!(
                        "{at}: restart before its trigger held {RESTART_FOR}s"
                    ));
                }
                // On a result inside the window, not an old one.
                let oldest = now - Duration::from_secs(WINDOW as u64);
                if !truth
                    .a_http
                    .iter()
                    .any(|(t, refused)| *refused && *t > oldest)
                {
                    return Err(format!("{at}: restart on results older than the window"));
                }
            }
            // One target failing (with all its probes) is not a partition.
            if let Decision::Hold(Hold::PartitionSuspected { failing, total }) = &d
                && s.targets != Targets::AllDown
                && !scorer_sees_several_targets_failing(&scorer)
            {
                return Err(format!(
                    "{at}: partition suspected with one failing target ({failing} of {total})"
                ));
            }
        }
    }
    Ok(())
}

/// Whether probes of at least two targets are at P2 or worse.
fn scorer_sees_several_targets_failing(scorer: &Scorer) -> bool {
    let failing = |id: &str| scorer.get(id).is_some_and(|s| s.level >= Level::P2);
    let mut targets: Vec<&str> = PROBES
        .iter()
        .filter(|id| failing(id))
        .map(|id| &id[..1])
        .collect();
    if failing("pg") {
        targets.push("pg");
    }
    targets.dedup();
    targets.len() >= 2
}

fn cases() -> u32 {
    std::env::var("ASTREINTE_FAULT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn decisions_hold_their_invariants_over_fault_sequences(
        stretches in prop::collection::vec(stretch(), 1..16)
    ) {
        let config = config();
        prop_assert_eq!(check(&config, &stretches), Ok(()));
    }
}

/// The sequence of issue #15 (1): a leader crash leaves the probe at P2 `member_down`; a
/// second crash 25 s later is `no_leader`. The failover rule (`for` 5 s, ttl 12 s) must wait
/// the ttl from the *second* loss, not count from the first P2.
#[test]
fn a_second_leader_loss_waits_the_ttl_from_its_own_start() {
    let config = config();
    let stretches = [
        Stretch {
            pg: Pg::MemberDown,
            targets: Targets::Healthy,
            runs: 25,
            gap_ms: 1000,
        },
        Stretch {
            pg: Pg::NoLeader,
            targets: Targets::Healthy,
            runs: 30,
            gap_ms: 1000,
        },
    ];
    assert_eq!(check(&config, &stretches), Ok(()));
    // And it does act once the ttl has passed (the gate is not simply shut).
    let mut scorer = Scorer::default();
    let failover = config.rules.iter().find(|r| r.id == "failover").unwrap();
    let probe = config.probe("pg").unwrap();
    let mut now = t0();
    let mut first_act = None;
    for (outcome, n) in [(Pg::MemberDown, 25), (Pg::NoLeader, 30)] {
        for _ in 0..n {
            now += Duration::from_secs(1);
            let obs = observation("pg", outcome.outcome(), now);
            scorer.step(probe, &config.damping(probe), config.interval(probe), &obs);
            let d = decide(&config, failover, &facts(&config, &scorer, failover, now));
            if matches!(d, Decision::Act { .. }) && first_act.is_none() {
                first_act = Some(elapsed(now, t0()).as_secs());
            }
        }
    }
    // The first no_leader result is at 26 s: the ttl ends at 38 s.
    assert_eq!(first_act, Some(38));
}
