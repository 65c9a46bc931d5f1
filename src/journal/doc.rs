//! What the journal holds: open and recent incidents, and the history of actions (from which
//! budgets and cooldowns are counted, so they survive a restart or a change of leader).

use serde::{Deserialize, Serialize};

use crate::incident::Incidents;

/// The schema version written in every document.
pub const SCHEMA: u32 = 1;
/// Actions kept; older ones are dropped (budgets never look back that far).
pub const MAX_ACTIONS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalDoc {
    pub schema: u32,
    #[serde(default)]
    pub incidents: Incidents,
    #[serde(default)]
    pub actions: Vec<ActionRecord>,
    /// The highest action id ever given in this journal: ids are never reused, also not the
    /// id of a record written and then abandoned (its replica lost the lead meanwhile).
    #[serde(default)]
    pub action_seq: u64,
}

impl Default for JournalDoc {
    fn default() -> Self {
        JournalDoc {
            schema: SCHEMA,
            incidents: Incidents::default(),
            actions: Vec::new(),
            action_seq: 0,
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ActionResult {
    /// Written before the action starts; still there after a crash, and then read back as
    /// interrupted.
    Running,
    Succeeded,
    Failed {
        reason: String,
    },
    /// The daemon died (or was stopped past its deadline) while the action ran.
    Interrupted,
    /// Dry-run: what would have been done.
    Rehearsed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: u64,
    pub rule: String,
    pub action: String,
    /// The object acted on (`rag-production/deployment/rag-api`, a Patroni member…).
    pub target: String,
    /// The incident key it was for.
    pub key: String,
    #[serde(default)]
    pub incident: Option<String>,
    pub started_at: jiff::Timestamp,
    #[serde(default)]
    pub ended_at: Option<jiff::Timestamp>,
    pub result: ActionResult,
    #[serde(default)]
    pub detail: String,
    /// What to restore on undo (previous replicas, previous ConfigMap values…).
    #[serde(default)]
    pub undo: Option<serde_json::Value>,
    #[serde(default)]
    pub undone: bool,
    /// The verification after the action: `None` while pending (or not configured).
    #[serde(default)]
    pub verified: Option<bool>,
    /// The replica that decided it (its Lease `holderIdentity`); it alone updates the record.
    /// `None` in local mode and in journals written before replicas shared one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// How long the action may run (the rule's deadline when it was decided): past it, plus
    /// a margin, a `Running` record of another replica is read as interrupted.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "humantime_serde::option"
    )]
    pub deadline: Option<std::time::Duration>,
    /// The replica that marked another replica's record interrupted after its deadline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
    /// Its undo after the incident resolved, written before it starts (`undo_run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_run: Option<super::undo_run::UndoRun>,
}

impl ActionRecord {
    /// Whether it counts against budgets and cooldowns: everything that touched (or may have
    /// touched) the target. Rehearsals do not.
    pub fn counts(&self) -> bool {
        !matches!(self.result, ActionResult::Rehearsed)
    }
}

impl JournalDoc {
    /// Reads a stored document. The error names where it is wrong (`actions[3].started_at:
    /// invalid type…`); a document from a newer schema is refused, since saving it back
    /// would drop what this version does not know.
    pub fn parse(data: &str) -> Result<JournalDoc, String> {
        let mut json = serde_json::Deserializer::from_str(data);
        let doc: JournalDoc = serde_path_to_error::deserialize(&mut json)
            .map_err(|e| match e.path().to_string().as_str() {
                "." => e.into_inner().to_string(),
                path => format!("{path}: {}", e.into_inner()),
            })
            .and_then(|doc| json.end().map(|()| doc).map_err(|e| e.to_string()))?;
        if doc.schema > SCHEMA {
            return Err(format!(
                "schema {} is newer than this version of astreinte reads ({SCHEMA})",
                doc.schema
            ));
        }
        Ok(doc)
    }

    /// After a restart: this replica's actions still `Running` were cut off by its stop.
    /// `writer`: this replica's identity in a shared journal; `None` (one daemon, a local
    /// journal) marks every `Running` action. Another replica's are left to it, and to
    /// [`JournalDoc::expire_stale`] once their deadline has passed.
    pub fn mark_interrupted(&mut self, now: jiff::Timestamp, writer: Option<&str>) -> usize {
        let mut n = 0;
        for a in &mut self.actions {
            let mine = writer.is_none_or(|me| a.by.as_deref() == Some(me));
            if a.result == ActionResult::Running && mine {
                a.result = ActionResult::Interrupted;
                a.ended_at = Some(now);
                a.detail = format!(
                    "{} (interrupted: the daemon stopped during the action)",
                    a.detail
                )
                .trim_start()
                .to_owned();
                n += 1;
            }
            let undo_mine = writer
                .is_none_or(|me| a.undo_run.as_ref().and_then(|r| r.by.as_deref()) == Some(me));
            if undo_mine
                && super::undo_run::interrupt(
                    &mut a.undo_run,
                    now,
                    "the daemon stopped during the undo; not run again",
                )
            {
                n += 1;
            }
        }
        n
    }

    pub fn next_action_id(&self) -> u64 {
        self.actions
            .iter()
            .map(|a| a.id)
            .max()
            .unwrap_or(0)
            .max(self.action_seq)
            + 1
    }

    pub fn push_action(&mut self, record: ActionRecord) {
        self.action_seq = self.action_seq.max(record.id);
        self.actions.push(record);
        if self.actions.len() > MAX_ACTIONS {
            let excess = self.actions.len() - MAX_ACTIONS;
            self.actions.drain(..excess);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen under load (tests/kube_faults.rs row B, 1 run in 3): a record written and then
    /// abandoned (its replica lost the lead during the write) gave its id to the next action,
    /// so two different actions of one replica carried one id in the journal's history.
    #[test]
    fn an_abandoned_record_never_gives_its_id_again() {
        let at = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let record = |id| ActionRecord {
            id,
            rule: "r".into(),
            action: "http".into(),
            target: "http".into(),
            key: "api".into(),
            incident: None,
            started_at: at,
            ended_at: None,
            result: ActionResult::Running,
            detail: String::new(),
            undo: None,
            undone: false,
            verified: None,
            by: Some("b".into()),
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        };
        let mut doc = JournalDoc::default();
        doc.push_action(record(16));
        let id = doc.next_action_id();
        doc.push_action(record(id));
        doc.actions.retain(|a| a.id != id); // abandoned
        assert_eq!(doc.next_action_id(), id + 1);
        let stored = serde_json::to_string(&doc).unwrap();
        assert_eq!(JournalDoc::parse(&stored).unwrap().next_action_id(), id + 1);
    }
}
