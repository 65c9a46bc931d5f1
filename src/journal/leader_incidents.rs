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
    action_seq: u64,
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
            action_seq: self.doc.action_seq,
        };
        serde_json::to_string(&doc)
            .map_err(|e| StoreError::Corrupt(format!("cannot serialize the journal: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ActionResult, FileStore, JournalDoc};
    use super::*;
    use crate::config::IncidentSettings;
    use crate::incident::EntryKind;
    use crate::level::Level;

    fn stored(path: &std::path::Path) -> JournalDoc {
        JournalDoc::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn action(id: u64, by: &str) -> ActionRecord {
        ActionRecord {
            id,
            rule: "restart".into(),
            action: "rollout_restart".into(),
            target: "ns/deployment/api".into(),
            key: "api".into(),
            incident: None,
            started_at: jiff::Timestamp::UNIX_EPOCH,
            ended_at: None,
            result: ActionResult::Succeeded,
            detail: String::new(),
            undo: None,
            undone: false,
            verified: None,
            by: Some(by.into()),
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        }
    }

    #[tokio::test]
    async fn a_follower_writes_its_own_actions_and_the_leaders_incidents_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.json");
        let now = jiff::Timestamp::now();
        let settings = IncidentSettings::default();
        let mut leader = Journal::open_as(FileStore::new(&path), Some("a".into()), now).await;
        leader
            .doc
            .incidents
            .on_level("api", Level::P2, "down", "", now, &settings);
        leader.save().await.unwrap();
        let mut follower = Journal::open_as(FileStore::new(&path), Some("b".into()), now).await;
        follower.follow_incidents();
        assert_eq!(follower.incidents(), &leader.doc.incidents);

        // Whatever the follower notes in its own copy is neither served nor written.
        follower.doc.incidents.note(
            "api",
            EntryKind::Decision,
            "hold: not the leader".into(),
            now,
        );
        follower.doc.push_action(action(7, "b"));
        follower.save().await.unwrap();
        assert_eq!(stored(&path).incidents, leader.doc.incidents);
        assert_eq!(follower.incidents(), &leader.doc.incidents);
        assert_eq!(stored(&path).actions.len(), 1, "its own action is written");

        // The leader writes on (a conflict: merged, its incidents kept); the follower's next
        // save takes the leader's incidents as stored.
        leader
            .doc
            .incidents
            .note("api", EntryKind::Action, "restarted".into(), now);
        leader.save().await.unwrap();
        follower.doc.actions[0].verified = Some(true);
        follower.save().await.unwrap();
        let doc = stored(&path);
        assert_eq!(doc.incidents, leader.doc.incidents);
        assert_eq!(follower.incidents(), &leader.doc.incidents);
        assert_eq!(doc.actions[0].verified, Some(true));

        // Taking the lead, it continues exactly those incidents.
        follower.own_incidents();
        assert!(follower.owns_incidents());
        assert_eq!(follower.doc.incidents, leader.doc.incidents);
    }
}
