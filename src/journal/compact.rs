//! Keeps the written journal under its byte budget (`[journal] max_bytes`, 512 KiB by
//! default, well under the 1 MiB ConfigMap limit): before a save that would be larger, the
//! document is compacted, cheapest loss first, until it fits:
//! 1. resolved incidents, oldest first (their post-mortem drafts with them);
//! 2. ended actions older than the retention (the longest budget or cooldown window of the
//!    rules: the policy never looks further back), oldest first;
//! 3. the timelines of open incidents, to their first entry and the most recent ones.
//!
//! Never dropped: open incidents, actions still `Running`, actions whose verification is
//! pending, and actions inside the retention. Pure: the time is an argument.

use std::time::Duration;

use super::doc::{ActionResult, JournalDoc};

/// The default budget of the written journal.
pub const DEFAULT_MAX_BYTES: usize = 512 * 1024;
/// Timeline entries an open incident keeps at least when compacted (besides its first).
const KEEP_TIMELINE: usize = 20;

/// What a compaction dropped, for the log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Compacted {
    pub resolved_incidents: usize,
    pub actions: usize,
    pub timeline_entries: usize,
}

impl Compacted {
    pub fn is_empty(&self) -> bool {
        *self == Compacted::default()
    }
}

/// Compacts `doc` until `size(doc)` is at most `max_bytes`, or nothing more may go.
pub fn compact(
    doc: &mut JournalDoc,
    max_bytes: usize,
    retention: Duration,
    now: jiff::Timestamp,
    size: impl Fn(&JournalDoc) -> usize,
) -> Compacted {
    let mut out = Compacted::default();
    if size(doc) <= max_bytes {
        return out;
    }
    // Halving steps keep the number of sizings logarithmic in the number of entries.
    while !doc.incidents.recent.is_empty() && size(doc) > max_bytes {
        let n = doc.incidents.recent.len().div_ceil(2);
        let keep = doc.incidents.recent.len() - n;
        doc.incidents.recent.truncate(keep);
        out.resolved_incidents += n;
    }
    let cutoff = now - retention;
    while size(doc) > max_bytes {
        let droppable: Vec<usize> = doc
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.started_at < cutoff
                    && a.result != ActionResult::Running
                    && !(a.result == ActionResult::Succeeded && a.verified.is_none())
            })
            .map(|(i, _)| i)
            .collect();
        if droppable.is_empty() {
            break;
        }
        // Oldest first: the journal appends, so lower indexes are older.
        let n = droppable.len().div_ceil(2);
        let mut drop = vec![false; doc.actions.len()];
        for i in droppable.iter().take(n) {
            drop[*i] = true;
        }
        let mut i = 0;
        doc.actions.retain(|_| {
            let keep = !drop[i];
            i += 1;
            keep
        });
        out.actions += n;
    }
    let mut keep = KEEP_TIMELINE * 8;
    while size(doc) > max_bytes && keep >= KEEP_TIMELINE {
        for inc in doc.incidents.open.values_mut() {
            let len = inc.timeline.len();
            if len > keep + 1 {
                let cut = len - 1 - keep;
                inc.timeline.drain(1..=cut);
                out.timeline_entries += cut;
            }
        }
        keep /= 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IncidentSettings;
    use crate::incident::EntryKind;
    use crate::journal::ActionRecord;
    use crate::level::Level;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn size(doc: &JournalDoc) -> usize {
        serde_json::to_string(doc).unwrap().len()
    }

    fn action(id: u64, at: i64, result: ActionResult) -> ActionRecord {
        ActionRecord {
            id,
            rule: "restart".into(),
            action: "rollout_restart".into(),
            target: "ns/deployment/api".into(),
            key: "api".into(),
            incident: Some(format!("{id}-api")),
            started_at: t(at),
            ended_at: Some(t(at + 30)),
            result,
            detail: "rollout restart of ns/api complete: 3 of 3 updated, ready, available".into(),
            undo: None,
            undone: false,
            verified: Some(true),
            by: None,
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        }
    }

    /// 10,000 resolved incidents and 10,000 actions (issue 16 §3): compacted under the
    /// budget, keeping the open incident, the running action and the recent ones.
    #[test]
    fn ten_thousand_entries_fit_the_budget_and_what_the_policy_needs_stays() {
        let settings = IncidentSettings {
            keep_resolved: 100_000,
            ..IncidentSettings::default()
        };
        let mut doc = JournalDoc::default();
        for i in 0..10_000_i64 {
            let key = format!("svc-{i}");
            doc.incidents
                .on_level(&key, Level::P2, "bad_status", "HTTP 500", t(i), &settings);
            doc.incidents
                .on_level(&key, Level::Ok, "ok", "", t(i + 1), &settings);
        }
        doc.incidents
            .tick(t(20_000) + settings.green_period, &settings);
        assert_eq!(doc.incidents.recent.len(), 10_000);
        for i in 0..10_000_u64 {
            doc.actions
                .push(action(i + 1, i as i64, ActionResult::Succeeded));
        }
        let now = t(100_000);
        doc.actions
            .push(action(10_001, 99_990, ActionResult::Running));
        doc.actions
            .push(action(10_002, 99_000, ActionResult::Succeeded));
        doc.incidents
            .on_level("api", Level::P1, "timeout", "", now, &settings);
        for i in 0..2_000 {
            doc.incidents
                .note("api", EntryKind::Decision, format!("decision {i}"), now);
        }
        assert!(size(&doc) > DEFAULT_MAX_BYTES * 4, "{}", size(&doc));

        let out = compact(
            &mut doc,
            DEFAULT_MAX_BYTES,
            Duration::from_secs(3600),
            now,
            size,
        );
        assert!(
            size(&doc) <= DEFAULT_MAX_BYTES,
            "{} bytes, {out:?}",
            size(&doc)
        );
        assert!(
            doc.actions.iter().any(|a| a.id == 10_001),
            "the running action stays"
        );
        assert!(
            doc.actions.iter().any(|a| a.id == 10_002),
            "an action inside the retention stays"
        );
        assert!(
            doc.incidents.open.contains_key("api"),
            "the open incident stays"
        );
        assert!(out.resolved_incidents > 0, "{out:?}");
    }

    #[test]
    fn a_journal_under_budget_is_left_alone() {
        let mut doc = JournalDoc::default();
        doc.actions.push(action(1, 0, ActionResult::Succeeded));
        let before = doc.clone();
        let out = compact(&mut doc, DEFAULT_MAX_BYTES, Duration::ZERO, t(10), size);
        assert!(out.is_empty());
        assert_eq!(doc, before);
    }

    #[test]
    fn a_pending_verification_is_never_dropped() {
        let mut doc = JournalDoc::default();
        let mut pending = action(1, 0, ActionResult::Succeeded);
        pending.verified = None;
        doc.actions.push(pending);
        for i in 2..200 {
            doc.actions.push(action(i, 0, ActionResult::Succeeded));
        }
        compact(&mut doc, 500, Duration::ZERO, t(10), size);
        assert!(doc.actions.iter().any(|a| a.id == 1));
    }
}
