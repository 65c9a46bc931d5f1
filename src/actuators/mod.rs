//! Actuators: how each action of `remediations.toml` is carried out (DESIGN.md §7), one file
//! per family. Every action runs under a deadline, retries only transient errors, and returns
//! what it changed (for undo) or a classified error.

mod http;
pub mod kube;
pub mod patroni;

use std::time::Duration;

use serde::Serialize;

use crate::config::{ActionSpec, Config};
use crate::policy::Hold;
use crate::probes::Prober;

/// What an action did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionOutcome {
    /// A sentence for the journal and the timeline.
    pub detail: String,
    /// What to restore on undo (previous replicas, previous ConfigMap values…).
    pub undo: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("deadline of {0:?} reached")]
    Deadline(Duration),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Failed(String),
    #[error("not available here: {0}")]
    Unavailable(String),
}

impl ActionError {
    /// The bounded code used as the `result` label.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::Deadline(_) => "deadline",
            ActionError::Refused(_) => "refused",
            ActionError::Failed(_) => "failed",
            ActionError::Unavailable(_) => "unavailable",
        }
    }
}

fn from_kube(o: kube::ActionOutcome) -> ActionOutcome {
    ActionOutcome {
        detail: o.detail,
        undo: o.previous,
    }
}

fn kube_error(e: kube::Error) -> ActionError {
    match e {
        kube::Error::Refused(m) => ActionError::Refused(m),
        kube::Error::NotKube(what) => ActionError::Unavailable(format!("{what} cannot be undone")),
        other => ActionError::Failed(other.to_string()),
    }
}

/// The clients actions use, built once.
#[derive(Clone)]
pub struct Actuators {
    http: reqwest::Client,
    /// `None` without a cluster: Kubernetes actions are then unavailable.
    kube: Option<crate::clients::kube::Client>,
    /// Fresh Patroni views for the Patroni actions' preconditions.
    prober: Prober,
}

impl Actuators {
    pub fn new() -> Result<Self, ActionError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("astreinte/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ActionError::Unavailable(format!("cannot build the HTTP client: {e}")))?;
        let prober = Prober::new()
            .map_err(|e| ActionError::Unavailable(format!("cannot build the prober: {e}")))?;
        Ok(Actuators {
            http,
            kube: None,
            prober,
        })
    }

    /// Kubernetes actions go through `client`.
    pub fn with_kube(mut self, client: Option<crate::clients::kube::Client>) -> Self {
        self.kube = client;
        self
    }

    fn kube_client(&self) -> Result<&crate::clients::kube::Client, ActionError> {
        self.kube.as_ref().ok_or_else(|| {
            ActionError::Unavailable(
                "no Kubernetes cluster (no kubeconfig, not in a cluster)".into(),
            )
        })
    }

