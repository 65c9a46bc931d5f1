//! The leader owns the incidents and their notices (docs/operator-guide.md, "High availability"): it
//! opens, escalates and resolves them, writes them in the journal and notifies. A follower
//! scores every probe too (its `/status`, its metrics) but leaves the incidents alone: it
//! serves the leader's, re-read from the journal every second, and sends no incident notice.
//! It still sends what only it knows: a page after an action it ran failed (it lost the lead
//! while the action ran), and the all-clear of a partition page it sent while it led.
//!
//! Leadership changes are taken at the start of each remediation pass, before anything is
//! decided: a replica that just took the lead first re-reads the journal, so that what it
//! decides, logs and counts is decided on what its predecessor wrote; then it continues the
//! stored incidents (same ids, same `opened_at`, nothing announced again) and opens the ones
//! its own view needs that are missing.

use tracing::{info, warn};

use super::Engine;
use crate::incident::{ASTREINTE, Event};
use crate::journal::Store;
use crate::level::Level;

impl<S: Store> Engine<S> {
    /// Whether this replica owns the incidents and their notices now: it leads (or runs
    /// alone) and has re-read the journal since it took the lead.
    pub fn leads(&self) -> bool {
        self.journal.owns_incidents() && self.leading_now()
    }

    /// What the leadership channel says (always true without remediation, or alone).
    fn leading_now(&self) -> bool {
        self.remediation.as_ref().is_none_or(|(r, _)| r.is_leader())
    }

    /// Takes a change of leadership into account. Returns why remediation must hold, when
    /// this replica just took the lead and could not re-read the journal yet.
    pub(super) async fn follow_leadership(&mut self, now: jiff::Timestamp) -> Option<String> {
        match (self.leading_now(), self.journal.owns_incidents()) {
            (true, true) => None,
            (true, false) => self.take_over(now).await,
            (false, true) => {
                info!(
                    "this replica does not lead: it serves the leader's incidents and sends no notices"
                );
                self.journal.follow_incidents();
                self.follow(true).await;
                None
            }
            (false, false) => {
                self.follow(false).await;
                None
            }
        }
    }

    /// Re-reads the leader's journal (at once, or at most every second) and serves it.
    async fn follow(&mut self, at_once: bool) {
        let read = if at_once {
            match self.journal.refresh().await {
                Ok(()) => true,
                Err(e) => {
                    warn!(error = %e, "cannot read the leader's journal");
                    false
                }
            }
        } else {
            self.journal.follow_leader().await
        };
        if read {
            self.publish();
        }
    }

    async fn take_over(&mut self, now: jiff::Timestamp) -> Option<String> {
        if self.journal.unread() {
            return Some("this replica took the lead before the journal could be read".into());
        }
        // A journal read but unusable (corrupt, refused) cannot be re-read; remediation holds
        // on it anyway (`journal_unavailable`), and the incidents must still be notified.
        let unusable = self.journal.problem.is_some();
        if !unusable && let Err(e) = self.journal.refresh().await {
            warn!(error = %e, "this replica took the lead but cannot re-read the journal: remediation holds");
            return Some(format!(
                "this replica just took the lead and cannot re-read the journal yet ({e}); \
                 nothing is decided on the copy it had as a follower"
            ));
        }
        self.journal.own_incidents();
        info!(
            open = self.journal.doc.incidents.open.len(),
            "this replica leads: journal re-read; it continues the stored incidents and sends their notices"
        );
        self.resolve_unwatched();
        self.open_missing(now);
        self.publish();
        None
    }

    /// Opens the incidents this replica's view needs and the journal does not have (the
    /// previous leader did not see them, or died first). Open ones are reconciled with the
    /// next result, as after a restart.
    fn open_missing(&mut self, now: jiff::Timestamp) {
        let mut events = vec![];
        for (key, probes) in &self.keys {
            if self.journal.doc.incidents.open.contains_key(key) {
                continue;
            }
            let (level, reason) = self.scorer.key_level(probes);
            if level == Level::Ok {
                continue;
            }
            events.extend(self.journal.doc.incidents.on_level(
                key,
                level,
                &reason,
                "seen by this replica when it took the lead",
                now,
                &self.config.incidents,
            ));
        }
        self.apply(events);
    }
}

/// Whether a follower sends `event` itself: a page about its own doing (an action it ran
/// failed) and the all-clear of its partition page; never an incident notice.
pub(super) fn sent_by_follower(event: &Event) -> bool {
    match event {
        Event::Paged { .. } => true,
        Event::Resolved(i) => i.key == ASTREINTE,
        _ => false,
    }
}
