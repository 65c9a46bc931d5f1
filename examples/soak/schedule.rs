//! The fault schedule (fixed and seeded: every round of four slots is a permutation of the four
//! faults drawn from the seed) and what the demo's shipped policy should do about it: each
//! rule's budget and cooldown replayed over the schedule, with the fault times standing in
//! for the decision times.

use std::collections::BTreeMap;
use std::time::Duration;

use astreinte::config::{ActionSpec, Config, Mode};
use astreinte::demo::Fault;

/// The faults cycled, in the order of an unshuffled round.
pub const FAULTS: [Fault; 4] = [
    Fault::BreakApi,
    Fault::RedisReplicaDown,
    Fault::KillLeader,
    Fault::SlowApi,
];

/// Decisions closer than this to a budget window's or cooldown's edge are counted as
/// "marginal": the real decision comes a few seconds after the fault and may fall either side.
const MARGIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub index: usize,
    /// From the start of the faults.
    pub at: Duration,
    pub fault: Fault,
}

pub fn fault_name(f: Fault) -> &'static str {
    match f {
        Fault::KillLeader => "kill-leader",
        Fault::BreakApi => "break-api",
        Fault::RedisReplicaDown => "redis-replica-down",
        Fault::SlowApi => "slow-api",
        Fault::Heal => "heal",
    }
}

/// splitmix64: a tiny deterministic generator, enough for a permutation.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One slot every `every` that fits in `duration` (at least one).
pub fn schedule(seed: u64, duration: Duration, every: Duration) -> Vec<Slot> {
    let count = (duration.as_secs() / every.as_secs().max(1)).max(1) as usize;
    let mut rng = SplitMix(seed);
    let mut slots = Vec::with_capacity(count);
    let mut round = FAULTS;
    for index in 0..count {
        if index % FAULTS.len() == 0 {
            round = FAULTS;
            for i in (1..round.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                round.swap(i, j);
            }
        }
        slots.push(Slot {
            index,
            at: every * index as u32,
            fault: round[index % FAULTS.len()],
        });
    }
    slots
}

/// What the model needs of one rule.
#[derive(Debug, Clone)]
pub struct RuleModel {
    pub id: String,
    pub dry_run: bool,
    pub page: bool,
    pub budget: Option<(u32, Duration)>,
    pub cooldown: Duration,
    pub hold_for: Duration,
}

impl RuleModel {
    pub fn from_config(config: &Config) -> Vec<RuleModel> {
        config
            .rules
            .iter()
            .map(|r| RuleModel {
                id: r.id.clone(),
                dry_run: astreinte::policy::effective_mode(config, r) == Mode::DryRun,
                page: matches!(r.action, ActionSpec::Page { .. }),
                budget: r.budget.as_ref().map(|b| (b.max, b.per)),
                cooldown: r.cooldown.unwrap_or(astreinte::policy::DEFAULT_COOLDOWN),
                hold_for: r.trigger.for_.unwrap_or_default(),
            })
            .collect()
    }
}

/// The expectation for one rule over the whole schedule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Actions (real for an enforced rule, rehearsals for a dry-run one).
    pub acts: u32,
    /// Triggers the budget or the cooldown should hold.
    pub held: u32,
    /// Decisions near a window edge, which may go either way.
    pub marginal: u32,
}

/// The rule each fault should trigger, and the rule that takes over while the first one is held
/// (the API stays broken, so the P2 scale-up rule triggers after its `for`).
fn rules_for(fault: Fault) -> (&'static str, Option<&'static str>) {
    match fault {
        Fault::BreakApi => ("api-restart", Some("api-scale-up")),
        Fault::SlowApi => ("api-scale-up", None),
        Fault::RedisReplicaDown => ("redis-page", None),
        // Patroni elects a new leader within its ttl (10 s), before pg-failover's `for` (20 s).
        Fault::KillLeader | Fault::Heal => ("", None),
    }
}

struct Past {
    rule: String,
    at: Duration,
    real: bool,
    page: bool,
}

