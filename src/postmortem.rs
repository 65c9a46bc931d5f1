//! Post-mortem drafts (pure): the seed's template (summary, impact, timeline, root cause,
//! corrective actions, lessons) filled in from a resolved incident and its timeline.

use std::fmt::Write as _;

use crate::incident::{EntryKind, Incident};
use crate::journal::{ActionRecord, ActionResult};

/// Renders the draft. `actions` are the journal's actions for this incident.
pub fn draft(incident: &Incident, actions: &[ActionRecord], tz: &jiff::tz::TimeZone) -> String {
    let at = |t: jiff::Timestamp| {
        t.to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    let hhmm = |t: jiff::Timestamp| t.to_zoned(tz.clone()).strftime("%H:%M").to_string();
    let end = incident.resolved_at.unwrap_or(incident.opened_at);
    // Whole seconds under a minute ("51s", not "0 minutes"), then minutes and seconds.
    let lasted = humantime::format_duration(std::time::Duration::from_secs(
        crate::clock::elapsed(end, incident.opened_at).as_secs(),
    ));
    let mut md = String::new();
    let _ = writeln!(md, "# Post-Mortem Incident #{}\n", incident.id);
    let _ = writeln!(md, "## Summary");
    let _ = writeln!(md, "**Date**: {}", at(incident.opened_at));
    let _ = writeln!(md, "**Duration**: {lasted}");
    let _ = writeln!(
        md,
        "**Impact**: {} on `{}` (peak level {}){}\n",
        incident.worst_reason().replace('_', " "),
        incident.key,
        incident.peak,
        if incident.breached {
            ", response target breached"
        } else {
            ""
        }
    );
    let _ = writeln!(md, "## Timeline");
    for e in &incident.timeline {
        let _ = writeln!(md, "- [{}] {}: {}", hhmm(e.at), label(e.kind), e.text);
    }
    let _ = writeln!(
        md,
        "\n## Root Cause\n[To be written by the team: what astreinte saw was `{}` at its worst ({}), `{}` last.]\n",
        incident.worst_reason(),
        incident.peak,
        incident.reason
    );
    let _ = writeln!(md, "## Actions taken by astreinte");
    if actions.is_empty() {
        let _ = writeln!(md, "None.");
    }
    for a in actions {
        let _ = writeln!(
            md,
            "- [{}] {} `{}` on `{}` (rule `{}`): {}{}",
            hhmm(a.started_at),
            a.action,
            a.id,
            a.target,
            a.rule,
            result(&a.result),
            if a.detail.is_empty() {
                String::new()
            } else {
                format!(" — {}", a.detail)
            }
        );
    }
    let _ = writeln!(
        md,
        "\n## Corrective Actions\n1. [Immediate action]\n2. [Short term]\n3. [Long term]\n"
    );
    let _ = writeln!(md, "## Lessons Learned\n[What to improve]");
    md
}

fn label(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Detected => "Detection",
        EntryKind::Escalated => "Escalation",
        EntryKind::Improved => "Improvement",
        EntryKind::Green => "Monitoring green",
        EntryKind::Relapsed => "Relapse",
        EntryKind::Decision => "Decision",
        EntryKind::Action => "Mitigation",
        EntryKind::Verification => "Verification",
        EntryKind::Notification => "Communication",
        EntryKind::Breached => "Target breached",
        EntryKind::Resolved => "Resolution",
    }
}

fn result(r: &ActionResult) -> String {
    match r {
        ActionResult::Running => "running".into(),
        ActionResult::Succeeded => "succeeded".into(),
        ActionResult::Failed { reason } => format!("failed ({reason})"),
        ActionResult::Interrupted => "interrupted".into(),
        ActionResult::Rehearsed => "dry-run, not applied".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IncidentSettings;
    use crate::incident::Incidents;
    use crate::level::Level;

    #[test]
    fn the_draft_follows_the_seed_template() {
        let s = IncidentSettings::default();
        let t = |m: i64| jiff::Timestamp::from_second(1_700_000_000 + m * 60).unwrap();
        let mut inc = Incidents::default();
        inc.on_level(
            "rag-production",
            Level::P1,
            "bad_status",
            "HTTP 500",
            t(0),
            &s,
        );
        inc.note(
            "rag-production",
            EntryKind::Action,
            "restart rag-api".into(),
            t(2),
        );
        inc.on_level("rag-production", Level::Ok, "ok", "", t(5), &s);
        inc.tick(t(20), &s);
        let incident = inc.recent[0].clone();
        let md = draft(&incident, &[], &jiff::tz::TimeZone::UTC);
        for section in [
            "# Post-Mortem Incident #1-rag-production",
            "## Summary",
            "**Duration**: 20m",
            "## Timeline",
            "Detection: P1 detected",
            "Mitigation: restart rag-api",
            "Resolution: resolved after 20m",
            "## Root Cause",
            "## Corrective Actions",
            "## Lessons Learned",
        ] {
            assert!(md.contains(section), "missing {section:?} in\n{md}");
        }
    }

    /// Issue #15 (6): 51 s is "51s", not "0 minutes".
    #[test]
    fn a_short_incident_lasts_seconds() {
        let s = IncidentSettings::default();
        let t = |sec: i64| jiff::Timestamp::from_second(1_700_000_000 + sec).unwrap();
        let mut inc = Incidents::default();
        inc.on_level("redis", Level::P2, "no_master", "", t(0), &s);
        let mut incident = inc.open["redis"].clone();
        incident.resolved_at = Some(t(51));
        let md = draft(&incident, &[], &jiff::tz::TimeZone::UTC);
        assert!(md.contains("**Duration**: 51s"), "{md}");
    }
}
