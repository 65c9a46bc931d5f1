//! The journal: actions taken (rule, target, start, end, result), open incidents and budgets,
//! persisted through a [`Store`] so that a restart or a new leader does not reset them.
//! Every change is saved before it counts: an action is written as `Running` before it starts.
//!
//! Several replicas may share one journal (a ConfigMap). Each record belongs to the replica
//! that decided it (`by`), which alone updates it; a merge after a conflict keeps our own
//! records as we have them and takes everyone else's as stored. A save that carries new
//! actions is fenced ([`Journal::save_fenced`]): a plain compare-and-swap against the version
//! the decision was taken on, never merged and retried, so no action starts on a view of the
//! journal that misses another replica's action.
//!
//! The incidents belong to the leader (`leader_incidents`): it alone opens, resolves and
//! writes them; a follower serves the leader's as stored and writes them back unchanged.
//!
//! A replica that died mid-action never writes its end: its `Running` record is read as
//! interrupted by the leader once the action's deadline has passed (`stale`); a verification
//! whose verifier is gone is settled as not confirmed after its window (`pending_verify`). A journal the
//! store could not be read back at start-up is read again until it answers (`read`).

mod any_store;
mod compact;
mod doc;
mod ended_elsewhere;
mod file_store;
mod kube_store;
mod leader_incidents;
mod memory_store;
mod pending_verify;
mod read;
mod stale;
mod store;
mod undo_run;

pub use any_store::AnyStore;
pub use compact::{Compacted, DEFAULT_MAX_BYTES};
pub use doc::{ActionRecord, ActionResult, JournalDoc, MAX_ACTIONS, SCHEMA};
pub use ended_elsewhere::Ended;
pub use file_store::FileStore;
pub use kube_store::KubeStore;
pub use memory_store::MemoryStore;
pub use pending_verify::Unverified;
pub use stale::{Expired, STALE_MARGIN};
pub use store::{Snapshot, Store, StoreError};
pub use undo_run::UndoRun;

/// The first pause after the store did not answer; it doubles up to [`MAX_PAUSE`].
const MIN_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_PAUSE: std::time::Duration = std::time::Duration::from_secs(10);
/// How often a shared journal is re-read while another replica's action runs.
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The journal document and the store it lives in.
pub struct Journal<S> {
    store: S,
    pub doc: JournalDoc,
    version: Option<String>,
    /// Set while remediation must hold (`journal_unavailable`): the stored journal is
    /// corrupt or refused (until an operator acts), or not read yet (see `unread`).
    pub problem: Option<String>,
    /// The store did not answer when the journal was opened: it is read again, with the
    /// backoff below, until it answers ([`Journal::retry_read`]).
    unread: bool,
    /// This replica's identity in a shared journal (its Lease `holderIdentity`).
    pub(crate) writer: Option<String>,
    /// After the store was unavailable: no call before this instant, so that a store that
    /// does not answer costs one timeout per pause, not one per event of the engine.
    retry_at: Option<tokio::time::Instant>,
    pause: std::time::Duration,
    /// The last time [`Journal::follow_others`] or [`Journal::follow_leader`] re-read the
    /// store.
    followed_at: Option<tokio::time::Instant>,
    /// While this replica does not lead: the leader's incidents as last read from the store,
    /// which it serves and writes back unchanged (`leader_incidents`). `None` while it owns
    /// them (it leads, or runs alone).
    leader_incidents: Option<crate::incident::Incidents>,
    /// Other replicas' actions seen ending in the last reads (`ended_elsewhere`).
    ended_elsewhere: Vec<Ended>,
    /// The written journal's budget and how far back the policy looks (see [`compact`]).
    max_bytes: usize,
    retention: std::time::Duration,
    /// The size of the last document written, for `astreinte_journal_bytes`.
    written_bytes: usize,
}

impl<S: Store> Journal<S> {
    pub fn writer(&self) -> Option<&str> {
        self.writer.as_deref()
    }

    /// Writes the document (compare-and-swap; on a conflict the stored one is re-read and
    /// merged, see [`Journal::merge_stored`], before retrying once).
    pub async fn save(&mut self) -> Result<(), StoreError> {
        let data = self.serialize_within_budget()?;
        match self.cas(&data).await {
            Err(StoreError::Conflict { .. }) => {
                let merged = self.merge_stored().await;
                self.note(&merged);
                merged?;
                let data = self.serialize_within_budget()?;
                self.cas(&data).await
            }
            other => other,
        }
    }

