//! Timeline entries: what happened to an incident, and when.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    Detected,
    Escalated,
    Improved,
    Green,
    Relapsed,
    Decision,
    Action,
    Verification,
    Notification,
    Breached,
    Resolved,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Detected => "detected",
            EntryKind::Escalated => "escalated",
            EntryKind::Improved => "improved",
            EntryKind::Green => "green",
            EntryKind::Relapsed => "relapsed",
            EntryKind::Decision => "decision",
            EntryKind::Action => "action",
            EntryKind::Verification => "verification",
            EntryKind::Notification => "notification",
            EntryKind::Breached => "breached",
            EntryKind::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub at: jiff::Timestamp,
    pub kind: EntryKind,
    pub text: String,
}
