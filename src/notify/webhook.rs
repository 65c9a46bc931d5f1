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
