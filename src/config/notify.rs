//! The `[[notify]]` entries of `remediations.toml`: where incident notices go (a generic JSON
//! webhook, a Slack incoming webhook, or Alertmanager's API v2), from which level, and how
//! hard to try.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;
use crate::level::Level;

/// What a receiver speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiverKind {
    /// Generic JSON: the event, the incident fields and the rendered text.
    Webhook,
    /// A Slack-compatible incoming webhook: `{"text": …}` (and blocks if asked).
    Slack,
    /// Alertmanager API v2 (`url` is its base URL; alerts go to `/api/v2/alerts`).
    Alertmanager,
}

impl ReceiverKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverKind::Webhook => "webhook",
            ReceiverKind::Slack => "slack",
            ReceiverKind::Alertmanager => "alertmanager",
        }
    }
}

/// One receiver as written in `remediations.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Names the receiver in logs, on the timeline and as the `receiver` metric label.
    pub name: String,
    pub kind: ReceiverKind,
    /// Where to send. A Slack webhook URL is itself a secret: use `url_from` for it.
    #[serde(default)]
    pub url: Option<String>,
    /// The URL read from an environment variable or a file.
    #[serde(default)]
    pub url_from: Option<SecretRef>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub token: Option<SecretRef>,
    /// Incidents below this level are not sent to this receiver.
    #[serde(default = "default_min_level")]
    pub min_level: Level,
    /// Timeout of one attempt.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Retries after the first attempt (transient failures only: network, 429, 5xx).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first pause between attempts; it doubles each time, up to 30 s.
    #[serde(default = "default_retry_delay", with = "humantime_serde")]
    pub retry_delay: Duration,
    /// Give up on one notice after this long, retries included.
    #[serde(default = "default_deadline", with = "humantime_serde")]
    pub deadline: Duration,
    /// Notices waiting for this receiver; beyond it, new ones are dropped (and counted).
    #[serde(default = "default_queue_size")]
    pub queue_size: usize,
    /// Alertmanager only: send the alerts of open incidents again this often, so they stay
    /// active past Alertmanager's `resolve_timeout` (5 min by default). `0s` turns it off.
    #[serde(default = "default_resend", with = "humantime_serde")]
    pub resend: Duration,
    /// Slack only: add Block Kit blocks beside the plain `text`.
    #[serde(default)]
    pub blocks: bool,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn default_min_level() -> Level {
    Level::P4
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_retries() -> u32 {
    3
}

fn default_retry_delay() -> Duration {
    Duration::from_secs(1)
}

fn default_deadline() -> Duration {
    Duration::from_secs(60)
}

fn default_resend() -> Duration {
    Duration::from_secs(60)
}

fn default_queue_size() -> usize {
    100
}

fn yes() -> bool {
    true
}

impl ReceiverConfig {
    /// Problems with this receiver as `(field, message)`, for `validate()`.
    pub(super) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![];
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            || self.name.is_empty()
        {
            out.push((
                "name",
                "must be non-empty letters, digits, `-` or `_` (it is a metric label)".into(),
            ));
        }
        match (&self.url, &self.url_from) {
            (Some(url), None) => match url::Url::parse(url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
                Ok(u) => out.push((
                    "url",
                    format!("scheme `{}` is not http or https", u.scheme()),
                )),
                // The parse error never quotes the URL, which may hold a token.
                Err(e) => out.push(("url", format!("not a valid URL: {e}"))),
            },
            (None, Some(secret)) => {
                if let Some(p) = secret.shape_problem() {
                    out.push(("url_from", p.into()));
                }
            }
            _ => out.push(("url", "set exactly one of `url` or `url_from`".into())),
        }
        if let Some(p) = self.token.as_ref().and_then(|t| t.shape_problem()) {
            out.push(("token", p.into()));
        }
        if self.min_level == Level::Ok {
            out.push(("min_level", "must be a level from P4 to P1".into()));
        }
        if self.timeout.is_zero() {
            out.push(("timeout", "must be greater than zero".into()));
        }
        if self.deadline < self.timeout {
            out.push(("deadline", "must not be shorter than the timeout".into()));
        }
        if self.queue_size == 0 {
            out.push(("queue_size", "must be at least 1".into()));
        }
        if !self.resend.is_zero() && self.resend < Duration::from_millis(100) {
            out.push(("resend", "must be 0s (off) or at least 100ms".into()));
        }
        if self.blocks && self.kind != ReceiverKind::Slack {
            out.push(("blocks", "only a slack receiver sends blocks".into()));
        }
        out
    }
}
