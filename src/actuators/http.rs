//! The `http` action: a call to an external API (the Hetzner Cloud reboot or firewall rule of
//! seed 004), with a bearer token from env or a file. Transient failures (connect errors,
//! 429, 5xx) are retried with backoff inside the action's deadline.

use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

use super::{ActionError, ActionOutcome};
use crate::config::SecretRef;

/// Never log a query string: it may carry a token.
pub fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, _)) => format!("{base}?…"),
        None => url.to_owned(),
    }
}

pub(super) async fn call(
    client: &reqwest::Client,
    method: &str,
    url: &str,
    body: Option<&str>,
    token: Option<&SecretRef>,
) -> Result<ActionOutcome, ActionError> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| ActionError::Refused(format!("`{method}` is not an HTTP method")))?;
    let token = match token {
        Some(t) => Some(
            t.read()
                .await
                .map_err(|e| ActionError::Refused(format!("token: {e}")))?,
        ),
        None => None,
    };
    let attempt = || async {
        let mut req = client.request(method.clone(), url);
        if let Some(t) = &token {
            req = req.bearer_auth(t.expose());
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Attempt::Transient(format!("request failed: {}", e.without_url())))?;
        let status = resp.status();
        if status.is_success() {
            Ok(status)
        } else if status.as_u16() == 429 || status.is_server_error() {
            Err(Attempt::Transient(format!("HTTP {}", status.as_u16())))
        } else {
            Err(Attempt::Final(format!("HTTP {}", status.as_u16())))
        }
    };
    let status = attempt
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_times(4),
        )
        .when(|e| matches!(e, Attempt::Transient(_)))
        .await
        .map_err(|e| match e {
            Attempt::Transient(m) | Attempt::Final(m) => {
                ActionError::Failed(format!("{method} {}: {m}", redact_url(url)))
            }
        })?;
    Ok(ActionOutcome {
        detail: format!("{method} {}: HTTP {}", redact_url(url), status.as_u16()),
        undo: None,
    })
}

enum Attempt {
    Transient(String),
    Final(String),
}
