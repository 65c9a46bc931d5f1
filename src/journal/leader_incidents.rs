//! Who owns the incidents of a shared journal: the leader. It opens, escalates and resolves
//! them, sends their notices and writes them. A follower serves the leader's incidents as
//! last read from the store (re-read at most every second, [`Journal::follow_leader`]) and
//! never writes incidents: its saves (the ends of its own actions, after it lost the lead
//! while they ran) carry the leader's incidents as it read them, and the compare-and-swap
//! refuses them if the leader wrote since. One daemon alone always owns its incidents.

use serde::Serialize;

use super::doc::ActionRecord;
use super::{FOLLOW_EVERY, Journal, Store, StoreError};
use crate::incident::Incidents;

/// What a save writes: the document, with the incidents of their owner.
#[derive(Serialize)]
struct Written<'a> {
    schema: u32,
    incidents: &'a Incidents,
    actions: &'a [ActionRecord],
}

impl<S: Store> Journal<S> {
    /// Whether this replica owns the incidents (it leads, or runs alone).
    pub fn owns_incidents(&self) -> bool {
        self.leader_incidents.is_none()
    }

    /// The incidents this replica serves (`/incidents`, the status page): its own while it
    /// owns them, the leader's as last read otherwise.
    pub fn incidents(&self) -> &Incidents {
        self.leader_incidents
            .as_ref()
            .unwrap_or(&self.doc.incidents)
    }

    /// This replica stopped leading: from now on its incidents are the leader's, as stored.
    pub fn follow_incidents(&mut self) {
        if self.leader_incidents.is_none() {
            self.leader_incidents = Some(self.doc.incidents.clone());
        }
    }

    /// This replica leads (after re-reading the store): it continues the incidents it last
    /// read, the same ids and `opened_at`, and writes them from now on.
    pub fn own_incidents(&mut self) {
        if let Some(stored) = self.leader_incidents.take() {
            self.doc.incidents = stored;
        }
    }

    /// While following: re-reads the store at most every second, for the leader's incidents
    /// and its actions. Returns whether it was read now.
    pub async fn follow_leader(&mut self) -> bool {
        let now = tokio::time::Instant::now();
        if self.owns_incidents()
            || self.unread()
            || self.followed_at.is_some_and(|t| now < t + FOLLOW_EVERY)
        {
            return false;
        }
        self.followed_at = Some(now);
        match self.refresh().await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "cannot re-read the leader's journal");
                false
            }
        }
    }

    /// Takes the incidents of a stored document while following (after a read or a merge).
    pub(super) fn take_leader_incidents(&mut self, stored: &Incidents) {
        if let Some(leader) = &mut self.leader_incidents {
            leader.clone_from(stored);
            self.doc.incidents.clone_from(stored);
        }
    }

    /// The document as a save writes it: a follower writes back the leader's incidents.
    pub(super) fn written(&self) -> Result<String, StoreError> {
        let doc = Written {
            schema: self.doc.schema,
            incidents: self.incidents(),
            actions: &self.doc.actions,
        };
        serde_json::to_string(&doc)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize the journal: {e}")))
    }
}
