//! Reading the journal back at start-up. Two failures are told apart by their kind: a store
//! that did not answer (unreachable, timeout, 5xx, 429: [`StoreError::is_transient`]) is read
//! again with the backoff until it answers, remediation held meanwhile; a journal that was
//! read and is corrupt (or refused) is left untouched and holds remediation until an operator
//! acts.

use super::doc::JournalDoc;
use super::store::{Store, StoreError};
use super::{Journal, MIN_PAUSE};

impl<S: Store> Journal<S> {
    /// Reads the journal back, as one daemon with a local journal: every action left
    /// `Running` becomes `Interrupted`.
    pub async fn open(store: S, now: jiff::Timestamp) -> Self {
        Self::open_as(store, None, now).await
    }

    /// Reads the journal back as `writer`: this replica's identity in a shared journal (its
    /// Lease `holderIdentity`); the records it creates carry it (`by`), and a merge treats
    /// them as its own. This replica's actions left `Running` by its stop become
    /// `Interrupted`; another replica's are left to it until their deadline has passed
    /// ([`Journal::expire_stale`]). A corrupt journal is not overwritten: the daemon starts
    /// empty and holds remediation. A store that does not answer is read again later
    /// ([`Journal::retry_read`]).
    pub async fn open_as(store: S, writer: Option<String>, now: jiff::Timestamp) -> Self {
        let mut journal = Journal {
            store,
            doc: JournalDoc::default(),
            version: None,
            problem: None,
            unread: true,
            writer,
            retry_at: None,
            pause: MIN_PAUSE,
            followed_at: None,
            leader_incidents: None,
            ended_elsewhere: Vec::new(),
            max_bytes: super::DEFAULT_MAX_BYTES,
            retention: std::time::Duration::from_secs(24 * 3600),
            written_bytes: 0,
        };
        journal.read(now).await;
        journal
    }

    /// Whether the store has not answered the first read yet.
    pub fn unread(&self) -> bool {
        self.unread
    }

    /// Reads the journal again if the store did not answer before and the backoff allows;
    /// returns true when it was read now (remediation may proceed on it).
    pub async fn retry_read(&mut self, now: jiff::Timestamp) -> bool {
        if !self.unread || self.ready().is_err() {
            return false;
        }
        self.read(now).await;
        if self.unread {
            return false;
        }
        tracing::info!("the journal store answered: journal read, remediation resumes");
        true
    }

    async fn read(&mut self, now: jiff::Timestamp) {
        let loaded = self.store.load().await;
        self.note(&loaded);
        match loaded {
            Ok(None) => self.adopt(JournalDoc::default(), None, now),
            Ok(Some(snap)) => match JournalDoc::parse(&snap.data) {
                Ok(doc) => self.adopt(doc, Some(snap.version), now),
                Err(e) => self.hold(format!(
                    "journal is corrupt ({e}); it was left untouched; remediation is held until it is repaired or removed"
                )),
            },
            Err(e) if e.is_transient() => {
                let problem = format!(
                    "the journal could not be read yet ({e}); retrying, remediation is held until it is read"
                );
                if self.problem.as_ref() != Some(&problem) {
                    tracing::warn!(problem = %problem, "journal");
                }
                self.problem = Some(problem);
            }
            Err(StoreError::Corrupt(e)) => self.hold(format!(
                "journal is corrupt ({e}); it was left untouched; remediation is held until it is repaired or removed"
            )),
            Err(e) => self.hold(format!("cannot read the journal: {e}")),
        }
    }

    /// A journal read but unusable: held until an operator acts, never read again.
    fn hold(&mut self, problem: String) {
        tracing::error!(problem = %problem, "journal");
        self.unread = false;
        self.problem = Some(problem);
    }

    /// Takes the stored document. What this replica noted while the store did not answer
    /// (incidents opened meanwhile; no action ran, remediation was held) is kept for the
    /// keys the stored document does not have.
    fn adopt(&mut self, mut doc: JournalDoc, version: Option<String>, now: jiff::Timestamp) {
        super::warn_future_stamps(&doc, now);
        let n = doc.mark_interrupted(now, self.writer.as_deref());
        if n > 0 {
            tracing::warn!(
                actions = n,
                "actions interrupted by the last stop are counted in budgets"
            );
        }
        self.take_leader_incidents(&doc.incidents);
        let noted = std::mem::take(&mut self.doc);
        for (key, incident) in noted.incidents.open {
            doc.incidents.open.entry(key).or_insert(incident);
        }
        doc.incidents.seq = doc.incidents.seq.max(noted.incidents.seq);
        self.doc = doc;
        self.version = version;
        self.unread = false;
        self.problem = None;
    }
}
