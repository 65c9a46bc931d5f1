//! Posting one JSON payload to one receiver: bearer token, a timeout per attempt, retries with
//! exponential backoff (backon) for transient failures only, all under a deadline. Errors
//! carry a reason code, never the URL (a Slack webhook URL is a secret) nor the token.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use crate::config::ReceiverConfig;
use crate::probes::classify::classify_chain;

/// The longest pause between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The URL or token could not be read (the message names the variable or file only).
    #[error("{field}: {message}")]
    Secret {
        field: &'static str,
        message: String,
    },
    #[error("request failed: {0}")]
    Transport(&'static str),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("gave up after the {0:?} deadline")]
    Deadline(Duration),
}

impl SendError {
    /// Worth another attempt: the network, a timeout, 429 or a 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            SendError::Transport(_) => true,
            SendError::Status(code) => *code == 429 || *code >= 500,
            SendError::Secret { .. } | SendError::Deadline(_) => false,
        }
    }
}

/// Posts `body` to `cfg`'s URL (plus `path`), with up to `retries` retries; returns the
/// result and the attempts made.
pub(super) async fn post_with_retries(
    client: &reqwest::Client,
    cfg: &ReceiverConfig,
    path: &str,
    body: &serde_json::Value,
    retries: u32,
) -> (Result<(), SendError>, u32) {
    let url = match resolve_url(cfg).await {
        Ok(u) => format!("{}{path}", u.trim_end_matches('/')),
        Err(e) => return (Err(e), 0),
    };
    let token = match &cfg.token {
        Some(t) => match t.read().await {
            Ok(s) => Some(s),
            Err(e) => {
                return (
                    Err(SendError::Secret {
                        field: "token",
                        message: e.to_string(),
                    }),
                    0,
                );
            }
        },
        None => None,
    };
    let attempts = AtomicU32::new(0);
    let backoff = ExponentialBuilder::default()
        .with_min_delay(cfg.retry_delay)
        .with_max_delay(MAX_RETRY_DELAY)
        .with_max_times(retries as usize)
        .with_jitter();
    let attempt = || async {
        attempts.fetch_add(1, Ordering::Relaxed);
        let mut request = client.post(&url).timeout(cfg.timeout).json(body);
        if let Some(t) = &token {
            request = request.bearer_auth(t.expose());
        }
        let response = request.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(SendError::Status(status.as_u16()))
        }
    };
    let retried = attempt
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(SendError::is_transient)
        .notify(|e, pause| {
            tracing::debug!(receiver = %cfg.name, error = %e, ?pause, "notification attempt failed, retrying");
        });
    let result = match tokio::time::timeout(cfg.deadline, retried).await {
        Ok(r) => r,
        Err(_) => Err(SendError::Deadline(cfg.deadline)),
    };
    (result, attempts.load(Ordering::Relaxed))
}

/// The receiver's URL, or the secret holding it (read off the async threads).
async fn resolve_url(cfg: &ReceiverConfig) -> Result<String, SendError> {
    match (&cfg.url, &cfg.url_from) {
        (Some(u), _) => Ok(u.clone()),
        (None, Some(secret)) => secret
            .read()
            .await
            .map(|s| s.expose().to_owned())
            .map_err(|e| SendError::Secret {
                field: "url_from",
                message: e.to_string(),
            }),
        (None, None) => Err(SendError::Secret {
            field: "url",
            message: "no url configured".into(),
        }),
    }
}

fn transport(e: &reqwest::Error) -> SendError {
    if e.is_timeout() {
        SendError::Transport("timeout")
    } else {
        SendError::Transport(classify_chain(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_network_429_and_5xx_are_retried() {
        let cases = [
            (SendError::Transport("connection_refused"), true),
            (SendError::Transport("timeout"), true),
            (SendError::Status(500), true),
            (SendError::Status(503), true),
            (SendError::Status(429), true),
            (SendError::Status(400), false),
            (SendError::Status(401), false),
            (SendError::Status(404), false),
            (
                SendError::Secret {
                    field: "token",
                    message: "environment variable X is not set".into(),
                },
                false,
            ),
            (SendError::Deadline(Duration::from_secs(1)), false),
        ];
        for (e, transient) in cases {
            assert_eq!(e.is_transient(), transient, "{e}");
        }
    }
}