/// Replays budgets (per rule and global) and cooldowns over the schedule. `hold` is how long
/// each fault stays before the heal.
pub fn expect(
    slots: &[Slot],
    rules: &[RuleModel],
    global: Option<(u32, Duration)>,
    hold: Duration,
) -> BTreeMap<String, Expected> {
    let mut out: BTreeMap<String, Expected> = rules
        .iter()
        .map(|r| (r.id.clone(), Expected::default()))
        .collect();
    let mut past: Vec<Past> = Vec::new();
    for slot in slots {
        let (first, fallback) = rules_for(slot.fault);
        let Some(rule) = rules.iter().find(|r| r.id == first) else {
            continue;
        };
        let at = slot.at + rule.hold_for;
        if decide(
            rule,
            at,
            global,
            &past,
            out.entry(rule.id.clone()).or_default(),
        ) {
            past.push(Past {
                rule: rule.id.clone(),
                at,
                real: !rule.dry_run,
                page: rule.page,
            });
            continue;
        }
        let Some(next) = fallback.and_then(|id| rules.iter().find(|r| r.id == id)) else {
            continue;
        };
        if next.hold_for + Duration::from_secs(10) > hold {
            continue;
        }
        let at = slot.at + next.hold_for;
        if decide(
            next,
            at,
            global,
            &past,
            out.entry(next.id.clone()).or_default(),
        ) {
            past.push(Past {
                rule: next.id.clone(),
                at,
                real: !next.dry_run,
                page: next.page,
            });
        }
    }
    out
}

/// Whether `rule` acts at `at`; updates its counts.
fn decide(
    rule: &RuleModel,
    at: Duration,
    global: Option<(u32, Duration)>,
    past: &[Past],
    e: &mut Expected,
) -> bool {
    // Rehearsals count only for a dry-run rule (as in the policy).
    let counted = |p: &&Past| p.real || rule.dry_run;
    let mut marginal = false;
    let mut within = |p: &Past, per: Duration| {
        let age = at.saturating_sub(p.at);
        if age.abs_diff(per) < MARGIN {
            marginal = true;
        }
        age < per
    };
    let mut allowed = true;
    if let Some((max, per)) = rule.budget {
        let used = past
            .iter()
            .filter(|p| p.rule == rule.id)
            .filter(counted)
            .filter(|p| within(p, per))
            .count();
        allowed &= used < max as usize;
    }
    if let Some((max, per)) = global {
        let used = past
            .iter()
            .filter(|p| !p.page)
            .filter(counted)
            .filter(|p| within(p, per))
            .count();
        allowed &= used < max as usize;
    }
    if let Some(last) = past
        .iter()
        .filter(|p| p.rule == rule.id)
        .filter(counted)
        .map(|p| p.at)
        .max()
    {
        allowed &= !within(
            &Past {
                rule: String::new(),
                at: last,
                real: true,
                page: false,
            },
            rule.cooldown,
        );
    }
    if marginal {
        e.marginal += 1;
    }
    if allowed {
        e.acts += 1;
    } else {
        e.held += 1;
    }
    allowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, dry_run: bool, budget: u32, hold_for: u64) -> RuleModel {
        RuleModel {
            id: id.into(),
            dry_run,
            page: id == "redis-page",
            budget: Some((budget, Duration::from_secs(3600))),
            cooldown: Duration::from_secs(60),
            hold_for: Duration::from_secs(hold_for),
        }
    }

    #[test]
    fn every_round_holds_each_fault_once_and_the_seed_fixes_the_order() {
        let minutes = Duration::from_secs(60);
        let a = schedule(7, minutes * 60, minutes * 3);
        assert_eq!(a.len(), 20);
        for round in a.chunks(4) {
            for f in FAULTS {
                assert_eq!(round.iter().filter(|s| s.fault == f).count(), 1);
            }
        }
        let b = schedule(7, minutes * 60, minutes * 3);
        let names = |s: &[Slot]| s.iter().map(|x| fault_name(x.fault)).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        assert_ne!(names(&a), names(&schedule(8, minutes * 60, minutes * 3)));
    }

    #[test]
    fn budgets_hold_the_fourth_restart_and_the_scale_up_takes_over_once() {
        let every = Duration::from_secs(180);
        let slots: Vec<Slot> = (0..5)
            .map(|i| Slot {
                index: i,
                at: every * 4 * i as u32,
                fault: Fault::BreakApi,
            })
            .collect();
        let rules = [
            model("api-restart", false, 3, 0),
            model("api-scale-up", true, 1, 15),
        ];
        let e = expect(
            &slots,
            &rules,
            Some((10, Duration::from_secs(3600))),
            Duration::from_secs(60),
        );
        assert_eq!(e["api-restart"].acts, 3);
        assert_eq!(e["api-restart"].held, 2);
        assert_eq!(e["api-scale-up"].acts, 1);
        assert_eq!(e["api-scale-up"].held, 1);
    }
}
