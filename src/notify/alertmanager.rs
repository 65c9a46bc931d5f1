//! Alertmanager API v2: `POST /api/v2/alerts` with a JSON array of alerts.
//!
//! An incident is one alert `alertname="AstreinteIncident"` with labels `severity` (its
//! level), `incident` (its id) and `key`. Alertmanager identifies an alert by its labels, so a
//! new severity is a new alert: an escalation starts the alert at the new severity and ends
//! (`endsAt`) the alerts at every other severity it may have had; a resolve ends them all at
//! the resolve time. Firing alerts carry no `endsAt`: Alertmanager keeps them active for its
//! `resolve_timeout` (5 min by default), so the notifier sends [`firing`] alerts again every
//! `resend` while the incident is open.

use serde_json::{Value, json};

use super::{Message, Notice, NoticeKind};
use crate::level::Level;

/// Appended to the receiver's URL.
pub const PATH: &str = "/api/v2/alerts";
/// The `alertname` label of every incident alert.
pub const ALERT_NAME: &str = "AstreinteIncident";

const LEVELS: [Level; 4] = [Level::P4, Level::P3, Level::P2, Level::P1];

/// The array POSTed to an `alertmanager` receiver.
pub fn payload(notice: &Notice, message: &Message) -> Value {
    let inc = &notice.incident;
    let mut alerts = vec![];
    // The severities it may have fired at: any level up to its peak.
    let possible = LEVELS.iter().filter(|l| **l <= inc.peak);
    match notice.kind {
        NoticeKind::Opened | NoticeKind::Escalated | NoticeKind::Breached => {
            alerts.push(alert(notice, message, inc.level, None));
            for &old in possible.filter(|l| **l != inc.level) {
                if notice.kind == NoticeKind::Escalated {
                    alerts.push(alert(notice, message, old, Some(notice.at)));
                }
            }
        }
        NoticeKind::Paged => alerts.push(alert(notice, message, Level::P1, None)),
        NoticeKind::Resolved => {
            let ended_at = inc.resolved_at.unwrap_or(notice.at);
            for &level in possible {
                alerts.push(alert(notice, message, level, Some(ended_at)));
            }
        }
    }
    Value::Array(alerts)
}

/// The alert of a still open incident at its current severity, to send again so that it
/// stays active.
pub fn firing(notice: &Notice, message: &Message) -> Value {
    json!([alert(notice, message, notice.incident.level, None)])
}

fn alert(
    notice: &Notice,
    message: &Message,
    severity: Level,
    ends_at: Option<jiff::Timestamp>,
) -> Value {
    let inc = &notice.incident;
    let mut a = json!({
        "labels": {
            "alertname": ALERT_NAME,
            "severity": severity.as_str(),
            "incident": inc.id,
            "key": inc.key,
        },
        "annotations": {
            "summary": message.title,
            "description": message.body(),
            "reason": inc.reason,
        },
        "startsAt": inc.opened_at.to_string(),
    });
    if let Some(end) = ends_at {
        // Alertmanager rejects an alert that ends before it starts.
        a["endsAt"] = json!(end.max(inc.opened_at).to_string());
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IncidentSettings;
    use crate::incident::Incidents;
    use crate::notify::render;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn severities(v: &Value) -> Vec<(String, bool)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|a| {
                (
                    a["labels"]["severity"].as_str().unwrap().to_owned(),
                    a.get("endsAt").is_some(),
                )
            })
            .collect()
    }

    #[test]
    fn open_escalate_resolve() {
        let s = IncidentSettings {
            green_period: std::time::Duration::ZERO,
            ..IncidentSettings::default()
        };
        let mut inc = Incidents::default();
        let send = |events: Vec<crate::incident::Event>, at| {
            let n = Notice::new(&events[0], at);
            payload(&n, &render(&n, &s))
        };
        let opened = send(inc.on_level("api", Level::P2, "slow", "", t(0), &s), t(0));
        assert_eq!(severities(&opened), [("P2".into(), false)]);
        assert_eq!(opened[0]["labels"]["alertname"], ALERT_NAME);
        assert_eq!(opened[0]["labels"]["incident"], "1-api");
        assert_eq!(opened[0]["startsAt"], t(0).to_string());
        assert!(
            opened[0]["annotations"]["summary"]
                .as_str()
                .unwrap()
                .starts_with("[INCIDENT] P2")
        );

        let up = send(inc.on_level("api", Level::P1, "down", "", t(60), &s), t(60));
        assert_eq!(
            severities(&up),
            [
                ("P1".into(), false),
                ("P4".into(), true),
                ("P3".into(), true),
                ("P2".into(), true)
            ]
        );
        assert_eq!(up[3]["endsAt"], t(60).to_string());

        assert!(inc.on_level("api", Level::Ok, "", "", t(90), &s).is_empty());
        let done = send(inc.tick(t(90), &s), t(90));
        assert_eq!(severities(&done).len(), 4);
        assert!(severities(&done).iter().all(|(_, ended)| *ended));
        assert_eq!(done[3]["endsAt"], t(90).to_string());
    }
}
