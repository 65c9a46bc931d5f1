//! The engine's heartbeat: the engine loop beats on every turn (at least once a second, its
//! tick); `/readyz` answers from its age, so a stuck or dead engine makes the daemon not
//! ready instead of a flag set once at start.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Older than this, the engine is not ready: a tick is due every second, and a store call
/// never holds the loop (see `Engine::pump`).
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// The last beat, in milliseconds since `origin` plus one (0: never).
#[derive(Debug)]
pub struct Heartbeat {
    origin: Instant,
    last: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            origin: Instant::now(),
            last: AtomicU64::new(0),
        }
    }
}

/// What the heartbeat says about the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pulse {
    /// No beat yet: the engine has not started its loop.
    NotStarted,
    /// The last beat is this old.
    Beating(Duration),
}

impl Heartbeat {
    pub fn beat(&self) {
        let ms = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last.store(ms + 1, Ordering::Release);
    }

    pub fn pulse(&self) -> Pulse {
        match self.last.load(Ordering::Acquire) {
            0 => Pulse::NotStarted,
            n => {
                let at = self.origin + Duration::from_millis(n - 1);
                Pulse::Beating(Instant::now().saturating_duration_since(at))
            }
        }
    }

    /// `Err(why)` when the engine is not started or its last beat is older than
    /// [`STALE_AFTER`].
    pub fn ready(&self) -> Result<(), String> {
        match self.pulse() {
            Pulse::NotStarted => Err("engine not started".into()),
            Pulse::Beating(age) if age > STALE_AFTER => Err(format!(
                "engine heartbeat stale: last beat {} s ago",
                age.as_secs()
            )),
            Pulse::Beating(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_only_while_the_engine_beats() {
        let h = Heartbeat::default();
        assert_eq!(h.ready(), Err("engine not started".into()));
        h.beat();
        assert_eq!(h.ready(), Ok(()));
        tokio::time::advance(STALE_AFTER + Duration::from_secs(1)).await;
        assert_eq!(
            h.ready(),
            Err("engine heartbeat stale: last beat 11 s ago".into())
        );
        h.beat();
        assert_eq!(h.ready(), Ok(()));
    }
}
