//! The first-round table: the first result of every probe, printed once on stdout when all
//! have answered, so whoever started the daemon sees real results at once. Beyond
//! [`FULL_TABLE_MAX`] probes only a count and the results that were not healthy (at most
//! that many) are kept and printed: a 10,000-row table helps nobody, and holding 10,000
//! observations through the first interval, while every probe's long-lived state is being
//! allocated, left megabytes of heap holes behind (docs/BENCHMARKS.md).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::check;
use crate::config::Config;
use crate::probes::Observation;

/// Up to this many probes, the table shows every one.
pub const FULL_TABLE_MAX: usize = 100;

pub struct FirstRound {
    expected: usize,
    answered: BTreeSet<Arc<str>>,
    healthy: usize,
    kept: BTreeMap<Arc<str>, Observation>,
}

impl FirstRound {
    pub fn new(expected: usize) -> Self {
        FirstRound {
            expected,
            answered: BTreeSet::new(),
            healthy: 0,
            kept: BTreeMap::new(),
        }
    }

    /// Takes one observation; returns the text to print once every probe has answered.
    pub fn add(&mut self, config: &Config, obs: &Observation) -> Option<String> {
        if !self.answered.insert(obs.probe.clone()) {
            return None;
        }
        let full = self.expected <= FULL_TABLE_MAX;
        if obs.outcome.is_healthy() {
            self.healthy += 1;
        }
        if full || (!obs.outcome.is_healthy() && self.kept.len() < FULL_TABLE_MAX) {
            self.kept.insert(obs.probe.clone(), obs.clone());
        }
        if self.answered.len() < self.expected {
            return None;
        }
        // Moved out of the map, in configuration order.
        let in_order: Vec<Observation> = config
            .enabled_probes()
            .filter_map(|p| self.kept.remove(p.id.as_str()))
            .collect();
        if full {
            return Some(check::render_table(config, &in_order));
        }
        let mut text = format!(
            "{} probes answered: {} healthy, {} not",
            self.expected,
            self.healthy,
            self.expected - self.healthy
        );
        if !in_order.is_empty() {
            text.push_str(&format!(" (the first {} of them below)\n", in_order.len()));
            text.push_str(&check::render_table(config, &in_order));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{Outcome, ProbeKind};

    fn config(n: usize) -> Config {
        let probes: String = (0..n)
            .map(|i| {
                format!("[[probe]]\nid = \"p{i}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n")
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
        std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
        crate::config::load_dir(dir.path()).unwrap()
    }

    fn obs(id: &str, outcome: Outcome) -> Observation {
        Observation {
            probe: Arc::from(id),
            kind: ProbeKind::Tcp,
            target: Arc::from(id),
            outcome,
            detail: String::new(),
            latency: std::time::Duration::from_millis(1),
            at: jiff::Timestamp::UNIX_EPOCH,
            measurements: vec![],
        }
    }

    #[test]
    fn a_small_round_is_a_full_table_once_every_probe_answered() {
        let c = config(3);
        let mut r = FirstRound::new(3);
        assert!(r.add(&c, &obs("p0", Outcome::Healthy)).is_none());
        assert!(
            r.add(&c, &obs("p0", Outcome::Healthy)).is_none(),
            "p0 twice"
        );
        assert!(r.add(&c, &obs("p2", Outcome::failed("x"))).is_none());
        let text = r.add(&c, &obs("p1", Outcome::Healthy)).unwrap();
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('p')).collect();
        assert_eq!(rows.len(), 3, "{text}");
        assert!(
            rows[0].starts_with("p0") && rows[2].starts_with("p2"),
            "{text}"
        );
    }

    #[test]
    fn a_large_round_is_a_count_and_the_unhealthy_ones() {
        let n = FULL_TABLE_MAX * 3;
        let c = config(n);
        let mut r = FirstRound::new(n);
        let mut text = None;
        for i in 0..n {
            let outcome = if i % 50 == 7 {
                Outcome::failed("x")
            } else {
                Outcome::Healthy
            };
            text = r.add(&c, &obs(&format!("p{i}"), outcome));
        }
        let text = text.unwrap();
        assert!(
            text.starts_with("300 probes answered: 294 healthy, 6 not"),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.starts_with('p')).count(),
            6,
            "{text}"
        );
        assert!(r.kept.is_empty());
    }
}
