//! The undo of a reversible action, as the journal holds it. Like the action itself, an undo
//! is written `Running` before it starts (no undo without a journal entry), by the leader
//! that runs it, and ended by that replica; a replica that stopped during it leaves it
//! `Running`, and the record is then read as interrupted (by itself at its next start, by the
//! leader once the deadline has passed), never run a second time.

use serde::{Deserialize, Serialize};

use super::doc::{ActionResult, JournalDoc};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UndoRun {
    pub started_at: jiff::Timestamp,
    /// The replica that runs it (its Lease identity); `None` with a local journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `Running` until it ends; then `Succeeded`, `Failed` or `Interrupted`.
    pub result: ActionResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<jiff::Timestamp>,
    #[serde(default)]
    pub detail: String,
}

impl UndoRun {
    pub fn is_running(&self) -> bool {
        self.result == ActionResult::Running
    }
}

impl JournalDoc {
    /// Writes the undo of record `id` as `Running` (before it starts). False when the record
    /// is gone or its undo was already started once.
    pub fn begin_undo(&mut self, id: u64, now: jiff::Timestamp, by: Option<&str>) -> bool {
        match self.actions.iter_mut().find(|a| a.id == id) {
            Some(a) if a.undo_run.is_none() => {
                a.undo_run = Some(UndoRun {
                    started_at: now,
                    by: by.map(str::to_owned),
                    result: ActionResult::Running,
                    ended_at: None,
                    detail: String::new(),
                });
                true
            }
            _ => false,
        }
    }

    /// Forgets an undo written but never started (its entry could not be stored, or this
    /// replica no longer leads): the leader decides it again.
    pub fn forget_undo(&mut self, id: u64) {
        if let Some(a) = self.actions.iter_mut().find(|a| a.id == id)
            && a.undo_run.as_ref().is_some_and(UndoRun::is_running)
        {
            a.undo_run = None;
        }
    }

    /// Records how the undo of `id` ended: `Ok(detail)` or `Err((reason, detail))`.
    pub fn end_undo(
        &mut self,
        id: u64,
        now: jiff::Timestamp,
        outcome: Result<String, (String, String)>,
    ) {
        let Some(a) = self.actions.iter_mut().find(|a| a.id == id) else {
            return;
        };
        let (result, detail) = match outcome {
            Ok(detail) => {
                a.undone = true;
                (ActionResult::Succeeded, detail)
            }
            Err((reason, detail)) => (ActionResult::Failed { reason }, detail),
        };
        let run = a.undo_run.get_or_insert_with(|| UndoRun {
            started_at: now,
            by: None,
            result: ActionResult::Running,
            ended_at: None,
            detail: String::new(),
        });
        run.result = result;
        run.ended_at = Some(now);
        run.detail = detail;
    }
}

/// Marks an undo still `Running` interrupted, with why; true when it was.
pub(super) fn interrupt(run: &mut Option<UndoRun>, now: jiff::Timestamp, why: &str) -> bool {
    match run {
        Some(r) if r.is_running() => {
            r.result = ActionResult::Interrupted;
            r.ended_at = Some(now);
            r.detail = format!("interrupted: {why}");
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ActionRecord;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn doc() -> JournalDoc {
        let mut d = JournalDoc::default();
        d.push_action(ActionRecord {
            id: 1,
            rule: "scale".into(),
            action: "scale".into(),
            target: "ns/deployment/api".into(),
            key: "api".into(),
            incident: Some("i1".into()),
            started_at: at(0),
            ended_at: Some(at(1)),
            result: ActionResult::Succeeded,
            detail: "scaled".into(),
            undo: Some(serde_json::json!({ "replicas": 3 })),
            undone: false,
            verified: Some(false),
            by: Some("a".into()),
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        });
        d
    }

    #[test]
    fn an_undo_is_written_running_once_and_ended_by_its_result() {
        let mut d = doc();
        assert!(d.begin_undo(1, at(10), Some("b")));
        assert!(!d.begin_undo(1, at(11), Some("b")), "never started twice");
        let stored = JournalDoc::parse(&serde_json::to_string(&d).unwrap()).unwrap();
        let run = stored.actions[0].undo_run.as_ref().unwrap();
        assert!(run.is_running());
        assert_eq!(run.by.as_deref(), Some("b"));
        d.end_undo(1, at(12), Ok("scaled back to 3".into()));
        let a = &d.actions[0];
        assert!(a.undone);
        let run = a.undo_run.as_ref().unwrap();
        assert_eq!(run.result, ActionResult::Succeeded);
        assert_eq!(run.ended_at, Some(at(12)));
        d.forget_undo(1);
        assert!(d.actions[0].undo_run.is_some(), "an ended undo stays");
    }

    #[test]
    fn a_failed_undo_is_not_undone_and_an_unstarted_one_can_be_forgotten() {
        let mut d = doc();
        d.begin_undo(1, at(10), None);
        d.forget_undo(1);
        assert!(d.actions[0].undo_run.is_none());
        d.begin_undo(1, at(10), None);
        d.end_undo(1, at(11), Err(("changed_since".into(), "left".into())));
        assert!(!d.actions[0].undone);
        assert_eq!(
            d.actions[0].undo_run.as_ref().unwrap().result,
            ActionResult::Failed {
                reason: "changed_since".into()
            }
        );
    }

    #[test]
    fn only_a_running_undo_is_interrupted() {
        let mut d = doc();
        assert!(!interrupt(&mut d.actions[0].undo_run, at(5), "x"));
        d.begin_undo(1, at(10), None);
        assert!(interrupt(&mut d.actions[0].undo_run, at(20), "stopped"));
        let run = d.actions[0].undo_run.as_ref().unwrap();
        assert_eq!(run.result, ActionResult::Interrupted);
        assert_eq!(run.detail, "interrupted: stopped");
        assert!(!interrupt(&mut d.actions[0].undo_run, at(30), "again"));
    }
}
