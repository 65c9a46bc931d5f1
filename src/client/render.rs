//! Plain-text output of the client commands: aligned tables and incident timelines.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::{DecisionView, IncidentList};
use crate::incident::Incident;
use crate::when;

/// `astreinte incidents`: open ones first (worst first), then the recently resolved ones.
pub fn incidents(list: &IncidentList, now: Timestamp, tz: &TimeZone) -> String {
    let mut out = incident_table(list, now, tz);
    if list.leader == Some(false) {
        out.push_str(
            "(this replica is not the leader: these are the leader's incidents as last read \
             from the shared journal)\n",
        );
    }
    out
}

fn incident_table(list: &IncidentList, now: Timestamp, tz: &TimeZone) -> String {
    if list.open.is_empty() && list.recent.is_empty() {
        return "no incident: none open, none resolved recently\n".to_owned();
    }
    let mut open: Vec<&Incident> = list.open.iter().collect();
    open.sort_by(|a, b| b.level.cmp(&a.level).then(a.opened_at.cmp(&b.opened_at)));
    let rows: Vec<Vec<String>> = open
        .into_iter()
        .chain(&list.recent)
        .map(|i| {
            vec![
                i.id.clone(),
                i.key.clone(),
                format!("{}/{}", i.level, i.peak),
                i.reason.clone(),
                moment(i.opened_at, now, tz),
                when::compact(i.duration(now)),
                i.resolved_at
                    .map_or_else(|| "open".to_owned(), |t| moment(t, now, tz)),
                if i.breached { "yes" } else { "no" }.to_owned(),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "KEY",
            "LEVEL/PEAK",
            "REASON",
            "OPENED",
            "DURATION",
            "RESOLVED",
            "BREACHED",
        ],
        &rows,
    )
}

/// `astreinte incidents show ID`: a summary, then the timeline.
pub fn incident(i: &Incident, now: Timestamp, tz: &TimeZone) -> String {
    let mut out = String::new();
    let state = match i.resolved_at {
        Some(t) => format!("resolved {}", when::full(t, tz)),
        None => "open".to_owned(),
    };
    let _ = writeln!(out, "incident {}: {}", i.id, i.title());
    let _ = writeln!(
        out,
        "level {} (peak {}), {state}, opened {} ({}), lasted {}{}",
        i.level,
        i.peak,
        when::full(i.opened_at, tz),
        when::relative(i.opened_at, now),
        when::compact(i.duration(now)),
        if i.breached {
            ", response target breached"
        } else {
            ""
        },
    );
    if let Some(parent) = &i.attached_to {
        let _ = writeln!(out, "attached to {parent}");
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = i
        .timeline
        .iter()
        .map(|e| {
            vec![
                when::full(e.at, tz),
                e.kind.as_str().to_owned(),
                e.text.clone(),
            ]
        })
        .collect();
    out.push_str(&table(&["TIME", "KIND", "WHAT HAPPENED"], &rows));
    if i.postmortem.is_some() {
        let _ = writeln!(
            out,
            "\npost-mortem draft: astreinte incidents postmortem {}",
            i.id
        );
    }
    out
}

/// `astreinte explain`: each rule, its last decision and the one-line reason.
pub fn decisions(decisions: &[DecisionView], now: Timestamp, tz: &TimeZone) -> String {
    if decisions.is_empty() {
        return "no decision yet: no rule is configured, or none has been evaluated\n".to_owned();
    }
    let rows: Vec<Vec<String>> = decisions
        .iter()
        .map(|d| {
            vec![
                d.rule.clone(),
                decision_label(&d.decision),
                moment(d.at, now, tz),
                d.incident.clone().unwrap_or_else(|| "-".to_owned()),
                d.line.clone(),
            ]
        })
        .collect();
    table(&["RULE", "DECISION", "WHEN", "INCIDENT", "WHY"], &rows)
}

/// `act`, `dry-run`, `hold: cooldown`.
fn decision_label(d: &serde_json::Value) -> String {
    let field = |k: &str| d.get(k).and_then(|v| v.as_str());
    match (field("decision"), field("mode"), field("reason")) {
        (Some("act"), Some("enforce"), _) => "act".to_owned(),
        (Some("act"), Some(mode), _) => mode.to_owned(),
        (Some("hold"), _, Some(reason)) => format!("hold: {reason}"),
        (Some(other), _, _) => other.to_owned(),
        (None, _, _) => "?".to_owned(),
    }
}

/// `13:05:09 (3 min ago)`.
fn moment(at: Timestamp, now: Timestamp, tz: &TimeZone) -> String {
    format!("{} ({})", when::short(at, now, tz), when::relative(at, now))
}

/// Columns padded to their widest cell, no trailing blanks.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (cell, w) in cells.zip(&widths) {
            let _ = write!(text, "{cell:<w$}  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_without_trailing_blanks() {
        let t = table(
            &["A", "LONG HEADER", "LAST"],
            &[
                vec!["xxxx".into(), "y".into(), "end".into()],
                vec!["z".into(), "w".into(), "".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "A     LONG HEADER  LAST");
        assert_eq!(lines[1], "xxxx  y            end");
        assert_eq!(lines[2], "z     w");
    }

    #[test]
    fn a_follower_says_whose_incidents_it_serves() {
        let list = |leader| IncidentList {
            open: vec![],
            recent: vec![],
            leader,
        };
        let now = Timestamp::UNIX_EPOCH;
        let tz = TimeZone::UTC;
        assert!(!incidents(&list(Some(true)), now, &tz).contains("not the leader"));
        assert!(!incidents(&list(None), now, &tz).contains("not the leader"));
        let text = incidents(&list(Some(false)), now, &tz);
        assert!(
            text.contains("this replica is not the leader: these are the leader's incidents"),
            "{text}"
        );
    }

    #[test]
    fn decision_labels_name_the_mode_or_the_hold() {
        assert_eq!(
            decision_label(&json!({"decision": "act", "mode": "enforce"})),
            "act"
        );
        assert_eq!(
            decision_label(&json!({"decision": "act", "mode": "dry-run"})),
            "dry-run"
        );
        assert_eq!(
            decision_label(&json!({"decision": "hold", "reason": "cooldown", "left": 3})),
            "hold: cooldown"
        );
    }
}
