//! The Kubernetes API client: built from the in-cluster service account or a kubeconfig
//! (`--kubeconfig` / `KUBECONFIG`), or absent ("no cluster", which is not an error: the
//! Kubernetes probes then say `Unknown`). Every API error is classified once here, so that
//! callers know whether to re-read (409), retry with backoff (429, 5xx, transport), or stop
//! (403 names the verb and resource the service account lacks, 404 names the object).

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::time::Instant;

pub use kube::Client;

/// The first pause of a watch (node watch, policy watch) after an error; it doubles up to
/// [`WATCH_MAX_PAUSE`].
pub const WATCH_MIN_PAUSE: Duration = Duration::from_millis(200);
/// The longest pause of a watch between two attempts: a watch back from an outage hears the
/// apiserver again within this, whatever the outage lasted.
pub const WATCH_MAX_PAUSE: Duration = Duration::from_secs(5);

/// The call that failed: verb, resource (`deployments.apps/scale`), namespace, name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub verb: &'static str,
    pub resource: &'static str,
    pub namespace: Option<String>,
    pub name: Option<String>,
}

impl Op {
    pub fn new(verb: &'static str, resource: &'static str, namespace: &str, name: &str) -> Self {
        Op {
            verb,
            resource,
            namespace: (!namespace.is_empty()).then(|| namespace.to_owned()),
            name: (!name.is_empty()).then(|| name.to_owned()),
        }
    }

    /// `deployments.apps rag/rag-api` (the object, or the collection when there is no name).
    pub fn object(&self) -> String {
        match (&self.namespace, &self.name) {
            (Some(ns), Some(n)) => format!("{} {ns}/{n}", self.resource),
            (None, Some(n)) => format!("{} {n}", self.resource),
            (Some(ns), None) => format!("{} in {ns}", self.resource),
            (None, None) => self.resource.to_owned(),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.object())
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("cannot load the kubernetes client configuration: {0}")]
    Config(String),
    /// 409 Conflict: the object changed since it was read. Re-read, then retry.
    #[error("{object} changed since it was read (409 conflict)")]
    Conflict { object: String },
    /// 409 AlreadyExists on create.
    #[error("{object} already exists")]
    AlreadyExists { object: String },
    #[error("{object} not found")]
    NotFound { object: String },
    /// 403: RBAC does not grant the verb. Fix `deploy/base/rbac.yaml`, not a retry.
    #[error(
        "forbidden: the service account may not {verb} {resource}{scope} (grant it in the Role of deploy/base/rbac.yaml)"
    )]
    Forbidden {
        verb: &'static str,
        resource: &'static str,
        scope: String,
    },
    /// 429 or 5xx: worth a retry with backoff.
    #[error("kubernetes api busy or failing on {op} (HTTP {code}): {message}")]
    Unavailable {
        op: String,
        code: u16,
        message: String,
        /// The server's `retryAfterSeconds` (429), waited at least before the next try.
        retry_after: Option<Duration>,
    },
    /// The apiserver could not be reached or the connection broke: worth a retry.
    #[error("cannot reach the kubernetes api for {op}: {message}")]
    Transport { op: String, message: String },
    /// Any other refusal (400, 410, 422…).
    #[error("kubernetes api refused {op} (HTTP {code}): {message}")]
    Rejected {
        op: String,
        code: u16,
        message: String,
    },
    #[error("deadline reached while trying to {op}{}", last.as_ref().map(|l| format!(" (last error: {l})")).unwrap_or_default())]
    Deadline { op: String, last: Option<String> },
    #[error("unexpected answer to {op}: {message}")]
    Decode { op: String, message: String },
    /// The client failed before or around the request (auth, request building…).
    #[error("kubernetes client failed on {op}: {message}")]
    Client { op: String, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the same call may succeed if retried after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Unavailable { .. } | Error::Transport { .. })
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::NotFound { .. })
    }

    /// A bounded label for metrics and reason codes.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Config(_) => "config",
            Error::Conflict { .. } => "conflict",
            Error::AlreadyExists { .. } => "already_exists",
            Error::NotFound { .. } => "not_found",
            Error::Forbidden { .. } => "forbidden",
            Error::Unavailable { .. } => "api_unavailable",
            Error::Transport { .. } => "api_unreachable",
            Error::Rejected { .. } => "rejected",
            Error::Deadline { .. } => "deadline",
            Error::Decode { .. } => "bad_response",
            Error::Client { .. } => "client",
        }
    }

    /// Classifies a kube error for the call `op`.
    pub fn from_kube(e: kube::Error, op: &Op) -> Self {
        match e {
            kube::Error::Api(status) => {
                let code = status.code;
                let message = status.message.clone();
                match (code, status.reason.as_str()) {
                    (409, "AlreadyExists") => Error::AlreadyExists {
                        object: op.object(),
                    },
                    (409, _) => Error::Conflict {
                        object: op.object(),
                    },
                    (404, _) => Error::NotFound {
                        object: op.object(),
                    },
                    (403, _) => Error::Forbidden {
                        verb: op.verb,
                        resource: op.resource,
                        scope: match &op.namespace {
                            Some(ns) => format!(" in namespace {ns}"),
                            None => " at the cluster scope".into(),
                        },
                    },
                    (429 | 500..=599, _) => Error::Unavailable {
                        op: op.to_string(),
                        code,
                        message,
                        retry_after: status
                            .details
                            .as_ref()
                            .map(|d| d.retry_after_seconds)
                            .filter(|s| *s > 0)
                            .map(|s| Duration::from_secs(u64::from(s))),
                    },
                    _ => Error::Rejected {
                        op: op.to_string(),
                        code,
                        message,
                    },
                }
            }
            kube::Error::HyperError(e) => Error::Transport {
                op: op.to_string(),
                message: e.to_string(),
            },
            kube::Error::Service(e) => Error::Transport {
                op: op.to_string(),
                message: e.to_string(),
            },
            kube::Error::SerdeError(e) => Error::Decode {
                op: op.to_string(),
                message: e.to_string(),
            },
            other => Error::Client {
                op: op.to_string(),
                message: other.to_string(),
            },
        }
    }
}