    /// The action's own precondition, checked right before acting on a fresh look at its
    /// target (Patroni actions: see [`patroni::gate`]). `leader_lost_for`: how long the
    /// trigger probes have seen the Patroni leader lost. Other actions have none.
    pub async fn check(
        &self,
        action: &ActionSpec,
        config: &Config,
        leader_lost_for: Option<Duration>,
    ) -> Result<(), Hold> {
        let unavailable = |e: ActionError| Hold::Unavailable {
            detail: e.to_string(),
        };
        match action {
            ActionSpec::PatroniFailover { probe } => {
                let spec = patroni::spec(config, probe).map_err(unavailable)?;
                let view = patroni::view(&self.prober, config, probe)
                    .await
                    .map_err(unavailable)?;
                patroni::gate::failover_allowed(&view, leader_lost_for, spec.ttl).map(|_| ())
            }
            ActionSpec::PatroniReinitialize { probe } => {
                let view = patroni::view(&self.prober, config, probe)
                    .await
                    .map_err(unavailable)?;
                patroni::gate::reinitialize_target(&view).map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Rehearses `action` (dry-run mode): a Kubernetes action is sent with `dryRun=All`, so
    /// the API server checks that it could be done (a misspelt object or a verb RBAC does
    /// not grant fails here, as it would in enforce) and nothing changes; other actions
    /// (HTTP, page, Patroni) cannot be rehearsed against their system and say what they
    /// would do.
    pub async fn rehearse(
        &self,
        action: &ActionSpec,
        deadline: Duration,
    ) -> Result<ActionOutcome, ActionError> {
        match action {
            ActionSpec::Http { .. }
            | ActionSpec::Page { .. }
            | ActionSpec::PatroniFailover { .. }
            | ActionSpec::PatroniReinitialize { .. } => Ok(ActionOutcome {
                detail: format!("would {}", Self::describe(action)),
                undo: None,
            }),
            kube_action => {
                let Some(client) = self.kube.as_ref() else {
                    return Ok(ActionOutcome {
                        detail: format!(
                            "would {} (not checked: no Kubernetes cluster to ask)",
                            Self::describe(action)
                        ),
                        undo: None,
                    });
                };
                let until = tokio::time::Instant::now() + deadline;
                let work = kube::rehearse(client, kube_action, until);
                tokio::time::timeout(deadline, work)
                    .await
                    .map_err(|_| ActionError::Deadline(deadline))?
                    .map(|out| ActionOutcome {
                        detail: out.detail,
                        undo: None,
                    })
                    .map_err(kube_error)
            }
        }
    }

    /// Runs `action` to completion or until `deadline`.
    pub async fn run(
        &self,
        action: &ActionSpec,
        config: &Config,
        deadline: Duration,
    ) -> Result<ActionOutcome, ActionError> {
        let work = async {
            match action {
                ActionSpec::Http {
                    method,
                    url,
                    body,
                    token,
                } => http::call(&self.http, method, url, body.as_deref(), token.as_ref()).await,
                ActionSpec::Page { message } => Ok(ActionOutcome {
                    detail: message
                        .clone()
                        .unwrap_or_else(|| "paged the on-call".into()),
                    undo: None,
                }),
                ActionSpec::PatroniFailover { probe } => {
                    patroni::failover(&self.http, &self.prober, config, probe).await
                }
                ActionSpec::PatroniReinitialize { probe } => {
                    patroni::reinitialize(&self.http, &self.prober, config, probe).await
                }
                kube_action => {
                    let client = self.kube_client()?;
                    let until = tokio::time::Instant::now() + deadline;
                    kube::apply(client, kube_action, until)
                        .await
                        .map(from_kube)
                        .map_err(kube_error)
                }
            }
        };
        tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| ActionError::Deadline(deadline))?
    }

    /// Restores what `run` changed (`undo` is the value it returned), for reversible actions
    /// whose rule has `undo_on_resolve`.
    pub async fn undo(
        &self,
        action: &ActionSpec,
        undo: &serde_json::Value,
        deadline: Duration,
    ) -> Result<ActionOutcome, ActionError> {
        let work = async {
            let client = self.kube_client()?;
            let until = tokio::time::Instant::now() + deadline;
            kube::undo(client, action, undo, until)
                .await
                .map(from_kube)
                .map_err(kube_error)
        };
        tokio::time::timeout(deadline, work)
            .await
            .map_err(|_| ActionError::Deadline(deadline))?
    }

    /// What the action would do, for dry-run logs, Events and timelines.
    pub fn describe(action: &ActionSpec) -> String {
        match action {
            ActionSpec::RolloutRestart {
                namespace,
                deployment,
            } => format!(
                "kubectl rollout restart deployment/{deployment} -n {namespace} (annotation kubectl.kubernetes.io/restartedAt), then wait for the rollout"
            ),
            ActionSpec::Scale {
                namespace,
                deployment,
                replicas,
                max_replicas,
            } => format!(
                "scale deployment/{deployment} -n {namespace} to {replicas} replicas (bounded by {max_replicas})"
            ),
            ActionSpec::ConfigmapPatch {
                namespace,
                name,
                data,
            } => {
                let kv: Vec<String> = data.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("patch configmap/{name} -n {namespace}: {}", kv.join(", "))
            }
            ActionSpec::IngressBackend {
                namespace,
                ingress,
                service,
                ..
            } => {
                format!("point ingress/{ingress} -n {namespace} at service {service}")
            }
            ActionSpec::IngressAnnotations {
                namespace,
                ingress,
                annotations,
            } => {
                let kv: Vec<String> = annotations
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!(
                    "annotate ingress/{ingress} -n {namespace}: {}",
                    kv.join(", ")
                )
            }
            ActionSpec::Resources {
                namespace,
                deployment,
                container,
                cpu_limit,
                memory_limit,
                ..
            } => format!(
                "set limits of {container} in deployment/{deployment} -n {namespace}: cpu {} memory {}",
                cpu_limit.as_deref().unwrap_or("unchanged"),
                memory_limit.as_deref().unwrap_or("unchanged")
            ),
            ActionSpec::DeletePod {
                namespace,
                selector,
            } => {
                format!("delete the stuck pod matching {selector} -n {namespace}")
            }
            ActionSpec::PatroniFailover { probe } => {
                format!(
                    "Patroni failover of the cluster of probe {probe} to the healthiest replica"
                )
            }
            ActionSpec::PatroniReinitialize { probe } => {
                format!("Patroni reinitialize of the stuck replica of probe {probe}")
            }
            ActionSpec::Http { method, url, .. } => format!("{method} {}", http::redact_url(url)),
            ActionSpec::Page { message } => {
                format!(
                    "page the on-call{}",
                    message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )
            }
        }
    }
}
