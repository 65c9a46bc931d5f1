//! The daemon's clock: durations never follow the wall clock.
//!
//! Every stamp that a duration is later measured from (observations, scores, decisions,
//! journal entries, incident timelines) comes from [`Clock::now`]: the wall clock read once
//! at start plus the monotonic time elapsed since. A jump of the system time (an operator's
//! `date -s`, NTP stepping a wrong clock, a VM restored from a snapshot) moves none of them,
//! so a `+1 h` jump does not expire every cooldown and budget window at once, and a `-1 h`
//! jump does not freeze them for an hour.
//!
//! The real wall clock ([`Clock::wall`]) is read only where the time of day matters: a rule's
//! `windows` in the policy time zone. After a jump, windows follow the new wall time at once
//! (if the jump corrected a wrong clock, the windows are now right; if it broke a good one,
//! the warning and the skew gauge say so).
//!
//! Jumps are detected by comparing the two: when they differ by more than
//! [`JUMP_THRESHOLD`], a warning is logged once per jump, and
//! `astreinte_clock_skew_seconds` (wall − projected) is always exported (see [`skew`]).
//! The projection lives as long as the process: a restart anchors again at the wall clock
//! (after a jump ahead, entries written before the restart then look older by the jump).
//!
//! Journal entries written by a previous process carry that process's projection. If the
//! wall clock went back between the two runs they may be stamped in the future. Durations
//! from a stamp in the future are zero ([`elapsed`]), which keeps budgets and cooldowns
//! conservative: such an entry counts toward its budget and cooldown until it ages out (its
//! window has passed from its stamp), never less.

pub mod skew;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// Wall and projected time further apart than this is a clock jump.
pub const JUMP_THRESHOLD: Duration = Duration::from_secs(5);

/// Both readings of the clock at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Projected time: the stamp for everything durations are measured from.
    pub at: Timestamp,
    /// The wall clock, for time-of-day windows only.
    pub wall: Timestamp,
}

/// A replay or a test gives one time for both readings.
impl From<Timestamp> for Now {
    fn from(at: Timestamp) -> Self {
        Now { at, wall: at }
    }
}

/// The clock: cheap to clone; clones share their source.
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    System {
        wall_at_start: Timestamp,
        started: std::time::Instant,
    },
    Manual(Arc<Mutex<Manual>>),
}

#[derive(Debug)]
struct Manual {
    at: Timestamp,
    wall: Timestamp,
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.source {
            Source::System { .. } => "system",
            Source::Manual(_) => "manual",
        };
        f.debug_struct("Clock")
            .field("source", &kind)
            .field("now", &self.now())
            .finish()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl Clock {
    /// The process's clock, anchored at its first use (every part of the daemon shares it).
    pub fn system() -> Clock {
        static SYSTEM: OnceLock<Clock> = OnceLock::new();
        SYSTEM
            .get_or_init(|| Clock {
                source: Source::System {
                    wall_at_start: Timestamp::now(),
                    started: std::time::Instant::now(),
                },
            })
            .clone()
    }

    /// A clock that moves only when told, through the returned [`ManualClock`] (tests).
    pub fn manual(start: Timestamp) -> (Clock, ManualClock) {
        let state = Arc::new(Mutex::new(Manual {
            at: start,
            wall: start,
        }));
        (
            Clock {
                source: Source::Manual(state.clone()),
            },
            ManualClock(state),
        )
    }

    /// Projected time: the wall clock at start plus the monotonic time since.
    pub fn now(&self) -> Timestamp {
        match &self.source {
            Source::System {
                wall_at_start,
                started,
            } => {
                let elapsed =
                    SignedDuration::try_from(started.elapsed()).unwrap_or(SignedDuration::MAX);
                wall_at_start
                    .saturating_add(elapsed)
                    .unwrap_or(Timestamp::MAX)
            }
            Source::Manual(m) => lock(m).at,
        }
    }

    /// The wall clock (system time, which jumps): for time-of-day windows only.
    pub fn wall(&self) -> Timestamp {
        match &self.source {
            Source::System { .. } => Timestamp::now(),
            Source::Manual(m) => lock(m).wall,
        }
    }

    /// Both readings.
    pub fn read(&self) -> Now {
        Now {
            at: self.now(),
            wall: self.wall(),
        }
    }
}

/// The hands of a manual clock.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<Manual>>);

impl ManualClock {
    /// Time passes: both readings move.
    pub fn advance(&self, by: Duration) {
        let by = SignedDuration::try_from(by).unwrap_or(SignedDuration::MAX);
        let mut m = lock(&self.0);
        m.at = m.at.saturating_add(by).unwrap_or(Timestamp::MAX);
        m.wall = m.wall.saturating_add(by).unwrap_or(Timestamp::MAX);
    }

    /// The system time jumps by `by`; the projected time does not move.
    pub fn jump_wall(&self, by: SignedDuration) {
        let mut m = lock(&self.0);
        m.wall = m.wall.saturating_add(by).unwrap_or(Timestamp::MAX);
    }
}

fn lock(m: &Mutex<Manual>) -> std::sync::MutexGuard<'_, Manual> {
    // A panic while holding this lock cannot leave the two timestamps half-written.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How long from `since` to `now`; zero when `since` is in the future (a stamp from a
/// previous process whose clock was ahead): cooldowns, budgets and `for` durations count
/// such a stamp as "just now", never as long ago.
pub fn elapsed(now: Timestamp, since: Timestamp) -> Duration {
    Duration::try_from(now.duration_since(since)).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
