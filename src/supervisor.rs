//! Supervision of the daemon's long-lived tasks, in one place: each is named; the first one
//! that ends or panics before a stop was asked for is logged (which one, and why), every other
//! task is stopped through the shared cancellation token, and [`crate::app::run`] returns an
//! error, so the process exits non-zero and Kubernetes restarts it. A daemon with a dead task
//! never keeps looking alive.
//!
//! It also owns the test-only fault knob: `ASTREINTE_TEST_PANIC=<task>` (read once, at start,
//! by [`init_fault_knob`]) makes the named task panic at its fault point. It exists for the
//! tests of this supervision (`tests/supervision.rs`); nobody sets it in production.

use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::task::{Id, JoinError, JoinHandle, JoinSet};
use tracing::{error, warn};

/// The test-only fault knob: the name of the task that panics at its fault point.
pub const FAULT_ENV: &str = "ASTREINTE_TEST_PANIC";

static FAULT: OnceLock<Option<String>> = OnceLock::new();

/// Reads [`FAULT_ENV`] once; later changes of the environment are not seen.
pub fn init_fault_knob() {
    let _ = FAULT.get_or_init(|| std::env::var(FAULT_ENV).ok().filter(|v| !v.is_empty()));
}

/// Panics when the test-only knob names `task` (see [`FAULT_ENV`]); otherwise nothing.
pub fn fault_point(task: &str) {
    if FAULT.get().and_then(Option::as_deref) == Some(task) {
        #[allow(clippy::panic)]
        {
            panic!("{FAULT_ENV}={task}: panic injected for a test");
        }
    }
}

/// How a supervised task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub task: &'static str,
    /// `None`: it returned normally; else why it failed (its error, or its panic message).
    pub failure: Option<String>,
}

impl Ended {
    /// The sentence logged and returned when this ended the daemon.
    pub fn describe(&self) -> String {
        match &self.failure {
            None => format!("task `{}` ended unexpectedly", self.task),
            Some(why) => format!("task `{}` failed: {why}", self.task),
        }
    }
}

/// The named long-lived tasks.
#[derive(Default)]
pub struct Supervisor {
    set: JoinSet<Result<(), String>>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Spawns `task` as `name`; its fault point is its first poll.
    pub fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        let handle = self.set.spawn(async move {
            fault_point(name);
            task.await
        });
        self.names.insert(handle.id(), name);
    }

    /// Spawns `task` as `name` without a fault point at its start (it has its own inside).
    pub fn spawn_own_fault<F>(&mut self, name: &'static str, task: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let handle = self.set.spawn(async move {
            task.await;
            Ok(())
        });
        self.names.insert(handle.id(), name);
    }

    /// Watches a task spawned elsewhere (it has its own fault point, if any).
    pub fn adopt(&mut self, name: &'static str, handle: JoinHandle<()>) {
        let handle = self
            .set
            .spawn(async move { handle.await.map_err(|e| panic_text(&e)) });
        self.names.insert(handle.id(), name);
    }

    /// Like [`Supervisor::adopt`], with the fault point in the watcher (for tasks spawned by
    /// modules that have none of their own).
    pub fn adopt_with_fault(&mut self, name: &'static str, handle: JoinHandle<()>) {
        self.spawn(
            name,
            async move { handle.await.map_err(|e| panic_text(&e)) },
        );
    }

    /// How many tasks are still supervised.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next task to end; never returns while every task runs (nor when none is left).
    pub async fn next_end(&mut self) -> Ended {
        match self.set.join_next_with_id().await {
            Some(Ok((id, result))) => Ended {
                task: self.names.remove(&id).unwrap_or("?"),
                failure: result.err(),
            },
            Some(Err(e)) => Ended {
                task: self.names.remove(&e.id()).unwrap_or("?"),
                failure: Some(panic_text(&e)),
            },
            None => std::future::pending().await,
        }
    }

    /// The first task to end, blamed well: one task's death often ends others at once (the
    /// engine's notifier queues close with it), so of the tasks already finished when the
    /// first is seen, a panic or an error is named before a plain end.
    pub async fn first_end(&mut self) -> Ended {
        let mut worst = self.next_end().await;
        while let Some(joined) = self.set.try_join_next_with_id() {
            let ended = match joined {
                Ok((id, result)) => Ended {
                    task: self.names.remove(&id).unwrap_or("?"),
                    failure: result.err(),
                },
                Err(e) => Ended {
                    task: self.names.remove(&e.id()).unwrap_or("?"),
                    failure: Some(panic_text(&e)),
                },
            };
            if worst.failure.is_none() && ended.failure.is_some() {
                worst = ended;
            }
        }
        worst
    }

    /// After a stop: waits up to `deadline` for every task; a failure met on the way is
    /// logged; whatever still runs then is aborted and named.
    pub async fn stop(mut self, deadline: Duration) {
        let drained = tokio::time::timeout(deadline, async {
            while !self.set.is_empty() {
                let ended = self.next_end().await;
                if let Some(why) = &ended.failure {
                    error!(task = ended.task, error = %why, "task failed while stopping");
                }
            }
        })
        .await;
        if drained.is_err() {
            let left: Vec<&str> = self.names.values().copied().collect();
            warn!(tasks = ?left, deadline = ?deadline, "tasks still running at the stop deadline: aborted");
            self.set.abort_all();
        }
    }
}

/// The panic message of a task, or why it was cancelled.
fn panic_text(e: &JoinError) -> String {
    if e.is_cancelled() {
        return "cancelled".into();
    }
    // A `JoinError` gives its payload only by value; its `Display` says "task N panicked
    // with message …", which is what the log needs.
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_task_to_end_is_named_with_its_reason() {
        let mut s = Supervisor::new();
        let (_keep, rx) = tokio::sync::oneshot::channel::<()>();
        s.spawn("waits", async move {
            let _ = rx.await;
            Ok(())
        });
        s.spawn("fails", async { Err("no more input".to_owned()) });
        let ended = s.next_end().await;
        assert_eq!(ended.task, "fails");
        assert_eq!(ended.describe(), "task `fails` failed: no more input");
        assert_eq!(s.len(), 1);
    }

    #[tokio::test]
    async fn a_panic_is_caught_and_named() {
        let mut s = Supervisor::new();
        #[allow(clippy::panic)]
        let handle = tokio::spawn(async { panic!("boom") });
        s.adopt("leader", handle);
        let ended = s.next_end().await;
        assert_eq!(ended.task, "leader");
        let why = ended.failure.unwrap();
        assert!(why.contains("panicked") && why.contains("boom"), "{why}");
    }

    #[tokio::test]
    async fn a_normal_end_is_still_an_end() {
        let mut s = Supervisor::new();
        s.adopt("server", tokio::spawn(async {}));
        let ended = s.next_end().await;
        assert_eq!(ended.failure, None);
        assert_eq!(ended.describe(), "task `server` ended unexpectedly");
    }
}
