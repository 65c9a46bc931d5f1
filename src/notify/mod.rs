//! Incident notifications: what an incident event becomes (a [`Notice`], rendered by
//! [`message`] after the seed's communication template), how each kind of receiver wants it
//! (`webhook`, `slack`, `alertmanager`), and the [`Notifier`] task that delivers it with
//! retries without ever blocking the engine.
//!
//! The receivers are configured as `[[notify]]` in `remediations.toml`
//! ([`crate::config::ReceiverConfig`]). Each delivery ends as a [`Delivery`] on a channel (for
//! the incident timeline) and in `astreinte_notifications_total{receiver,result}`.

pub mod alertmanager;
pub mod message;
mod notifier;
mod send;
pub mod slack;
pub mod webhook;

use serde::Serialize;

pub use crate::config::{ReceiverConfig, ReceiverKind};
use crate::incident::{Event, Incident};
use crate::level::Level;
pub use message::{Message, render};
pub use notifier::Notifier;
pub use send::SendError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the HTTP client for notifications: {0}")]
    Client(#[source] reqwest::Error),
}

/// What happened to the incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Opened,
    Escalated,
    Breached,
    Resolved,
    /// A rule paged the on-call (escalation ended, or the partition guard tripped).
    Paged,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::Opened => "opened",
            NoticeKind::Escalated => "escalated",
            NoticeKind::Breached => "breached",
            NoticeKind::Resolved => "resolved",
            NoticeKind::Paged => "paged",
        }
    }
}

/// One incident event to tell the receivers about.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub incident: Incident,
    /// The level before an escalation.
    pub from: Option<Level>,
    /// When the event happened.
    pub at: jiff::Timestamp,
    /// Why the on-call is paged (for `Paged`).
    pub page: Option<String>,
}

impl Notice {
    pub fn new(event: &Event, at: jiff::Timestamp) -> Notice {
        let (kind, incident, from) = match event {
            Event::Opened(i) => (NoticeKind::Opened, i.clone(), None),
            Event::Escalated { incident, from } => {
                (NoticeKind::Escalated, incident.clone(), Some(*from))
            }
            Event::Breached(i) => (NoticeKind::Breached, i.clone(), None),
            Event::Resolved(i) => (NoticeKind::Resolved, i.clone(), None),
            Event::Paged { incident, text } => (
                NoticeKind::Paged,
                incident
                    .clone()
                    .unwrap_or_else(|| crate::incident::about_astreinte(text, at)),
                None,
            ),
        };
        let page = match event {
            Event::Paged { text, .. } => Some(text.clone()),
            _ => None,
        };
        Notice {
            kind,
            incident,
            from,
            at,
            page,
        }
    }

    /// The level it is about (a page is always P1): the current one while it moves, the peak once it is breached
    /// or resolved (so a receiver that saw it open also sees it end).
    pub fn level(&self) -> Level {
        match self.kind {
            NoticeKind::Paged => Level::P1,
            NoticeKind::Opened | NoticeKind::Escalated => self.incident.level,
            NoticeKind::Breached | NoticeKind::Resolved => self.incident.peak,
        }
    }
}

/// The outcome of one notice at one receiver, for the incident timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub incident_id: String,
    /// The incident key (what `Incidents::note` takes).
    pub key: String,
    pub receiver: String,
    pub kind: NoticeKind,
    pub ok: bool,
    /// HTTP attempts made (0 when it could not even start, e.g. a missing secret).
    pub attempts: u32,
    /// Why it failed, without URL or secret.
    pub error: Option<String>,
}

impl Delivery {
    /// The line for the incident timeline.
    pub fn timeline_text(&self) -> String {
        let tries = match self.attempts {
            1 => "1 attempt".to_owned(),
            n => format!("{n} attempts"),
        };
        match (&self.error, self.ok) {
            (_, true) => format!(
                "{} notice delivered to {} ({tries})",
                self.kind.as_str(),
                self.receiver
            ),
            (Some(e), false) => format!(
                "{} notice to {} failed ({tries}): {e}",
                self.kind.as_str(),
                self.receiver
            ),
            (None, false) => format!(
                "{} notice to {} failed ({tries})",
                self.kind.as_str(),
                self.receiver
            ),
        }
    }
}
