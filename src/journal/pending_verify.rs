//! A verification no one will ever finish: the action `Succeeded`, its rule has `verify`, and
//! the process that was verifying it is gone (this daemon's predecessor, killed or restarted
//! during the verify window; or, in a shared journal, a replica that died). The policy holds
//! the rule as in flight while `verified` is `None`, so without this the rule would be held
//! forever.
//!
//! Decision: once the verify window has passed since the action ended (plus [`STALE_MARGIN`]
//! for another replica's record, the rule of `stale`: that replica may still be answering),
//! the record is settled as `verified: Some(false)`, "verification interrupted … not
//! confirmed". Not `Some(true)`: nobody saw the target healthy, and a verification that
//! never confirmed is a failed one for the chain: the rule counts as tried in this incident
//! (`already_tried`), the next rule of its chain is reached by escalation. What happens then
//! is decided by what the engine sees NOW (the remediator): if the rule's trigger is at its
//! level, it escalates as for a failed verification; if not (recovered, or nothing known yet:
//! the scorer keeps no `Unknown` result), it only notes it and the incident resolves by its
//! green period. No action is taken here: any action still goes through the policy, on a
//! known level.

use std::time::Duration;

use super::doc::{ActionResult, JournalDoc};
use super::stale::STALE_MARGIN;

/// One verification settled by [`JournalDoc::settle_unverified`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unverified {
    pub id: u64,
    pub rule: String,
    /// The incident key of the action.
    pub key: String,
    /// What was written on the record and goes on the timeline.
    pub text: String,
}

impl JournalDoc {
    /// Settles as not confirmed (`verified: Some(false)`) every `Succeeded` record still
    /// awaiting verification whose verifier is gone:
    /// - this daemon's own records (`me`; all records when `me` is `None`, one daemon) that it
    ///   is not verifying itself (`verifying(id)` false): ended more than the verify window
    ///   before `now`;
    /// - another replica's: ended more than the window plus [`STALE_MARGIN`] before `now`.
    ///
    /// `window_of(rule)`: the rule's verify window, `None` if it has no `verify` (or is gone:
    /// nothing holds on it then). The caller saves.
    pub fn settle_unverified(
        &mut self,
        now: jiff::Timestamp,
        me: Option<&str>,
        verifying: impl Fn(u64) -> bool,
        window_of: impl Fn(&str) -> Option<Duration>,
    ) -> Vec<Unverified> {
        let mut settled = vec![];
        for a in &mut self.actions {
            if a.result != ActionResult::Succeeded || a.verified.is_some() {
                continue;
            }
            let Some(window) = window_of(&a.rule) else {
                continue;
            };
            let mine = me.is_none_or(|me| a.by.as_deref() == Some(me));
            if mine && verifying(a.id) {
                continue;
            }
            let wait = if mine { window } else { window + STALE_MARGIN };
            let ended = a.ended_at.unwrap_or(a.started_at);
            if crate::clock::elapsed(now, ended) <= wait {
                continue;
            }
            let who = match (mine, a.by.as_deref()) {
                (true, _) => "the previous run of this daemon".to_owned(),
                (false, Some(by)) => format!("replica {by}"),
                (false, None) => "the replica that verified it".to_owned(),
            };
            let text = format!(
                "verification interrupted: {who} stopped before the {} verify window ended; not confirmed",
                humantime::format_duration(window)
            );
            a.verified = Some(false);
            if !mine {
                a.interrupted_by = me.map(str::to_owned);
            }
            a.detail = format!("{} ({text})", a.detail).trim_start().to_owned();
            settled.push(Unverified {
                id: a.id,
                rule: a.rule.clone(),
                key: a.key.clone(),
                text: format!("{} {} (rule {}): {text}", a.action, a.id, a.rule),
            });
        }
        settled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ActionRecord;

    const WINDOW: Duration = Duration::from_secs(120);

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn pending(id: u64, by: Option<&str>) -> ActionRecord {
        ActionRecord {
            id,
            rule: "api-restart".into(),
            action: "rollout_restart".into(),
            target: "ns/deployment/api".into(),
            key: "rag".into(),
            incident: Some("inc-1".into()),
            started_at: at(-10),
            ended_at: Some(at(0)),
            result: ActionResult::Succeeded,
            detail: "restarted".into(),
            undo: None,
            undone: false,
            verified: None,
            by: by.map(str::to_owned),
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        }
    }

    fn doc(actions: Vec<ActionRecord>) -> JournalDoc {
        JournalDoc {
            actions,
            ..JournalDoc::default()
        }
    }

    fn settle(d: &mut JournalDoc, secs: i64, me: Option<&str>) -> Vec<Unverified> {
        d.settle_unverified(at(secs), me, |_| false, |_| Some(WINDOW))
    }

    #[test]
    fn an_own_pending_verification_is_settled_as_not_confirmed_once_its_window_has_passed() {
        let mut d = doc(vec![pending(1, None)]);
        assert!(
            settle(&mut d, 120, None).is_empty(),
            "still within its window"
        );
        assert_eq!(d.actions[0].verified, None);
        let settled = settle(&mut d, 121, None);
        assert_eq!(settled.len(), 1);
        assert_eq!(settled[0].key, "rag");
        assert_eq!(settled[0].rule, "api-restart");
        let a = &d.actions[0];
        assert_eq!(a.verified, Some(false));
        assert_eq!(a.result, ActionResult::Succeeded);
        assert!(
            a.detail.contains(
                "verification interrupted: the previous run of this daemon stopped before the 2m verify window ended; not confirmed"
            ),
            "{}",
            a.detail
        );
        assert!(settle(&mut d, 1000, None).is_empty(), "settled once");
    }

    #[test]
    fn a_verification_this_process_runs_is_left_to_it() {
        let mut d = doc(vec![pending(1, Some("a"))]);
        let settled = d.settle_unverified(at(10_000), Some("a"), |id| id == 1, |_| Some(WINDOW));
        assert!(settled.is_empty());
        assert_eq!(d.actions[0].verified, None);
    }

    #[test]
    fn another_replicas_pending_verification_waits_for_the_stale_margin_too() {
        let mut d = doc(vec![pending(1, Some("astreinte-0"))]);
        let limit = (WINDOW + STALE_MARGIN).as_secs() as i64;
        assert!(settle(&mut d, limit, Some("astreinte-1")).is_empty());
        let settled = settle(&mut d, limit + 1, Some("astreinte-1"));
        assert_eq!(settled.len(), 1);
        let a = &d.actions[0];
        assert_eq!(a.verified, Some(false));
        assert_eq!(a.interrupted_by.as_deref(), Some("astreinte-1"));
        assert!(
            a.detail.contains("replica astreinte-0 stopped"),
            "{}",
            a.detail
        );
    }

    #[test]
    fn records_without_a_pending_verification_are_never_touched() {
        let mut verified = pending(1, None);
        verified.verified = Some(true);
        let mut running = pending(2, None);
        running.result = ActionResult::Running;
        let mut failed = pending(3, None);
        failed.result = ActionResult::Failed {
            reason: "timeout".into(),
        };
        let mut d = doc(vec![verified.clone(), running.clone(), failed.clone()]);
        assert!(settle(&mut d, 100_000, None).is_empty());
        assert_eq!(d.actions, vec![verified, running, failed]);
        // A rule without `verify` (or gone from the configuration) holds nothing.
        let mut d = doc(vec![pending(1, None)]);
        assert!(
            d.settle_unverified(at(100_000), None, |_| false, |_| None)
                .is_empty()
        );
        assert_eq!(d.actions[0].verified, None);
    }
}
