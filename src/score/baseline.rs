//! Degradation over a rolling window: a latency baseline learned from the probe's own healthy
//! history (when no SLO is configured) and a smoothed degradation percentage, so one slow
//! sample does not change a level.

use std::collections::VecDeque;

/// Healthy latencies kept for the baseline.
const BASELINE_SAMPLES: usize = 30;
/// The baseline is trusted once it has this many samples.
const BASELINE_MIN: usize = 10;
/// Degradation samples the level is computed from (their median).
const SMOOTHING: usize = 5;
/// Slower than the baseline by less than this is noise, whatever the percentage.
const MIN_DELTA_MS: f64 = 50.0;

#[derive(Debug, Clone, Default)]
pub struct Baseline {
    /// `f32`: one window per probe, kept for ever; a latency needs no more digits.
    healthy_ms: VecDeque<f32>,
    degradation: VecDeque<f32>,
}

fn median(values: impl Iterator<Item = f32>) -> Option<f64> {
    let mut v: Vec<f32> = values.collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f32::total_cmp);
    Some(f64::from(v[v.len() / 2]))
}

impl Baseline {
    /// The learned latency (median of recent healthy runs), once there are enough samples.
    pub fn latency_ms(&self) -> Option<f64> {
        (self.healthy_ms.len() >= BASELINE_MIN)
            .then(|| median(self.healthy_ms.iter().copied()))
            .flatten()
    }

    /// How much slower than the learned baseline a healthy run was, in percent (0 when within
    /// noise or while learning). Healthy runs within noise feed the baseline.
    pub fn over_baseline(&mut self, latency_ms: f64) -> f64 {
        let over = match self.latency_ms() {
            Some(base) if latency_ms - base > MIN_DELTA_MS && base > 0.0 => {
                (latency_ms / base - 1.0) * 100.0
            }
            _ => 0.0,
        };
        if over == 0.0 {
            // Sized once, exactly: one baseline per probe, kept for ever.
            if self.healthy_ms.capacity() == 0 {
                self.healthy_ms.reserve_exact(BASELINE_SAMPLES + 1);
            }
            self.healthy_ms.push_back(latency_ms as f32);
            if self.healthy_ms.len() > BASELINE_SAMPLES {
                self.healthy_ms.pop_front();
            }
        }
        over
    }

    /// Adds one degradation sample (0 for a normal run) and returns the smoothed value.
    pub fn smooth(&mut self, percent: f64) -> f64 {
        if self.degradation.capacity() == 0 {
            self.degradation.reserve_exact(SMOOTHING + 1);
        }
        self.degradation.push_back(percent as f32);
        if self.degradation.len() > SMOOTHING {
            self.degradation.pop_front();
        }
        median(self.degradation.iter().copied()).unwrap_or(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_then_measures() {
        let mut b = Baseline::default();
        for _ in 0..9 {
            assert_eq!(b.over_baseline(100.0), 0.0);
        }
        assert_eq!(b.latency_ms(), None);
        b.over_baseline(100.0);
        assert_eq!(b.latency_ms(), Some(100.0));
        assert_eq!(b.over_baseline(130.0), 0.0, "30 ms over is noise");
        assert_eq!(b.over_baseline(250.0), 150.0);
    }

    #[test]
    fn one_spike_is_smoothed_away() {
        let mut b = Baseline::default();
        for _ in 0..4 {
            b.smooth(0.0);
        }
        assert_eq!(b.smooth(300.0), 0.0);
        b.smooth(80.0);
        assert_eq!(
            b.smooth(90.0),
            80.0,
            "three slow samples of five: median 80"
        );
    }
}
