//! The generic JSON webhook: the event kind, the incident fields and the rendered text, so a
//! receiver can either show the text or build its own.

use serde_json::{Value, json};

use super::{Message, Notice};

/// The body POSTed to a `webhook` receiver (`version` changes only with breaking changes).
pub fn payload(notice: &Notice, message: &Message) -> Value {
    let inc = &notice.incident;
    json!({
        "version": "1",
        "event": notice.kind.as_str(),
        "at": notice.at.to_string(),
        "from": notice.from.map(|l| l.as_str()),
        "incident": {
            "id": inc.id,
            "key": inc.key,
            "level": inc.level.as_str(),
            "peak": inc.peak.as_str(),
            "reason": inc.reason,
            "opened_at": inc.opened_at.to_string(),
            "resolved_at": inc.resolved_at.map(|t| t.to_string()),
            "breached": inc.breached,
            "duration_seconds": inc.duration(notice.at).as_secs(),
        },
        "title": message.title,
        "text": message.text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::IncidentSettings;
    use crate::incident::Incidents;
    use crate::level::Level;
    use crate::notify::render;

    #[test]
    fn an_escalation_says_from_which_level() {
        let s = IncidentSettings::default();
        let t0 = jiff::Timestamp::from_second(1_800_000_000).unwrap();
        let t1 = t0 + jiff::SignedDuration::from_secs(90);
        let mut inc = Incidents::default();
        inc.on_level("api", Level::P3, "slow", "", t0, &s);
        let e = inc.on_level("api", Level::P1, "service_down", "", t1, &s);
        let n = Notice::new(&e[0], t1);
        let v = payload(&n, &render(&n, &s));
        assert_eq!(v["event"], "escalated");
        assert_eq!(v["from"], "P3");
        assert_eq!(v["incident"]["level"], "P1");
        assert_eq!(v["incident"]["duration_seconds"], 90);
        assert!(
            v["title"]
                .as_str()
                .unwrap()
                .starts_with("[ESCALATED] P1 - ")
        );
    }
}
