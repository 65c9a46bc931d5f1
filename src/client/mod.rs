//! Clients of a running daemon: `astreinte incidents [show ID | postmortem ID]` and
//! `astreinte explain` read its HTTP API (`/incidents`, `/incidents/{id}`, `/decisions`) and
//! print tables, timelines, Markdown or JSON. Nothing here changes the daemon.

mod render;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::incident::Incident;

/// How long one request to the daemon may take.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach astreinte at {url}: {cause}; is `astreinte run` running?")]
    Unreachable { url: String, cause: String },
    #[error("astreinte at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("no incident `{id}` at {base} (neither open nor recently resolved)")]
    NoSuchIncident { id: String, base: String },
    #[error("incident `{id}` is still open: its post-mortem is drafted when it resolves")]
    NotResolved { id: String },
    #[error("incident `{id}` has no post-mortem draft")]
    NoPostmortem { id: String },
    #[error("unexpected answer from {url}: {detail}")]
    Decode { url: String, detail: String },
    #[error("bad --url `{url}`: {detail}")]
    BadUrl { url: String, detail: String },
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
}

/// What to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Open and recent incidents.
    Incidents,
    /// One incident with its timeline.
    Incident(String),
    /// The Markdown post-mortem draft of a resolved incident.
    Postmortem(String),
    /// The last decision of every rule, with its reason.
    Explain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Table,
    Json,
}

/// `GET /incidents`.
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct IncidentList {
    pub open: Vec<Incident>,
    pub recent: Vec<Incident>,
    /// Whether the replica that answered leads (absent from older daemons).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
}

/// One entry of `GET /decisions` (the daemon's `DecisionEntry`).
#[derive(Debug, Deserialize, serde::Serialize)]
pub struct DecisionView {
    pub rule: String,
    /// `{"decision": "act", "mode": "dry-run"}` or `{"decision": "hold", "reason": …}`.
    pub decision: serde_json::Value,
    pub line: String,
    pub at: Timestamp,
    #[serde(default)]
    pub incident: Option<String>,
}

/// The daemon's URL from its `server.listen`: a wildcard address is reached on loopback.
pub fn default_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, listen.port()))
}

/// Runs `request` against the daemon at `base` and returns what to print. Times are shown
/// in `tz` (the policy time zone).
pub async fn run(
    base: &str,
    request: &Request,
    output: Output,
    tz: &TimeZone,
) -> Result<String, ClientError> {
    crate::app::install_crypto();
    let client = Client::new(&normalize(base)?)?;
    let now = Timestamp::now();
    let json = output == Output::Json;
    match request {
        Request::Incidents => {
            let list: IncidentList = client.get("/incidents").await?;
            Ok(if json {
                pretty(&list)
            } else {
                render::incidents(&list, now, tz)
            })
        }
        Request::Incident(id) => {
            let inc = client.incident(id).await?;
            Ok(if json {
                pretty(&inc)
            } else {
                render::incident(&inc, now, tz)
            })
        }
        Request::Postmortem(id) => {
            let inc = client.incident(id).await?;
            match inc.postmortem {
                Some(md) => Ok(md),
                None if inc.resolved_at.is_none() => {
                    Err(ClientError::NotResolved { id: id.clone() })
                }
                None => Err(ClientError::NoPostmortem { id: id.clone() }),
            }
        }
        Request::Explain => {
            let decisions: Vec<DecisionView> = client.get("/decisions").await?;
            Ok(if json {
                pretty(&decisions)
            } else {
                render::decisions(&decisions, now, tz)
            })
        }
    }
}

/// `127.0.0.1:9464` → `http://127.0.0.1:9464`, without a trailing slash; checked.
fn normalize(base: &str) -> Result<String, ClientError> {
    let trimmed = base.trim().trim_end_matches('/');
    let url = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("http://{trimmed}")
    };
    match url::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(url),
        Ok(_) => Err(ClientError::BadUrl {
            url: base.to_owned(),
            detail: "expected http://HOST:PORT".to_owned(),
        }),
        Err(e) => Err(ClientError::BadUrl {
            url: base.to_owned(),
            detail: e.to_string(),
        }),
    }
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    let mut s =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    s.push('\n');
    s
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Result<Client, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| ClientError::Client(e.to_string()))?;
        Ok(Client {
            http,
            base: base.to_owned(),
        })
    }

    async fn incident(&self, id: &str) -> Result<Incident, ClientError> {
        // Ids are URL-safe slugs; anything else cannot be one.
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(self.no_such(id));
        }
        match self.get(&format!("/incidents/{id}")).await {
            Err(ClientError::Status { status: 404, .. }) => Err(self.no_such(id)),
            other => other,
        }
    }

    fn no_such(&self, id: &str) -> ClientError {
        ClientError::NoSuchIncident {
            id: id.to_owned(),
            base: self.base.clone(),
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                cause: cause(&e),
            })?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| ClientError::Unreachable {
                url: self.base.clone(),
                cause: cause(&e),
            })?;
        if !status.is_success() {
            return Err(ClientError::Status {
                url,
                status: status.as_u16(),
                body: body.trim().chars().take(200).collect(),
            });
        }
        serde_json::from_str(&body).map_err(|e| ClientError::Decode {
            url,
            detail: e.to_string(),
        })
    }
}

/// The root cause in a few words: "connection refused", "timed out", …
fn cause(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", TIMEOUT.as_secs());
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut io = None;
    while let Some(s) = source {
        if let Some(err) = s.downcast_ref::<std::io::Error>() {
            io = Some(err.kind());
        }
        source = s.source();
    }
    match io {
        Some(kind) => kind.to_string(),
        None if e.is_connect() => "cannot connect".to_owned(),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listen_addresses_are_reached_on_loopback() {
        assert_eq!(
            default_url("0.0.0.0:9464".parse().unwrap()),
            "http://127.0.0.1:9464"
        );
        assert_eq!(
            default_url("[::]:9464".parse().unwrap()),
            "http://[::1]:9464"
        );
        assert_eq!(
            default_url("10.0.0.5:80".parse().unwrap()),
            "http://10.0.0.5:80"
        );
    }

    #[test]
    fn a_url_without_scheme_is_http() {
        assert_eq!(
            normalize("127.0.0.1:9464").unwrap(),
            "http://127.0.0.1:9464"
        );
        assert_eq!(
            normalize("https://a.example/x/").unwrap(),
            "https://a.example/x"
        );
        assert!(matches!(
            normalize("ftp://a.example"),
            Err(ClientError::BadUrl { .. })
        ));
        assert!(matches!(
            normalize("http://[::1"),
            Err(ClientError::BadUrl { .. })
        ));
    }

    #[tokio::test]
    async fn a_closed_port_says_the_daemon_is_not_running() {
        let port = crate::testbed::free_port().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let err = run(&base, &Request::Incidents, Output::Table, &TimeZone::UTC)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot reach astreinte at {base}: connection refused; is `astreinte run` running?"
            )
        );
    }
}
