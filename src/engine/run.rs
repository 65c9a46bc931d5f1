//! The engine's loop: observations, task results, deliveries and configuration changes, in
//! order, with a one-second tick for incidents and remediation.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::remediate::next_result;
use super::{Engine, TICK};
use crate::config::Config;
use crate::incident::EntryKind;
use crate::journal::Store;
use crate::notify::{Delivery, Notifier};
use crate::probes::Observation;

impl<S: Store> Engine<S> {
    /// Consumes observations until every sender is gone or `cancel` fires; then waits (up
    /// to `action_deadline`) for actions in flight to finish and records them, and saves.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Observation>,
        cancel: CancellationToken,
        action_deadline: Duration,
    ) {
        // Incidents read back from the journal of a configuration that had their target.
        self.resolve_unwatched();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            self.beat();
            tokio::select! {
                obs = rx.recv() => match obs {
                    // A level change is put through the rules at once, not at the next tick
                    // (which cost up to 1 s on the decision path, docs/BENCHMARKS.md).
                    Some(o) => {
                        crate::supervisor::fault_point("engine");
                        self.catch_up_config();
                        if self.handle(&o) {
                            self.remediate(self.clock.read()).await;
                        }
                    }
                    None => break,
                },
                Some(result) = next_result(&mut self.remediation) => {
                    self.on_task_result(result, self.clock.read());
                }
                Some(new) = next_config(&mut self.config_updates) => self.set_config(new),
                Some(d) = next_delivery(&mut self.notifier) => {
                    let now = self.clock.now();
                    // A follower's timeline is the leader's: its own pages are not noted.
                    if self.leads() && self.journal.doc.incidents.note(&d.key, EntryKind::Notification, d.timeline_text(), now) {
                        self.dirty = true;
                        self.publish();
                    }
                }
                _ = tick.tick() => {
                    let now = self.clock.read();
                    self.tick(now.at);
                    self.remediate(now).await;
                }
                _ = cancel.cancelled() => break,
            }
            self.persist().await;
        }
        self.finish_in_flight(action_deadline).await;
        self.persist().await;
    }
}

impl<S: Store> Engine<S> {
    /// Applies a configuration published before this observation was sent: the reloader
    /// publishes before it starts the new probe tasks, so a new probe's first result is
    /// never dropped as unknown because `select!` happened to poll the observation first.
    fn catch_up_config(&mut self) {
        let pending = match &mut self.config_updates {
            Some(rx) if rx.has_changed().unwrap_or(false) => Some(rx.borrow_and_update().clone()),
            _ => None,
        };
        if let Some(new) = pending {
            self.set_config(new);
        }
    }
}

/// The next configuration, or never without a source of them.
async fn next_config(rx: &mut Option<watch::Receiver<Arc<Config>>>) -> Option<Arc<Config>> {
    match rx {
        Some(rx) => match rx.changed().await {
            Ok(()) => Some(rx.borrow_and_update().clone()),
            Err(_) => std::future::pending().await,
        },
        None => std::future::pending().await,
    }
}

/// The next delivery report, or never without a notifier.
async fn next_delivery(n: &mut Option<(Notifier, mpsc::Receiver<Delivery>)>) -> Option<Delivery> {
    match n {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}