    /// Writes the document only if the store still holds the version it was read at: the
    /// save of new actions. A conflict is returned as is, not merged: the caller drops the
    /// new actions, calls [`Journal::refresh`] and decides again on what the other replica
    /// wrote. This compare-and-swap is the fence between replicas: an action starts only
    /// after its `Running` record was written on top of every record stored before it.
    pub async fn save_fenced(&mut self) -> Result<(), StoreError> {
        let data = self.serialize_within_budget()?;
        self.cas(&data).await
    }

    /// Reads the stored journal and merges it in (after a conflict).
    pub async fn refresh(&mut self) -> Result<(), StoreError> {
        self.ready()?;
        let merged = self.merge_stored().await;
        self.note(&merged);
        merged
    }

    /// In a shared journal, re-reads the store (at most every second) while our copy shows
    /// another replica's action `Running`: that replica writes its end, and until this one
    /// reads it, its rule holds here as in flight. Without this, a new leader that has
    /// nothing to write would never see the end of its predecessor's action.
    pub async fn follow_others(&mut self) {
        let Some(me) = self.writer.as_deref() else {
            return;
        };
        let foreign_running = self
            .doc
            .actions
            .iter()
            .any(|a| a.result == ActionResult::Running && a.by.as_deref() != Some(me));
        let now = tokio::time::Instant::now();
        if !foreign_running || self.followed_at.is_some_and(|t| now < t + FOLLOW_EVERY) {
            return;
        }
        self.followed_at = Some(now);
        if let Err(e) = self.refresh().await {
            tracing::debug!(error = %e, "cannot re-read the shared journal");
        }
    }

    fn serialize(&mut self) -> Result<String, StoreError> {
        if self.problem.is_some() {
            return Err(StoreError::Denied(
                "the journal could not be read back; not overwriting it".into(),
            ));
        }
        let data = self.written()?;
        self.written_bytes = data.len();
        Ok(data)
    }

    /// Sets the written journal's budget (`[journal] max_bytes`) and how far back the policy
    /// looks (the longest budget or cooldown window of the rules).
    pub fn set_limits(&mut self, max_bytes: usize, retention: std::time::Duration) {
        self.max_bytes = max_bytes;
        self.retention = retention;
    }

    /// The size in bytes of the last document written (`astreinte_journal_bytes`).
    pub fn written_bytes(&self) -> usize {
        self.written_bytes
    }

    /// The document to write: serialized once, and compacted first (then serialized again)
    /// only when it is over its budget.
    fn serialize_within_budget(&mut self) -> Result<String, StoreError> {
        let data = self.serialize()?;
        if data.len() <= self.max_bytes {
            return Ok(data);
        }
        self.compact();
        self.serialize()
    }

    /// Compacts the document under its budget before a save (see [`compact`]). The owner of
    /// the incidents only: a follower writes the leader's incidents back as it read them.
    fn compact(&mut self) {
        if !self.owns_incidents() || self.problem.is_some() {
            return;
        }
        let size = |doc: &JournalDoc| serde_json::to_string(doc).map_or(usize::MAX, |s| s.len());
        let out = compact::compact(
            &mut self.doc,
            self.max_bytes,
            self.retention,
            jiff::Timestamp::now(),
            size,
        );
        if !out.is_empty() {
            tracing::warn!(
                resolved_incidents = out.resolved_incidents,
                actions = out.actions,
                timeline_entries = out.timeline_entries,
                max_bytes = self.max_bytes,
                "journal compacted to stay under its budget"
            );
        }
    }

    /// Whether saves are refused for now: the store did not answer (lately, or ever since
    /// the start: nothing may be written over a journal not read yet).
    pub fn backing_off(&self) -> bool {
        self.unread || self.ready().is_err()
    }

    /// In a shared journal, marks interrupted another replica's `Running` actions whose
    /// deadline (plus [`STALE_MARGIN`]) has passed: that replica stopped answering and will
    /// never write their end. See [`JournalDoc::expire_stale`]. The caller saves.
    pub fn expire_stale(
        &mut self,
        now: jiff::Timestamp,
        deadline_of: impl Fn(&str) -> std::time::Duration,
    ) -> Vec<Expired> {
        match (&self.writer, self.unread) {
            (Some(me), false) => self.doc.expire_stale(now, me, deadline_of),
            _ => vec![],
        }
    }

    /// Refuses at once while backing off from an unavailable store.
    fn ready(&self) -> Result<(), StoreError> {
        match self.retry_at {
            Some(at) if at > tokio::time::Instant::now() => Err(StoreError::Unavailable(format!(
                "the journal store did not answer; next try in {}",
                humantime::format_duration(std::time::Duration::from_secs(
                    (at - tokio::time::Instant::now()).as_secs() + 1
                ))
            ))),
            _ => Ok(()),
        }
    }

