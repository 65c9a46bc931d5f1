//! Another replica's action that ended while this one read it as running: what the leader
//! puts on the incident's timeline. A replica that lost the lead while its action ran writes
//! the action's end in the journal but not on the timeline (a follower never writes
//! incidents, `leader_incidents`); the new leader reads the end when it re-reads the journal
//! and notes it, so the one timeline has every action.

use super::doc::{ActionRecord, ActionResult};
use super::{Journal, Store};
use crate::incident::EntryKind;

/// One entry for the timeline of the incident `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub key: String,
    pub kind: EntryKind,
    pub text: String,
}

impl<S: Store> Journal<S> {
    /// The ends of other replicas' actions read since the last call, for the leader to note.
    pub fn take_ended_elsewhere(&mut self) -> Vec<Ended> {
        std::mem::take(&mut self.ended_elsewhere)
    }
}

/// What changed in other replicas' records between `ours` (our copy) and `theirs` (as
/// stored): actions that ended, verifications that came in.
pub(super) fn ended_elsewhere(
    ours: &[ActionRecord],
    theirs: &[ActionRecord],
    me: &str,
) -> Vec<Ended> {
    let mut ended = vec![];
    for t in theirs.iter().filter(|t| t.by.as_deref() != Some(me)) {
        let Some(o) = ours.iter().find(|o| o.id == t.id && o.by == t.by) else {
            continue;
        };
        let by = t.by.as_deref().unwrap_or("another replica");
        if o.result == ActionResult::Running && t.result != ActionResult::Running {
            let outcome = match &t.result {
                ActionResult::Failed { .. } => format!("failed: {}", t.detail),
                _ => t.detail.clone(),
            };
            ended.push(Ended {
                key: t.key.clone(),
                kind: EntryKind::Action,
                text: format!("{} (rule {}, replica {by}): {outcome}", t.action, t.rule),
            });
        }
        if let (None, Some(ok)) = (o.verified, t.verified) {
            ended.push(Ended {
                key: t.key.clone(),
                kind: EntryKind::Verification,
                text: format!(
                    "verification of rule {} (replica {by}): {}",
                    t.rule,
                    if ok { "ok" } else { "failed" }
                ),
            });
        }
    }
    ended
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(by: &str, result: ActionResult, verified: Option<bool>) -> ActionRecord {
        ActionRecord {
            id: 1,
            rule: "restart".into(),
            action: "rollout_restart".into(),
            target: "ns/deployment/api".into(),
            key: "api".into(),
            incident: Some("1-api".into()),
            started_at: jiff::Timestamp::UNIX_EPOCH,
            ended_at: None,
            result,
            detail: "restarted".into(),
            undo: None,
            undone: false,
            verified,
            by: Some(by.into()),
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        }
    }

    #[test]
    fn another_replicas_end_and_verification_are_noted_once() {
        let running = [record("a", ActionResult::Running, None)];
        let done = [record("a", ActionResult::Succeeded, None)];
        let verified = [record("a", ActionResult::Succeeded, Some(true))];
        let ended = ended_elsewhere(&running, &done, "b");
        assert_eq!(ended.len(), 1, "{ended:?}");
        assert_eq!(ended[0].kind, EntryKind::Action);
        assert_eq!(
            ended[0].text,
            "rollout_restart (rule restart, replica a): restarted"
        );
        assert!(
            ended_elsewhere(&done, &done, "b").is_empty(),
            "seen already"
        );
        let ended = ended_elsewhere(&done, &verified, "b");
        assert_eq!(
            ended[0].text,
            "verification of rule restart (replica a): ok"
        );
        assert!(
            ended_elsewhere(&running, &done, "a").is_empty(),
            "our own records are noted when their result comes"
        );
    }
}
