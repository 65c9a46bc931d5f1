//! Property tests of incident reasons over generated level sequences (issue 15 #6): while
//! open, an incident's reason is the reason of its current level (the last one given for
//! it); once resolved, it is named after its peak (the first reason seen at the peak level).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Repeated from the parent's `#[cfg(test)] mod`: this whole file is test code.
#[cfg(test)]
use proptest::prelude::*;

use super::*;

const REASONS: [&str; 4] = [
    "no_leader",
    "member_down",
    "split_brain",
    "replica_not_streaming",
];

fn step() -> impl Strategy<Value = (Level, usize)> {
    (
        prop::sample::select(vec![Level::Ok, Level::P3, Level::P2, Level::P1]),
        0..REASONS.len(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn an_incident_reason_follows_its_current_level_and_resolves_as_its_peak(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        let settings = IncidentSettings::default();
        let mut incidents = Incidents::default();
        let t0 = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        // The first reason given at the peak level of the current incident, as expected.
        let mut peak: Option<(Level, String)> = None;
        for (i, (level, r)) in steps.iter().enumerate() {
            let reason = if *level == Level::Ok { "ok" } else { REASONS[*r] };
            let now = t0 + std::time::Duration::from_secs(i as u64);
            incidents.on_level("pg", *level, reason, "", now, &settings);
            if *level != Level::Ok {
                match &peak {
                    Some((l, _)) if *l >= *level => {}
                    _ => peak = Some((*level, reason.to_owned())),
                }
            }
            if let Some(open) = incidents.open.get("pg") {
                if *level != Level::Ok {
                    prop_assert_eq!(&open.reason, reason, "at step {}", i);
                    prop_assert_eq!(open.level, *level);
                }
                let (pl, pr) = peak.clone().unwrap();
                prop_assert_eq!(open.peak, pl);
                prop_assert_eq!(open.worst_reason(), pr.as_str());
            }
        }
        // Green for the whole green period: resolved, named after the peak.
        let end = t0 + std::time::Duration::from_secs(steps.len() as u64);
        incidents.on_level("pg", Level::Ok, "ok", "", end, &settings);
        incidents.tick(end + settings.green_period, &settings);
        if let Some((pl, pr)) = peak {
            let done = incidents.recent.front().unwrap();
            prop_assert_eq!(done.peak, pl);
            prop_assert_eq!(done.title(), format!("pg {}", pr.replace('_', " ")));
        }
    }
}