    /// Backs off after an unavailable store; resets after any answer.
    fn note<T>(&mut self, result: &Result<T, StoreError>) {
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.retry_at = Some(tokio::time::Instant::now() + self.pause);
            self.pause = (self.pause * 2).min(MAX_PAUSE);
        } else {
            self.retry_at = None;
            self.pause = MIN_PAUSE;
        }
    }

    /// One compare-and-swap of `data` against the version last read or written.
    async fn cas(&mut self, data: &str) -> Result<(), StoreError> {
        self.ready()?;
        let written = self.store.save(data, self.version.as_deref()).await;
        self.note(&written);
        self.version = Some(written?);
        Ok(())
    }

    /// Folds the stored journal into ours. In a shared journal (a writer is set), our own
    /// records are kept as we have them (we alone update them; one of ours that we do not
    /// have is a write of ours that timed out and landed later, for an action we never
    /// started: dropped), and every other replica's are taken as stored. Without a writer
    /// (one daemon), actions are united by id, ours winning. Incidents: ours while we own
    /// them (we lead), the stored ones while we follow.
    async fn merge_stored(&mut self) -> Result<(), StoreError> {
        let Some(snap) = self.store.load().await? else {
            self.version = None;
            return Ok(());
        };
        let theirs = JournalDoc::parse(&snap.data).map_err(StoreError::Corrupt)?;
        self.doc.action_seq = self.doc.action_seq.max(theirs.action_seq);
        // The incidents are the leader's: ours if we lead, theirs as stored if we follow.
        self.take_leader_incidents(&theirs.incidents);
        match &self.writer {
            Some(me) => {
                self.ended_elsewhere
                    .extend(ended_elsewhere::ended_elsewhere(
                        &self.doc.actions,
                        &theirs.actions,
                        me,
                    ));
                let mine = |a: &ActionRecord| a.by.as_deref() == Some(me.as_str());
                // Another replica's record we marked interrupted after its deadline, still
                // `Running` (or awaiting verification) as stored: our marking stands until it
                // is written.
                let marked: Vec<ActionRecord> = self
                    .doc
                    .actions
                    .iter()
                    .filter(|a| !mine(a) && a.interrupted_by.as_deref() == Some(me.as_str()))
                    .cloned()
                    .collect();
                // Another replica's record whose undo we run (we lead now): our undo stands
                // over the stored one until the stored one has ended.
                let undoing: Vec<ActionRecord> = self
                    .doc
                    .actions
                    .iter()
                    .filter(|a| {
                        !mine(a)
                            && a.undo_run
                                .as_ref()
                                .is_some_and(|r| r.by.as_deref() == Some(me.as_str()))
                    })
                    .cloned()
                    .collect();
                self.doc.actions.retain(|a| mine(a));
                let others = theirs
                    .actions
                    .into_iter()
                    .filter(|a| !mine(a))
                    .map(|mut a| {
                        if let Some(ours) = undoing.iter().find(|u| u.id == a.id && u.by == a.by)
                            && a.undo_run.as_ref().is_none_or(UndoRun::is_running)
                        {
                            a.undo_run = ours.undo_run.clone();
                            a.undone = ours.undone;
                        }
                        a
                    });
                let others =
                    others.map(
                        |a| match marked.iter().find(|m| m.id == a.id && m.by == a.by) {
                            Some(m)
                                if a.result == ActionResult::Running
                                    || (a.result == ActionResult::Succeeded
                                        && a.verified.is_none()) =>
                            {
                                m.clone()
                            }
                            _ => a,
                        },
                    );
                self.doc.actions.extend(others);
            }
            None => {
                for a in theirs.actions {
                    if !self
                        .doc
                        .actions
                        .iter()
                        .any(|b| b.id == a.id && b.rule == a.rule)
                    {
                        self.doc.actions.push(a);
                    }
                }
            }
        }
        self.doc.actions.sort_by_key(|a| a.started_at);
        self.version = Some(snap.version);
        Ok(())
    }
}

/// Entries stamped ahead of `now` come from a process whose clock was ahead (or the system
/// time went back since): they still count toward budgets and cooldowns until they age out.
fn warn_future_stamps(doc: &JournalDoc, now: jiff::Timestamp) {
    let ahead = doc
        .actions
        .iter()
        .map(|a| crate::clock::elapsed(a.started_at, now))
        .max()
        .unwrap_or_default();
    if ahead > crate::clock::JUMP_THRESHOLD {
        tracing::warn!(
            ahead_seconds = ahead.as_secs(),
            "journal entries are stamped in the future (the clock went back since they were \
             written): they count toward budgets and cooldowns until they age out"
        );
    }
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests;
