//! Another replica's `Running` action that outlived its deadline: its replica died (its pod is
//! gone, and a Deployment's pods never come back under the same name), so no one will ever
//! write its end. An action never runs past its deadline (the actuator stops it there), so
//! once `started_at + deadline + STALE_MARGIN` has passed by this daemon's clock the record is
//! read as interrupted: it counts in budgets and cooldowns, it is not repeated blindly, and its
//! rule is no longer held as in flight. Before that, and for a live replica, it is left alone.

use std::time::Duration;

use super::doc::{ActionRecord, ActionResult, JournalDoc};

/// Added to an action's deadline before another replica's record of it is called stale: the
/// end of an action is written after it stops, and the replicas' clocks may differ a little.
pub const STALE_MARGIN: Duration = Duration::from_secs(60);

/// One record marked interrupted by [`JournalDoc::expire_stale`], for the incident timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    pub id: u64,
    /// The incident key of the action.
    pub key: String,
    /// What was written on the record: who stopped answering, who marked it, after what.
    pub text: String,
}

impl JournalDoc {
    /// Marks interrupted every `Running` record of a replica other than `me` started more
    /// than its deadline plus [`STALE_MARGIN`] before `now`. `deadline_of(rule)` stands in
    /// for records written without their deadline. Records of `me` are never touched here:
    /// this replica knows its own actions (see [`JournalDoc::mark_interrupted`]).
    pub fn expire_stale(
        &mut self,
        now: jiff::Timestamp,
        me: &str,
        deadline_of: impl Fn(&str) -> Duration,
    ) -> Vec<Expired> {
        let mut expired = vec![];
        for a in &mut self.actions {
            if let Some(e) = expire_undo(a, now, me, &deadline_of) {
                expired.push(e);
            }
            if a.result != ActionResult::Running || a.by.as_deref() == Some(me) {
                continue;
            }
            let deadline = a.deadline.unwrap_or_else(|| deadline_of(&a.rule));
            if crate::clock::elapsed(now, a.started_at) <= deadline + STALE_MARGIN {
                continue;
            }
            let text = interrupted_text(a, me, deadline);
            a.result = ActionResult::Interrupted;
            a.ended_at = Some(now);
            a.interrupted_by = Some(me.to_owned());
            a.detail = format!("{} ({text})", a.detail).trim_start().to_owned();
            expired.push(Expired {
                id: a.id,
                key: a.key.clone(),
                text: format!("{} {} on {}: {text}", a.action, a.id, a.target),
            });
        }
        expired
    }
}

/// Another replica's undo still `Running` past the action's deadline plus the margin.
fn expire_undo(
    a: &mut ActionRecord,
    now: jiff::Timestamp,
    me: &str,
    deadline_of: &impl Fn(&str) -> Duration,
) -> Option<Expired> {
    let run = a.undo_run.as_ref().filter(|r| r.is_running())?;
    let owner = run.by.clone().unwrap_or_else(|| "that wrote it".into());
    if owner == me {
        return None;
    }
    let deadline = a.deadline.unwrap_or_else(|| deadline_of(&a.rule));
    if crate::clock::elapsed(now, run.started_at) <= deadline + STALE_MARGIN {
        return None;
    }
    let why = format!(
        "replica {owner} stopped answering; marked by {me} after the {} deadline; not run again",
        humantime::format_duration(deadline)
    );
    super::undo_run::interrupt(&mut a.undo_run, now, &why);
    Some(Expired {
        id: a.id,
        key: a.key.clone(),
        text: format!(
            "undo of {} {} on {}: interrupted: {why}",
            a.action, a.id, a.target
        ),
    })
}

