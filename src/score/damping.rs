//! Flap damping: the probe's level from its recent raw results. A level is entered after N
//! consecutive results or X of the last Y, left with hysteresis, and frequent intermittent
//! errors are a P2. A window of N results counts only the results inside the time N runs of
//! the probe take: results from before a gap (Unknown results, a pause) are gone, not part
//! of the window (docs/configuration.md, "Timing").

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::Damping;
use crate::level::Level;
use crate::probes::Reason;

use super::Code;

/// One raw result: its level, reason and time (milliseconds since the epoch: 8 bytes, not
/// a 16-byte timestamp, for the memory of 100,000 probes' windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub level: Level,
    pub code: Code,
    pub at_ms: i64,
}

impl Sample {
    pub fn new(level: Level, reason: &Reason, at: jiff::Timestamp) -> Sample {
        Sample {
            level,
            code: Code::of(reason),
            at_ms: at.as_millisecond(),
        }
    }
}

/// The damped level from the raw history (newest last) and the current level. `interval`:
/// the probe's interval; the last `k` results count only if they are younger than `k`
/// intervals, measured from the newest.
pub fn damped(
    current: Level,
    history: &VecDeque<Sample>,
    d: &Damping,
    interval: Duration,
) -> (Level, Reason) {
    let n = history.len();
    let newest = history.back().map_or(0, |s| s.at_ms);
    let span_ms = |k: usize| {
        i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_mul(i64::try_from(k).unwrap_or(i64::MAX))
    };
    // The last `k` results, without those older than the time `k` runs take.
    let last = |k: usize| {
        let oldest = newest.saturating_sub(span_ms(k));
        history
            .iter()
            .skip(n.saturating_sub(k))
            .filter(move |s| s.at_ms > oldest)
            .map(|s| s.level)
    };
    let enter = d.enter_after.max(1) as usize;
    let consecutive = if last(enter).count() == enter {
        last(enter).min().unwrap_or(Level::Ok)
    } else {
        Level::Ok
    };
    let [x, y] = d.x_of_y.map(|v| v.max(1) as usize);
    let x_of_y = {
        let mut recent: Vec<Level> = last(y).collect();
        recent.sort_by(|a, b| b.cmp(a));
        recent.get(x - 1).copied().unwrap_or(Level::Ok)
    };
    let mut target = consecutive.max(x_of_y);
    let window = d.error_window.max(1) as usize;
    let mut intermittent = false;
    let recent: Vec<bool> = last(window).map(|l| l >= Level::P2).collect();
    if recent.len() == window && target < Level::P2 {
        let errors = recent.iter().filter(|e| **e).count();
        // Intermittent means errors come and go: at least two separate runs of them. One
        // solid outage that has just ended is not "frequent intermittent errors".
        let runs = recent.windows(2).filter(|w| !w[0] && w[1]).count() + usize::from(recent[0]);
        if runs >= 2 && errors as f64 / window as f64 >= d.error_ratio {
            target = Level::P2;
            intermittent = true;
        }
    }
    let leave = d.leave_after.max(1) as usize;
    // Rising takes effect at once; falling only after `leave_after` results below (hysteresis).
    let falls = n >= leave && history.iter().skip(n - leave).all(|s| s.level < current);
    let new = if target >= current || falls {
        target
    } else {
        current
    };
    let reason = if new == Level::Ok {
        Reason::Borrowed("ok")
    } else if intermittent && new == Level::P2 {
        Reason::Borrowed("intermittent_errors")
    } else {
        history
            .iter()
            .rev()
            .find(|s| s.level >= new)
            .map(|s| s.code.reason())
            .unwrap_or_default()
    };
    (new, reason)
}
