//! Clock jump detection: every second the wall clock is compared with the projected time;
//! the difference is `astreinte_clock_skew_seconds`, and a jump past
//! [`super::JUMP_THRESHOLD`] is logged once (not every second while it lasts).

use std::time::Duration;

use jiff::SignedDuration;
use tokio_util::sync::CancellationToken;

use super::{Clock, JUMP_THRESHOLD};
use crate::metrics::Metrics;

/// How often the two clocks are compared.
const EVERY: Duration = Duration::from_secs(1);

/// What changed since the last report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The wall clock moved by `by`; it is now `skew` away from the projected time.
    Jumped {
        by: SignedDuration,
        skew: SignedDuration,
    },
    /// The wall clock is back within the threshold of the projected time.
    Back,
}

/// Remembers the skew last reported, so that one jump is one warning.
#[derive(Debug, Default)]
pub struct SkewWatch {
    reported: SignedDuration,
}

impl SkewWatch {
    /// Compares `skew` (wall − projected) with the last one reported.
    pub fn check(&mut self, skew: SignedDuration) -> Option<Change> {
        let threshold = SignedDuration::try_from(JUMP_THRESHOLD).unwrap_or(SignedDuration::MAX);
        let by = skew.saturating_sub(self.reported);
        if by.abs() <= threshold {
            return None;
        }
        if skew.abs() <= threshold {
            self.reported = SignedDuration::ZERO;
            return Some(Change::Back);
        }
        self.reported = skew;
        Some(Change::Jumped { by, skew })
    }
}

/// Wall − projected, now.
pub fn skew_of(clock: &Clock) -> SignedDuration {
    let now = clock.read();
    now.wall.duration_since(now.at)
}

/// One comparison: sets the gauge, logs a jump once. Returns what changed.
pub fn observe(clock: &Clock, watch: &mut SkewWatch, metrics: &Metrics) -> Option<Change> {
    let skew = skew_of(clock);
    metrics.clock_skew_seconds.set(skew.as_secs_f64());
    let change = watch.check(skew);
    match change {
        Some(Change::Jumped { by, skew }) => tracing::warn!(
            jump_seconds = whole_seconds(by),
            skew_seconds = whole_seconds(skew),
            projected = %clock.now(),
            "the system clock jumped: durations (cooldowns, budgets, green periods) keep \
             counting on the monotonic clock; time-of-day windows follow the new wall time"
        ),
        Some(Change::Back) => tracing::info!(
            projected = %clock.now(),
            "the system clock is back in line with the monotonic clock"
        ),
        None => {}
    }
    change
}

/// `by` rounded to the second (a jump of -2 h is logged as -7200, not -7199).
fn whole_seconds(by: SignedDuration) -> i64 {
    by.as_secs_f64().round() as i64
}

/// Compares the clocks every second until `cancel` fires.
pub fn spawn(
    clock: Clock,
    metrics: std::sync::Arc<Metrics>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut watch = SkewWatch::default();
        let mut tick = tokio::time::interval(EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = tick.tick() => {
                    observe(&clock, &mut watch, &metrics);
                }
            }
        }
    })
}
