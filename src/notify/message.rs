//! The text of a notice (pure), after the communication template of seed 000, in English:
//!
//! ```text
//! [INCIDENT] P1 - <title>
//! Detected: <date/time>
//! Impact: <what is wrong, and the latest evidence>
//! Affected: <the service or group>
//! Status: <open for …, escalated …, breached …, resolved after …>
//! Actions: <the last decisions and actions of the timeline>
//! ETA: <the level's response target>
//! Incident: <id>
//! ```

use std::time::Duration;

use super::{Notice, NoticeKind};
use crate::config::IncidentSettings;
use crate::incident::{Entry, EntryKind, Incident};

/// Actions listed while the incident is open, and once it is resolved.
const ACTIONS_OPEN: usize = 5;
const ACTIONS_RESOLVED: usize = 10;

/// A rendered notice: the title line, and the whole text (title included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub title: String,
    pub text: String,
}

impl Message {
    /// The text without its title line.
    pub fn body(&self) -> &str {
        self.text
            .split_once('\n')
            .map_or("", |(_, rest)| rest.trim_start_matches('\n'))
    }
}

/// Renders `notice` after the seed's template.
pub fn render(notice: &Notice, settings: &IncidentSettings) -> Message {
    let inc = &notice.incident;
    let level = notice.level();
    let tag = match notice.kind {
        NoticeKind::Opened => "INCIDENT",
        NoticeKind::Escalated => "ESCALATED",
        NoticeKind::Breached => "BREACHED",
        NoticeKind::Resolved => "RESOLVED",
        NoticeKind::Paged => "PAGE",
    };
    let title = format!("[{tag}] {level} - {}", inc.title());
    let mut lines = vec![
        title.clone(),
        format!("Detected: {}", clock(inc.opened_at, true)),
    ];
    if notice.kind == NoticeKind::Resolved {
        let at = inc.resolved_at.unwrap_or(notice.at);
        lines.push(format!(
            "Resolved: {} (lasted {})",
            clock(at, true),
            span(inc.duration(at))
        ));
    }
    lines.push(format!("Impact: {}", impact(inc)));
    lines.push(format!("Affected: {}", inc.key));
    lines.push(format!("Status: {}", status(notice, settings)));
    let keep = match notice.kind {
        NoticeKind::Resolved => ACTIONS_RESOLVED,
        _ => ACTIONS_OPEN,
    };
    lines.extend(actions(inc, keep));
    if notice.kind != NoticeKind::Resolved {
        lines.push(format!("ETA: {}", eta(notice, settings)));
    }
    lines.push(format!("Incident: {}", inc.id));
    Message {
        title,
        text: lines.join("\n"),
    }
}

/// The reason in words, and the latest evidence (the detection or escalation entry).
fn impact(inc: &Incident) -> String {
    let reason = inc.reason.replace('_', " ");
    let evidence = inc.timeline.iter().rev().find(|e| {
        matches!(
            e.kind,
            EntryKind::Detected | EntryKind::Escalated | EntryKind::Relapsed
        )
    });
    match evidence {
        Some(e) => format!("{reason} ({})", e.text),
        None => reason,
    }
}

fn status(notice: &Notice, settings: &IncidentSettings) -> String {
    let inc = &notice.incident;
    let open_for = span(inc.duration(notice.at));
    match notice.kind {
        NoticeKind::Opened => format!("open, {}", inc.level),
        NoticeKind::Escalated => match notice.from {
            Some(from) => format!("escalated {from} → {}, open for {open_for}", inc.level),
            None => format!("escalated to {}, open for {open_for}", inc.level),
        },
        NoticeKind::Breached => match settings.target(inc.peak) {
            Some(t) => format!(
                "{} response target of {} breached, open for {open_for}, now {}",
                inc.peak,
                span(t),
                inc.level
            ),
            None => format!("response target breached, open for {open_for}"),
        },
        NoticeKind::Resolved if inc.key == crate::incident::ASTREINTE => {
            inc.timeline.last().map_or_else(
                || "resolved".to_owned(),
                |e| format!("resolved: {}", e.text),
            )
        }
        NoticeKind::Resolved => format!(
            "resolved after {} of green monitoring, peak {}",
            span(settings.green_period),
            inc.peak
        ),
        NoticeKind::Paged => format!(
            "astreinte pages the on-call: {}",
            notice
                .page
                .as_deref()
                .unwrap_or("a remediation did not help")
        ),
    }
}

/// `Actions: none yet`, or the last `keep` decisions and actions, one per line.
fn actions(inc: &Incident, keep: usize) -> Vec<String> {
    let done: Vec<&Entry> = inc
        .timeline
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Action | EntryKind::Decision))
        .collect();
    if done.is_empty() {
        return vec!["Actions: none yet".to_owned()];
    }
    let mut out = vec!["Actions:".to_owned()];
    let skipped = done.len().saturating_sub(keep);
    if skipped > 0 {
        out.push(format!("- ({skipped} earlier)"));
    }
    for e in &done[skipped..] {
        out.push(format!(
            "- {} {}: {}",
            clock(e.at, false),
            e.kind.as_str(),
            e.text
        ));
    }
    out
}

/// When the level's response target falls, as the template's ETA.
fn eta(notice: &Notice, settings: &IncidentSettings) -> String {
    let inc = &notice.incident;
    let level = notice.level();
    let Some(target) = settings.target(level) else {
        return format!("no response target set for {level}");
    };
    let due = inc.opened_at + target;
    if notice.kind == NoticeKind::Breached || due < notice.at {
        format!(
            "overdue since {} ({level} response target {})",
            clock(due, false),
            span(target)
        )
    } else {
        format!(
            "by {} ({level} response target {})",
            clock(due, false),
            span(target)
        )
    }
}

/// `2026-11-23 03:12:00 UTC`, or `03:12:00 UTC` without the date.
fn clock(at: jiff::Timestamp, with_date: bool) -> String {
    let format = if with_date {
        "%Y-%m-%d %H:%M:%S UTC"
    } else {
        "%H:%M:%S UTC"
    };
    at.strftime(format).to_string()
}

/// `4m 10s`, to the second.
fn span(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
#[path = "message_tests.rs"]
mod tests;
