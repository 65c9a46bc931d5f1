//! The engine's side of remediation: puts rules through the policy each tick, writes the
//! journal entries before starting actions, records their results, lets actions in flight
//! finish on a stop.

use std::time::Duration;

use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::Engine;
use crate::clock::Now;
use crate::incident::{EntryKind, Event};
use crate::journal::{Store, StoreError};
use crate::policy::Hold;
use crate::remediation::{Context, DecisionEntry, Remediator, TaskResult};

/// The deadline of a record whose rule is gone from the configuration and that was written
/// without its own (the default deadline of a rule).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

impl<S: Store> Engine<S> {
    /// The last decision of each rule.
    pub fn decisions(&self) -> Vec<DecisionEntry> {
        self.remediation
            .as_ref()
            .map(|(r, _)| r.last.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Runs `f` with the remediator and a [`Context`] over the engine's state; returns its
    /// value and the incident events it produced. `None` without remediation.
    fn with_context<T>(
        &mut self,
        now: Now,
        f: impl FnOnce(&mut Remediator, &mut Context<'_>) -> T,
    ) -> Option<(T, Vec<Event>)> {
        let (remediator, _) = self.remediation.as_mut()?;
        let mut events = vec![];
        let mut cx = Context {
            config: &self.config,
            scorer: &self.scorer,
            doc: &mut self.journal.doc,
            journal_problem: self
                .journal
                .problem
                .as_deref()
                .or(self.takeover_problem.as_deref()),
            writer: self.journal.writer.as_deref(),
            metrics: &self.metrics,
            now: now.at,
            wall: now.wall,
            events: &mut events,
        };
        let out = f(remediator, &mut cx);
        self.metrics.leader.set(i64::from(remediator.is_leader()));
        self.status
            .set_decisions(remediator.last.values().cloned().collect());
        Some((out, events))
    }

    /// Puts every rule through the policy and starts the actions it allows, after their
    /// journal entries are written. No entry, no action. `now`: both readings of the clock
    /// (a bare timestamp, in tests and replays, stands for both).
    ///
    /// The entries are written with a fenced compare-and-swap (`Journal::save_fenced`): if
    /// another replica wrote the journal since this one read it, nothing starts; the journal
    /// is re-read and the rules decide again at the next tick, on what the other wrote (its
    /// action `Running`, its cooldown). Once the entries are stored, the actions start only
    /// if this replica still leads: leadership lapses on a timer a third of the Lease
    /// duration before another replica may take the Lease (`leader`), so an action never
    /// starts under a replica the Lease has moved away from, however long the write took.
    ///
    /// A replica that just took the lead first re-reads the journal (`leadership`): it
    /// decides, logs and counts on what its predecessor wrote, not on its copy as a follower
    /// (the fence would stop the actions, but not the `act` decisions logged and counted).
    pub async fn remediate(&mut self, now: impl Into<Now>) {
        let now = now.into();
        if self.journal.unread() && self.journal.retry_read(now.at).await {
            self.resolve_unwatched();
        }
        self.takeover_problem = self.follow_leadership(now.at).await;
        if self.remediation.is_some() && self.leads() {
            self.journal.follow_others().await;
            self.expire_stale(now.at);
        }
        self.note_ended_elsewhere(now.at);
        let mut settled_events = vec![];
        if self.remediation.is_some()
            && self.leads()
            && !self.journal.backing_off()
            && self.journal.problem.is_none()
            && let Some((n, events)) = self.with_context(now, |r, cx| r.settle_unverified(cx))
        {
            self.dirty |= n > 0;
            settled_events = events;
        }
        let Some((records, mut events)) = self.with_context(now, |r, cx| r.evaluate(cx)) else {
            return;
        };
        events.splice(0..0, settled_events);
        let undos = if self.leads() && !self.journal.backing_off() && self.journal.problem.is_none()
        {
            self.with_context(now, |r, cx| r.undos_due(cx))
                .map(|(u, _)| u)
                .unwrap_or_default()
        } else {
            vec![]
        };
        if !records.is_empty() || !undos.is_empty() {
            let saved = self.journal.save_fenced().await;
            self.count_write(match &saved {
                Ok(()) => "ok",
                Err(StoreError::Conflict { .. }) => "conflict",
                Err(_) => "error",
            });
            let leading = self
                .remediation
                .as_ref()
                .is_some_and(|(r, _)| r.is_leader());
            let hold = match &saved {
                Ok(()) if leading => None,
                Ok(()) => Some(Hold::NotLeader),
                Err(StoreError::Conflict { .. }) => Some(Hold::JournalUnavailable {
                    detail: "another replica wrote the journal since this one read it; \
                             deciding again on what it wrote"
                        .into(),
                }),
                Err(e) => {
                    error!(error = %e, "cannot write the journal entry of an action");
                    Some(Hold::JournalUnavailable {
                        detail: format!("the journal entry could not be written: {e}"),
                    })
                }
            };
            match hold {
                None => {
                    self.dirty = false;
                    if let Some((remediator, _)) = &mut self.remediation {
                        remediator.start(&self.config, &self.journal.doc, &records);
                        remediator.start_undos(&self.config, &self.journal.doc, &undos);
                    }
                }
                Some(hold) => {
                    // Stored or not, they will not run: dropped here, and from the store
                    // at the next save (a record is removed by the replica that wrote it).
                    // The undos are decided again by whoever leads next.
                    for id in &undos {
                        self.journal.doc.forget_undo(*id);
                    }
                    if !records.is_empty() {
                        let abandoned =
                            self.with_context(now, |r, cx| r.abandon(cx, &records, hold));
                        events.extend(abandoned.into_iter().flat_map(|(_, e)| e));
                    }
                    self.dirty = true;
                    if matches!(saved, Err(StoreError::Conflict { .. }))
                        && let Err(e) = self.journal.refresh().await
                    {
                        warn!(error = %e, "cannot re-read the journal after a conflict");
                    }
                }
            }
        }
        self.apply(events);
        self.publish();
    }

    /// Marks interrupted another replica's actions still `Running` past their deadline (its
    /// replica died), and notes it on their incidents' timelines; saved with the next write.
    fn expire_stale(&mut self, now: jiff::Timestamp) {
        let config = self.config.clone();
        let deadline_of = |rule: &str| {
            config
                .rules
                .iter()
                .find(|r| r.id == rule)
                .map_or(DEFAULT_DEADLINE, |r| r.deadline())
        };
        for expired in self.journal.expire_stale(now, deadline_of) {
            warn!(action = expired.id, "{}", expired.text);
            self.journal
                .doc
                .incidents
                .note(&expired.key, EntryKind::Action, expired.text, now);
            self.dirty = true;
        }
    }

    /// Notes on the timeline the ends of other replicas' actions read from the journal (one
    /// that lost the lead while its action ran does not write the timeline). A follower's
    /// timeline is the leader's: it drops them.
    fn note_ended_elsewhere(&mut self, now: jiff::Timestamp) {
        let ended = self.journal.take_ended_elsewhere();
        if !self.leads() {
            return;
        }
        for e in ended {
            info!(key = %e.key, "{}", e.text);
            self.dirty |= self.journal.doc.incidents.note(&e.key, e.kind, e.text, now);
        }
    }

    /// Waits for the next action or verification result (never returns without remediation).
    pub async fn next_task_result(&mut self) -> Option<TaskResult> {
        next_result(&mut self.remediation).await
    }

    /// Puts every rule through the policy and writes the journal entries of the actions it
    /// allows, without running them (`astreinte simulate`). Returns the entries' ids.
    pub fn remediate_without_running(&mut self, now: impl Into<Now>) -> Vec<u64> {
        let now = now.into();
        let Some((records, events)) = self.with_context(now, |r, cx| r.evaluate(cx)) else {
            return vec![];
        };
        self.apply(events);
        records
    }

    /// Records the result of an action or verification task.
    pub fn on_task_result(&mut self, result: TaskResult, now: impl Into<Now>) {
        let now = now.into();
        let Some(((), events)) = self.with_context(now, |r, cx| r.on_result(cx, result)) else {
            return;
        };
        self.dirty = true;
        self.apply(events);
        self.publish();
    }

    /// How many action and verification tasks run now (0 without remediation): a test that
    /// checks "nothing was done" reads it instead of waiting for time to pass.
    pub fn tasks_in_flight(&self) -> usize {
        self.remediation
            .as_ref()
            .map_or(0, |(r, _)| r.tracker.len())
    }

    /// Lets actions in flight finish (they are never cancelled halfway) and records them;
    /// past the deadline they stay `Running` and the next start reads them as interrupted.
    pub(super) async fn finish_in_flight(&mut self, deadline: Duration) {
        let Some((remediator, _)) = &self.remediation else {
            return;
        };
        remediator.tracker.close();
        let tracker = remediator.tracker.clone();
        if tracker.is_empty() {
            return;
        }
        info!(tasks = tracker.len(), "waiting for actions in flight");
        let until = tokio::time::Instant::now() + deadline;
        loop {
            tokio::select! {
                Some(result) = next_result(&mut self.remediation) => {
                    self.on_task_result(result, self.clock.read());
                    self.persist().await;
                }
                _ = tracker.wait() => {
                    while let Some(result) = self.remediation.as_mut().and_then(|(_, rx)| rx.try_recv().ok()) {
                        self.on_task_result(result, self.clock.read());
                    }
                    return;
                }
                _ = tokio::time::sleep_until(until) => {
                    warn!("actions still running at the stop deadline: recorded as interrupted at the next start");
                    return;
                }
            }
        }
    }
}

/// The next task result, or never when remediation is off.
pub(super) async fn next_result(
    r: &mut Option<(Remediator, mpsc::Receiver<TaskResult>)>,
) -> Option<TaskResult> {
    match r {
        Some((_, rx)) => rx.recv().await,
        None => std::future::pending().await,
    }
}