fn interrupted_text(a: &ActionRecord, me: &str, deadline: Duration) -> String {
    let owner =
        a.by.as_deref()
            .map_or("that wrote it".to_owned(), |b| b.to_owned());
    format!(
        "interrupted: replica {owner} stopped answering; marked by {me} after the {} deadline",
        humantime::format_duration(deadline)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_MIN: Duration = Duration::from_secs(300);

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn running(id: u64, by: Option<&str>, deadline: Option<Duration>) -> ActionRecord {
        ActionRecord {
            id,
            rule: "api-restart".into(),
            action: "rollout_restart".into(),
            target: "ns/deployment/api".into(),
            key: "rag".into(),
            incident: None,
            started_at: at(0),
            ended_at: None,
            result: ActionResult::Running,
            detail: "restart".into(),
            undo: None,
            undone: false,
            verified: None,
            by: by.map(str::to_owned),
            deadline,
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

    #[test]
    fn another_replicas_running_action_is_left_alone_until_its_deadline_and_margin() {
        let mut d = doc(vec![running(1, Some("astreinte-0"), Some(FIVE_MIN))]);
        let limit = (FIVE_MIN + STALE_MARGIN).as_secs() as i64;
        assert!(
            d.expire_stale(at(limit), "astreinte-1", |_| FIVE_MIN)
                .is_empty()
        );
        assert_eq!(d.actions[0].result, ActionResult::Running);
        let expired = d.expire_stale(at(limit + 1), "astreinte-1", |_| FIVE_MIN);
        assert_eq!(expired.len(), 1);
        let a = &d.actions[0];
        assert_eq!(a.result, ActionResult::Interrupted);
        assert!(a.counts(), "an interrupted action counts in budgets");
        assert_eq!(a.ended_at, Some(at(limit + 1)));
        assert_eq!(a.interrupted_by.as_deref(), Some("astreinte-1"));
        assert_eq!(
            a.by.as_deref(),
            Some("astreinte-0"),
            "still the owner's record"
        );
        assert!(
            a.detail.contains(
                "interrupted: replica astreinte-0 stopped answering; marked by astreinte-1 after the 5m deadline"
            ),
            "{}",
            a.detail
        );
        assert!(expired[0].text.contains("marked by astreinte-1"));
        assert_eq!(expired[0].key, "rag");
    }

    #[test]
    fn the_records_own_deadline_wins_over_the_configured_one() {
        let mut d = doc(vec![running(1, Some("a"), Some(Duration::from_secs(10)))]);
        assert_eq!(d.expire_stale(at(71), "b", |_| FIVE_MIN).len(), 1);
        // Written without a deadline (an older version): the rule's deadline stands in.
        let mut d = doc(vec![running(1, Some("a"), None)]);
        assert!(d.expire_stale(at(71), "b", |_| FIVE_MIN).is_empty());
        assert_eq!(d.expire_stale(at(361), "b", |_| FIVE_MIN).len(), 1);
    }

    #[test]
    fn own_and_finished_records_are_never_expired() {
        let mut finished = running(2, Some("a"), Some(FIVE_MIN));
        finished.result = ActionResult::Succeeded;
        let mut d = doc(vec![running(1, Some("b"), Some(FIVE_MIN)), finished]);
        assert!(d.expire_stale(at(100_000), "b", |_| FIVE_MIN).is_empty());
        assert_eq!(d.actions[0].result, ActionResult::Running);
        assert_eq!(d.actions[1].result, ActionResult::Succeeded);
    }

    #[test]
    fn another_replicas_undo_is_interrupted_after_the_deadline_and_its_own_at_start() {
        let mut record = running(1, Some("astreinte-0"), Some(FIVE_MIN));
        record.result = ActionResult::Succeeded;
        let mut d = doc(vec![record]);
        d.begin_undo(1, at(100), Some("astreinte-1"));
        let limit = 100 + (FIVE_MIN + STALE_MARGIN).as_secs() as i64;
        assert!(
            d.expire_stale(at(limit), "astreinte-0", |_| FIVE_MIN)
                .is_empty()
        );
        assert!(
            d.expire_stale(at(limit + 1), "astreinte-1", |_| FIVE_MIN)
                .is_empty(),
            "its own undo is this replica's to end"
        );
        let expired = d.expire_stale(at(limit + 1), "astreinte-0", |_| FIVE_MIN);
        assert_eq!(expired.len(), 1, "{expired:?}");
        assert!(
            expired[0].text.starts_with("undo of"),
            "{}",
            expired[0].text
        );
        let run = d.actions[0].undo_run.as_ref().unwrap();
        assert_eq!(run.result, ActionResult::Interrupted);
        assert!(!d.actions[0].undone);
        assert_eq!(
            d.actions[0].result,
            ActionResult::Succeeded,
            "the action stays"
        );

        // The replica that ran it restarts: its undo is interrupted, not run again.
        let mut d = doc(vec![running(1, Some("astreinte-0"), Some(FIVE_MIN))]);
        d.actions[0].result = ActionResult::Succeeded;
        d.begin_undo(1, at(100), Some("astreinte-1"));
        assert_eq!(d.mark_interrupted(at(101), Some("astreinte-0")), 0);
        assert_eq!(d.mark_interrupted(at(101), Some("astreinte-1")), 1);
        assert_eq!(
            d.actions[0].undo_run.as_ref().unwrap().result,
            ActionResult::Interrupted
        );
    }

    #[test]
    fn at_start_up_only_own_running_records_are_marked() {
        let mut d = doc(vec![
            running(1, Some("astreinte-0"), Some(FIVE_MIN)),
            running(2, Some("astreinte-1"), Some(FIVE_MIN)),
        ]);
        assert_eq!(d.mark_interrupted(at(1), Some("astreinte-1")), 1);
        assert_eq!(
            d.actions[0].result,
            ActionResult::Running,
            "a live replica's"
        );
        assert_eq!(d.actions[1].result, ActionResult::Interrupted);
        // One daemon with a local journal: every Running record is its own.
        let mut d = doc(vec![running(1, None, None), running(2, Some("x"), None)]);
        assert_eq!(d.mark_interrupted(at(1), None), 2);
    }
}