/// Builds a client: an explicit kubeconfig, else `KUBECONFIG`, else the in-cluster service
/// account; `Ok(None)` when there is none of them (local mode).
pub async fn connect(kubeconfig: Option<&Path>) -> Result<Option<Client>> {
    let config = if let Some(path) = kubeconfig {
        let file = Kubeconfig::read_from(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Some(from_kubeconfig(file).await?)
    } else if let Some(file) = Kubeconfig::from_env().map_err(|e| Error::Config(e.to_string()))? {
        Some(from_kubeconfig(file).await?)
    } else if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        Some(kube::Config::incluster().map_err(|e| Error::Config(e.to_string()))?)
    } else {
        None
    };
    let Some(mut config) = config else {
        return Ok(None);
    };
    // Retries are ours (bounded by each action's deadline), not hidden in the client.
    config.default_retry = false;
    Client::try_from(config)
        .map(Some)
        .map_err(|e| Error::Config(e.to_string()))
}

async fn from_kubeconfig(file: Kubeconfig) -> Result<kube::Config> {
    kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .map_err(|e| Error::Config(e.to_string()))
}

/// Runs `call` until it succeeds, fails for good, or `deadline` passes. Transient errors are
/// retried with exponential backoff; conflicts too when `call` re-reads what it writes.
pub async fn retry<T, F, Fut>(
    deadline: Instant,
    op: &Op,
    retry_conflicts: bool,
    call: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let last: Arc<Mutex<Option<String>>> = Arc::default();
    let noted = last.clone();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(2))
        .with_jitter()
        .without_max_times();
    let attempts = call
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(move |e: &Error| e.is_transient() || (retry_conflicts && e.is_conflict()))
        .adjust(|e: &Error, pause: Option<Duration>| match e {
            Error::Unavailable {
                retry_after: Some(wait),
                ..
            } => pause.map(|p| p.max(*wait)),
            _ => pause,
        })
        .notify(move |e: &Error, pause: Duration| {
            tracing::debug!(error = %e, ?pause, "kubernetes call failed, retrying");
            if let Ok(mut l) = noted.lock() {
                *l = Some(e.to_string());
            }
        });
    match tokio::time::timeout_at(deadline, attempts).await {
        Ok(result) => result,
        Err(_) => Err(Error::Deadline {
            op: op.to_string(),
            last: last.lock().ok().and_then(|mut l| l.take()),
        }),
    }
}

/// This replica's name: the pod's (`POD_NAME`, from the downward API in deploy/), else the
/// host's (`HOSTNAME`), else `astreinte-<pid>`.
pub fn replica_name() -> String {
    std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("astreinte-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            reason: reason.into(),
            message: "m".into(),
            ..Default::default()
        }))
    }

    #[test]
    fn classification() {
        let op = Op::new("patch", "deployments.apps", "rag", "rag-api");
        assert!(Error::from_kube(api(409, "Conflict"), &op).is_conflict());
        assert!(matches!(
            Error::from_kube(api(409, "AlreadyExists"), &op),
            Error::AlreadyExists { .. }
        ));
        assert!(Error::from_kube(api(429, "TooManyRequests"), &op).is_transient());
        assert!(Error::from_kube(api(503, "ServiceUnavailable"), &op).is_transient());
        assert!(!Error::from_kube(api(422, "Invalid"), &op).is_transient());
        let nf = Error::from_kube(api(404, "NotFound"), &op).to_string();
        assert_eq!(nf, "deployments.apps rag/rag-api not found");
        let forbidden = Error::from_kube(api(403, "Forbidden"), &op).to_string();
        assert!(
            forbidden.contains("may not patch deployments.apps in namespace rag"),
            "{forbidden}"
        );
    }
}
