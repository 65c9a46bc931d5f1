//! The keyspace hit ratio over a window: the delta of `keyspace_hits` / `keyspace_misses`
//! between runs, not the lifetime counters (a cache that missed a lot yesterday is not missing
//! now). Samples live per probe and per instance; the clock is an argument.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::info::Stats;

/// More samples than this per instance are never kept (a window of 5 min at 1 s is 300).
const MAX_SAMPLES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    at: Instant,
    stats: Stats,
}

/// The samples of one instance, oldest first.
#[derive(Debug, Default)]
struct Window {
    samples: VecDeque<Sample>,
}

impl Window {
    fn push(&mut self, at: Instant, stats: Stats, span: Duration) {
        if let Some(last) = self.samples.back()
            && (stats.keyspace_hits < last.stats.keyspace_hits
                || stats.keyspace_misses < last.stats.keyspace_misses)
        {
            // The counters went back: a restart or `CONFIG RESETSTAT`. Start over.
            self.samples.clear();
        }
        self.samples.push_back(Sample { at, stats });
        // Keep one sample at least `span` old as the base; drop the older ones.
        while self.samples.len() > 1
            && self
                .samples
                .get(1)
                .is_some_and(|s| at.saturating_duration_since(s.at) >= span)
        {
            self.samples.pop_front();
        }
        while self.samples.len() > MAX_SAMPLES {
            self.samples.pop_front();
        }
    }

    /// Hits and misses since the base sample, once the base is at least `span` old.
    fn delta(&self, span: Duration) -> Option<(u64, u64)> {
        let (first, last) = (self.samples.front()?, self.samples.back()?);
        if last.at.saturating_duration_since(first.at) < span {
            return None;
        }
        Some((
            last.stats
                .keyspace_hits
                .saturating_sub(first.stats.keyspace_hits),
            last.stats
                .keyspace_misses
                .saturating_sub(first.stats.keyspace_misses),
        ))
    }
}

/// Lookups over the window, summed over the instances that have a full window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowedLookups {
    pub hits: u64,
    pub misses: u64,
}

impl WindowedLookups {
    pub fn lookups(&self) -> u64 {
        self.hits + self.misses
    }

    /// `None` when there was no lookup.
    pub fn ratio(&self) -> Option<f64> {
        (self.lookups() > 0).then(|| self.hits as f64 / self.lookups() as f64)
    }
}

/// Per-probe, per-instance sample windows, shared by every run of the prober.
#[derive(Debug, Default)]
pub struct HitRatios {
    probes: Mutex<HashMap<String, HashMap<String, Window>>>,
}

impl HitRatios {
    /// Records this run's counters (`None` for an instance that could not be read) and
    /// returns the lookups over `span`, or `None` while no instance has a full window yet.
    pub fn record(
        &self,
        probe: &str,
        now: Instant,
        span: Duration,
        runs: &[(&str, Option<Stats>)],
    ) -> Option<WindowedLookups> {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        let windows = probes.entry(probe.to_owned()).or_default();
        // Instances removed from the configuration are forgotten.
        windows.retain(|name, _| runs.iter().any(|(n, _)| n == name));
        let mut total: Option<WindowedLookups> = None;
        for (name, stats) in runs {
            let window = windows.entry((*name).to_owned()).or_default();
            if let Some(stats) = stats {
                window.push(now, *stats, span);
            }
            if let Some((hits, misses)) = window.delta(span) {
                let t = total.get_or_insert(WindowedLookups { hits: 0, misses: 0 });
                t.hits += hits;
                t.misses += misses;
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(hits: u64, misses: u64) -> Option<Stats> {
        Some(Stats {
            keyspace_hits: hits,
            keyspace_misses: misses,
        })
    }

    #[test]
    fn no_result_until_the_window_is_covered() {
        let r = HitRatios::default();
        let t0 = Instant::now();
        let span = Duration::from_secs(60);
        assert_eq!(r.record("p", t0, span, &[("a", stats(100, 0))]), None);
        let at = |s| t0 + Duration::from_secs(s);
        assert_eq!(r.record("p", at(30), span, &[("a", stats(150, 50))]), None);
        let w = r
            .record("p", at(60), span, &[("a", stats(200, 100))])
            .unwrap();
        assert_eq!((w.hits, w.misses), (100, 100));
        assert_eq!(w.ratio(), Some(0.5));
    }

    #[test]
    fn the_delta_uses_the_window_not_the_lifetime() {
        let r = HitRatios::default();
        let t0 = Instant::now();
        let span = Duration::from_secs(10);
        // A million hits in the past, then only misses.
        r.record("p", t0, span, &[("a", stats(1_000_000, 0))]);
        let mut last = None;
        for s in 1..=30 {
            last = r.record(
                "p",
                t0 + Duration::from_secs(s),
                span,
                &[("a", stats(1_000_000, s * 10))],
            );
        }
        let w = last.unwrap();
        assert_eq!(w.hits, 0);
        assert_eq!(w.misses, 100);
        assert_eq!(w.ratio(), Some(0.0));
    }

    #[test]
    fn a_counter_reset_starts_the_window_over() {
        let r = HitRatios::default();
        let t0 = Instant::now();
        let span = Duration::from_secs(10);
        r.record("p", t0, span, &[("a", stats(500, 500))]);
        let after_restart = r.record("p", t0 + span, span, &[("a", stats(3, 1))]);
        assert_eq!(after_restart, None);
    }

    #[test]
    fn instances_are_summed_and_probes_kept_apart() {
        let r = HitRatios::default();
        let t0 = Instant::now();
        let span = Duration::from_secs(1);
        r.record("p", t0, span, &[("a", stats(0, 0)), ("b", stats(0, 0))]);
        r.record("q", t0, span, &[("a", stats(0, 0))]);
        let t1 = t0 + span;
        let w = r
            .record("p", t1, span, &[("a", stats(9, 1)), ("b", stats(0, 10))])
            .unwrap();
        assert_eq!((w.hits, w.misses), (9, 11));
        // An unreadable instance keeps its window; no lookups means no ratio.
        let w = r.record("q", t1, span, &[("a", stats(0, 0))]).unwrap();
        assert_eq!(w.ratio(), None);
        let w = r.record("p", t1, span, &[("a", None), ("b", stats(0, 10))]);
        assert_eq!(w.map(|w| w.misses), Some(11));
    }
}
