//! The Patroni actions: `patroni_failover` (`POST /failover {"candidate": C}` on the
//! candidate's REST API) and `patroni_reinitialize` (`POST /reinitialize {"force": true}` on
//! the stuck replica). Both read the named `patroni` probe's config (members, `ttl`, `auth`),
//! build a fresh [`PatroniView`] and apply the pure gates of [`gate`] first, right before
//! acting, and again inside the action (the view may have changed in between).
//!
//! Patroni blocks a failover until it knows the outcome (up to about 20 s); the answer is
//! classified: 200 done; 400, 412 and 503 refused with Patroni's own text; 401 refused
//! (`authentication`); no answer failed. The Basic-auth password comes from a `SecretRef`
//! and never appears in an error, a detail or a log line.

pub mod gate;

use std::time::Duration;

use super::{ActionError, ActionOutcome};
use crate::config::{Config, PatroniSpec, ProbeSpec, RestAuth};
use crate::policy::Hold;
use crate::probes::Prober;
use crate::probes::patroni::PatroniView;

/// Longest Patroni answer read (its POST answers are one sentence).
const MAX_ANSWER_BYTES: usize = 4096;

/// The `patroni` probe an action names, with its id.
pub(super) fn spec<'a>(config: &'a Config, probe: &str) -> Result<&'a PatroniSpec, ActionError> {
    match config.probe(probe).map(|p| &p.spec) {
        Some(ProbeSpec::Patroni(spec)) => Ok(spec),
        Some(_) => Err(ActionError::Unavailable(format!(
            "probe {probe} is not a patroni probe"
        ))),
        None => Err(ActionError::Unavailable(format!("no probe {probe}"))),
    }
}

/// A fresh view of the probe's cluster, under the probe's timeout.
pub(super) async fn view(
    prober: &Prober,
    config: &Config,
    probe: &str,
) -> Result<PatroniView, ActionError> {
    let spec = spec(config, probe)?;
    let timeout = config
        .probe(probe)
        .map_or(Duration::from_secs(5), |p| config.timeout(p));
    Ok(prober.patroni_view(probe, spec, timeout).await)
}

fn refused(hold: Hold) -> ActionError {
    ActionError::Refused(hold.to_string())
}

/// Fails over to the best candidate of a fresh view (the gates are checked again here).
pub(super) async fn failover(
    http: &reqwest::Client,
    prober: &Prober,
    config: &Config,
    probe: &str,
) -> Result<ActionOutcome, ActionError> {
    let spec = spec(config, probe)?;
    let view = view(prober, config, probe).await?;
    let target = gate::failover_target(&view).map_err(refused)?;
    let body = serde_json::json!({ "candidate": target.name }).to_string();
    let answer = post(http, &target.url, "failover", &body, spec.auth.as_ref()).await?;
    Ok(ActionOutcome {
        detail: format!("failed over to member {} (Patroni: {answer})", target.name),
        undo: None,
    })
}

/// Reinitializes the stuck replica of a fresh view (never the leader).
pub(super) async fn reinitialize(
    http: &reqwest::Client,
    prober: &Prober,
    config: &Config,
    probe: &str,
) -> Result<ActionOutcome, ActionError> {
    let spec = spec(config, probe)?;
    let view = view(prober, config, probe).await?;
    let target = gate::reinitialize_target(&view).map_err(refused)?;
    let answer = post(
        http,
        &target.url,
        "reinitialize",
        r#"{"force":true}"#,
        spec.auth.as_ref(),
    )
    .await?;
    Ok(ActionOutcome {
        detail: format!("reinitialized member {} (Patroni: {answer})", target.name),
        undo: None,
    })
}

/// `POST {base}/{path}` with a JSON body (sent with a `Content-Length`, which Patroni needs)
/// and Basic auth; returns Patroni's answer text on 200.
pub async fn post(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    body: &str,
    auth: Option<&RestAuth>,
) -> Result<String, ActionError> {
    let url = format!("{}/{path}", base.trim_end_matches('/'));
    let mut req = http
        .post(&url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(auth) = auth {
        let password = auth
            .password
            .read()
            .await
            .map_err(|e| ActionError::Refused(format!("patroni auth password: {e}")))?;
        req = req.basic_auth(&auth.username, Some(password.expose()));
    }
    let resp = req.send().await.map_err(|e| {
        ActionError::Failed(format!(
            "POST /{path} on {base}: no answer ({})",
            if e.is_timeout() {
                "timeout"
            } else {
                crate::probes::classify::classify_chain(&e)
            }
        ))
    })?;
    let status = resp.status().as_u16();
    let text = read_text(resp).await;
    match status {
        200 => Ok(text),
        401 | 403 => Err(ActionError::Refused(format!(
            "POST /{path} on {base}: authentication refused (HTTP {status})"
        ))),
        _ => Err(ActionError::Refused(format!(
            "POST /{path} on {base}: HTTP {status}: {}",
            if text.is_empty() { "no text" } else { &text }
        ))),
    }
}

/// The answer's text, capped and on one line.
async fn read_text(mut resp: reqwest::Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() >= MAX_ANSWER_BYTES {
            buf.truncate(MAX_ANSWER_BYTES);
            break;
        }
    }
    String::from_utf8_lossy(&buf)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
