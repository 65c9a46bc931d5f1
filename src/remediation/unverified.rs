//! The remediator's side of `journal::pending_verify`: settles the verifications no live
//! process will finish, notes them (warning, timeline) and escalates the chain only when the
//! rule's trigger is at its level now.

use tracing::{info, warn};

use super::{Context, Remediator, trigger_of};
use crate::incident::EntryKind;

impl Remediator {
    /// Settles the verifications no live process will finish (`journal::pending_verify`):
    /// `verified: false`, a warning and a timeline entry. The chain escalates only if the
    /// rule's trigger is at its level now (the scorer keeps no `Unknown` result, so an
    /// unknown target escalates nothing); otherwise the incident resolves by its green period.
    /// Returns how many were settled (the journal changed). Called by the leader.
    pub fn settle_unverified(&mut self, cx: &mut Context<'_>) -> usize {
        let config = cx.config.clone();
        let window_of = |rule: &str| {
            config
                .rules
                .iter()
                .find(|r| r.id == rule)
                .and_then(|r| r.verify.as_ref().map(|v| v.within))
        };
        let verifying = |id: u64| self.verifying.contains(&id);
        let settled = cx
            .doc
            .settle_unverified(cx.now, cx.writer, verifying, window_of);
        let n = settled.len();
        for s in settled {
            warn!(action = s.id, rule = %s.rule, "{}", s.text);
            cx.doc
                .incidents
                .note(&s.key, EntryKind::Verification, s.text.clone(), cx.now);
            let Some(rule) = config.rules.iter().find(|r| r.id == s.rule) else {
                continue;
            };
            let (probes, _) = trigger_of(&config, rule);
            let level = cx
                .scorer
                .trigger_state(&probes, rule.trigger.min_level, &rule.trigger.reasons)
                .level;
            if level >= rule.trigger.min_level {
                self.escalate(cx, rule, &s.key);
            } else {
                info!(rule = %rule.id, "{}: its trigger is not failing now; nothing escalated", s.key);
                cx.doc.incidents.note(
                    &s.key,
                    EntryKind::Decision,
                    format!(
                        "rule {}: {} is not failing now (level {level}); nothing escalated",
                        rule.id, s.key
                    ),
                    cx.now,
                );
            }
        }
        n
    }
}
