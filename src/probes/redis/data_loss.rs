//! Data loss, seen across runs: the master started again (its `run_id` changed) and holds
//! less than half the keys it held before (a master without persistence that restarted
//! empty, and whose replicas then resynced the empty set: seed 000's P1 "Perte de données").
//! The loss stays reported for [`HOLD`] or until the keys are back to half of what they
//! were. Also remembers whether the last master kept its data, so the warning "no
//! persistence" stays while the master is down (the replicas hold the only copy then).
//! The clock is an argument.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::info::Dataset;

/// How long a data loss stays reported once seen (unless the keys come back).
pub const HOLD: Duration = Duration::from_secs(30 * 60);

/// A loss that was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loss {
    pub keys_before: u64,
    pub keys_after: u64,
    pub seen: Instant,
}

/// What the probe remembers of one Redis set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Memory {
    /// The master's run_id and keys at the last run that saw exactly one master.
    last: Option<Dataset>,
    /// Whether that master kept its data across a restart.
    pub master_keeps_data: Option<bool>,
    pub loss: Option<Loss>,
}

/// Per probe id.
#[derive(Debug, Default)]
pub struct DataGuard(Mutex<HashMap<String, Memory>>);

impl DataGuard {
    /// Records this run's single master (its dataset and persistence), if there is one, and
    /// returns what is known now.
    pub fn record(
        &self,
        probe: &str,
        master: Option<(&Dataset, Option<bool>)>,
        now: Instant,
    ) -> Memory {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let m = all.entry(probe.to_owned()).or_default();
        if let Some((now_set, keeps)) = master {
            if let Some(before) = &m.last
                && before.run_id != now_set.run_id
                && before.keys > 0
                && now_set.keys.saturating_mul(2) < before.keys
            {
                m.loss = Some(Loss {
                    keys_before: before.keys,
                    keys_after: now_set.keys,
                    seen: now,
                });
            }
            if let Some(loss) = &m.loss
                && now_set.keys.saturating_mul(2) >= loss.keys_before
            {
                m.loss = None;
            }
            m.last = Some(now_set.clone());
            if keeps.is_some() {
                m.master_keeps_data = keeps;
            }
        }
        if m.loss
            .is_some_and(|l| now.saturating_duration_since(l.seen) >= HOLD)
        {
            m.loss = None;
        }
        m.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(run_id: &str, keys: u64) -> Dataset {
        Dataset {
            run_id: run_id.into(),
            keys,
        }
    }

    #[test]
    fn a_master_that_restarts_empty_lost_its_data_until_the_keys_are_back() {
        let g = DataGuard::default();
        let t = Instant::now();
        assert_eq!(
            g.record("r", Some((&set("a", 3000), Some(false))), t).loss,
            None
        );
        // Down: nothing known this run; the persistence warning stays.
        let down = g.record("r", None, t + Duration::from_secs(1));
        assert_eq!(down.master_keeps_data, Some(false));
        let lost = g.record(
            "r",
            Some((&set("b", 0), Some(false))),
            t + Duration::from_secs(2),
        );
        assert_eq!(
            lost.loss.map(|l| (l.keys_before, l.keys_after)),
            Some((3000, 0))
        );
        // Still lost while the keys stay low, even with the same run_id.
        let s = t + Duration::from_secs(3);
        assert!(g.record("r", Some((&set("b", 10), None)), s).loss.is_some());
        // Restored (a backup loaded): over half of what it had.
        let s = t + Duration::from_secs(4);
        assert_eq!(g.record("r", Some((&set("b", 2900), None)), s).loss, None);
    }

    #[test]
    fn a_failover_or_a_flush_is_not_a_restart_that_lost_data() {
        let g = DataGuard::default();
        let t = Instant::now();
        g.record("r", Some((&set("a", 3000), Some(true))), t);
        // The replica took over with the data: another run_id, the same keys.
        assert_eq!(g.record("r", Some((&set("c", 2990), None)), t).loss, None);
        // FLUSHALL on a running master: same run_id (someone's command, not a crash).
        assert_eq!(g.record("r", Some((&set("c", 0), None)), t).loss, None);
    }

    #[test]
    fn a_loss_is_reported_for_the_hold_then_ends() {
        let g = DataGuard::default();
        let t = Instant::now();
        g.record("r", Some((&set("a", 100), None)), t);
        assert!(g.record("r", Some((&set("b", 0), None)), t).loss.is_some());
        assert!(
            g.record("r", None, t + HOLD - Duration::from_secs(1))
                .loss
                .is_some()
        );
        assert_eq!(g.record("r", None, t + HOLD).loss, None);
    }
}
