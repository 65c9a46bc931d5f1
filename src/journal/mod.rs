//! The journal: actions taken (rule, target, start, end, result), open incidents and budgets,
//! persisted through a [`Store`] so that a restart or a new leader does not reset them.
//! Every change is saved before it counts: an action is written as `Running` before it starts.

mod any_store;
mod doc;
mod file_store;
mod kube_store;
mod memory_store;
mod store;

pub use any_store::AnyStore;
pub use doc::{ActionRecord, ActionResult, JournalDoc, MAX_ACTIONS, SCHEMA};
pub use file_store::FileStore;
pub use kube_store::KubeStore;
pub use memory_store::MemoryStore;
pub use store::{Snapshot, Store, StoreError};

/// The journal document and the store it lives in.
pub struct Journal<S> {
    store: S,
    pub doc: JournalDoc,
    version: Option<String>,
    /// Set when the stored journal could not be read back; remediation holds until an
    /// operator acts (`journal_unavailable`).
    pub problem: Option<String>,
}

impl<S: Store> Journal<S> {
    /// Reads the journal back. Actions left `Running` by a crash become `Interrupted`.
    /// A corrupt journal is not overwritten: the daemon starts empty and holds remediation.
    pub async fn open(store: S, now: jiff::Timestamp) -> Self {
        let mut journal = Journal {
            store,
            doc: JournalDoc::default(),
            version: None,
            problem: None,
        };
        match journal.store.load().await {
            Ok(None) => {}
            Ok(Some(snap)) => match JournalDoc::parse(&snap.data) {
                Ok(doc) => {
                    journal.doc = doc;
                    journal.version = Some(snap.version);
                    warn_future_stamps(&journal.doc, now);
                    let n = journal.doc.mark_interrupted(now);
                    if n > 0 {
                        tracing::warn!(
                            actions = n,
                            "actions interrupted by the last stop are counted in budgets"
                        );
                    }
                }
                Err(e) => {
                    journal.problem = Some(format!(
                        "journal is corrupt ({e}); it was left untouched; remediation is held until it is repaired or removed"
                    ));
                }
            },
            Err(e) => journal.problem = Some(format!("cannot read the journal: {e}")),
        }
        if let Some(p) = &journal.problem {
            tracing::error!(problem = %p, "journal");
        }
        journal
    }

    /// Writes the document (compare-and-swap; on a conflict the stored one is re-read and our
    /// actions merged in by id before retrying once).
    pub async fn save(&mut self) -> Result<(), StoreError> {
        if self.problem.is_some() {
            return Err(StoreError::Denied(
                "the journal could not be read back; not overwriting it".into(),
            ));
        }
        let data = serde_json::to_string(&self.doc)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize the journal: {e}")))?;
        match self.store.save(&data, self.version.as_deref()).await {
            Ok(v) => {
                self.version = Some(v);
                Ok(())
            }
            Err(StoreError::Conflict { .. }) => {
                self.merge_stored().await?;
                let data = serde_json::to_string(&self.doc).map_err(|e| {
                    StoreError::Corrupt(format!("cannot serialize the journal: {e}"))
                })?;
                self.version = Some(self.store.save(&data, self.version.as_deref()).await?);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Folds actions another writer stored into ours (ours win on the same id).
    async fn merge_stored(&mut self) -> Result<(), StoreError> {
        let Some(snap) = self.store.load().await? else {
            self.version = None;
            return Ok(());
        };
        let theirs = JournalDoc::parse(&snap.data).map_err(StoreError::Corrupt)?;
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
mod tests {
    use super::*;

    fn record(id: u64, result: ActionResult) -> ActionRecord {
        ActionRecord {
            id,
            rule: "api-restart".into(),
            action: "rollout_restart".into(),
            target: "ns/deployment/api".into(),
            key: "rag".into(),
            incident: None,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            ended_at: None,
            result,
            detail: String::new(),
            undo: None,
            undone: false,
            verified: None,
        }
    }

    #[tokio::test]
    async fn a_running_action_reads_back_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        let mut j = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
        j.doc.push_action(record(1, ActionResult::Running));
        j.save().await.unwrap();
        drop(j); // a crash: nothing else is written
        let j = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
        assert_eq!(j.doc.actions[0].result, ActionResult::Interrupted);
        assert!(j.doc.actions[0].counts());
    }

    #[tokio::test]
    async fn a_corrupt_journal_is_kept_and_holds_remediation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        std::fs::write(&path, "{\"schema\": 1, \"actions\": [tru").unwrap();
        let mut j = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
        assert!(j.problem.as_deref().unwrap().contains("corrupt"));
        assert!(j.save().await.is_err());
        assert!(
            std::fs::read_to_string(&path).unwrap().ends_with("tru"),
            "left untouched"
        );
    }

    #[tokio::test]
    async fn a_conflicting_writer_is_merged_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        let mut a = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
        a.save().await.unwrap();
        let mut b = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
        b.doc.push_action(record(7, ActionResult::Succeeded));
        b.save().await.unwrap();
        a.doc.push_action(record(8, ActionResult::Succeeded));
        a.save().await.unwrap();
        let back = Journal::open(FileStore::new(&path), jiff::Timestamp::now()).await;
        let ids: Vec<u64> = back.doc.actions.iter().map(|x| x.id).collect();
        assert!(ids.contains(&7) && ids.contains(&8), "{ids:?}");
    }
}
