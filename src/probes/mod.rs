//! Probes: one file per kind. Each turns a probe's config into a [`Finding`]; [`Prober::observe`]
//! adds the overall timeout, the latency and the time, and returns an [`Observation`].
//!
//! Every probe opens fresh connections (no pool that would hide an outage), caps what it reads,
//! and says `Unknown` when it could not see.

pub(crate) mod classify;
mod cluster;
mod disk;
mod http;
pub mod node;
mod node_watch;
mod outcome;
pub mod patroni;
mod postgres;
mod promql;
pub mod redis;
mod tcp;
pub mod workload;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::{Config, ProbeConfig, ProbeSpec};

pub use classify::classify_io;
pub use outcome::{Finding, Measurement, Observation, Outcome, Reason};

/// The probe kinds, as written in `kind = "…"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Http,
    Tcp,
    Disk,
    Redis,
    Promql,
    Node,
    Workload,
    Patroni,
    Postgres,
}

impl ProbeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Disk => "disk",
            ProbeKind::Redis => "redis",
            ProbeKind::Promql => "promql",
            ProbeKind::Node => "node",
            ProbeKind::Workload => "workload",
            ProbeKind::Patroni => "patroni",
            ProbeKind::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Shared, immutable probe machinery (HTTP clients built once, so TLS set-up is not redone
/// per probe). Connections are not pooled: every probe run connects afresh.
#[derive(Clone)]
pub struct Prober {
    http: http::Clients,
    redis: redis::RedisProber,
    promql: promql::Client,
    /// `None`: no cluster (local mode); Kubernetes probes then say `Unknown: no_cluster`.
    cluster: Option<Arc<cluster::Cluster>>,
    patroni: patroni::Clients,
    /// Stamps observations ([`crate::clock`]: never follows a jump of the system time).
    clock: crate::clock::Clock,
}

impl Prober {
    pub fn new() -> Result<Self, Error> {
        Ok(Prober {
            http: http::Clients::new().map_err(Error::HttpClient)?,
            redis: redis::RedisProber::default(),
            promql: promql::Client::new().map_err(Error::HttpClient)?,
            cluster: None,
            patroni: patroni::Clients::new().map_err(Error::HttpClient)?,
            clock: crate::clock::Clock::system(),
        })
    }

    /// Stamps observations with `clock` (tests: a manual clock).
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The clock observations are stamped with.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.clock
    }

    /// Gives the Kubernetes probes a cluster to look at.
    pub fn with_kube(mut self, client: Option<kube::Client>) -> Self {
        self.cluster = client.map(cluster::Cluster::new);
        self
    }

    /// Runs one probe under its timeout and stamps the result.
    pub async fn observe(&self, config: &Config, probe: &ProbeConfig) -> Observation {
        let timeout = config.timeout(probe);
        let at = self.clock.now();
        let started = Instant::now();
        let finding = match tokio::time::timeout(timeout, self.find(probe, timeout)).await {
            Ok(f) => f,
            Err(_) => timed_out(probe.spec.kind(), timeout),
        };
        Observation {
            probe: Arc::from(probe.id.as_str()),
            kind: probe.spec.kind(),
            target: Arc::from(probe.target_name()),
            outcome: finding.outcome,
            detail: finding.detail,
            latency: started.elapsed(),
            at,
            measurements: finding.measurements,
        }
    }

    async fn find(&self, probe: &ProbeConfig, timeout: Duration) -> Finding {
        match &probe.spec {
            ProbeSpec::Http(spec) => self.http.probe(&probe.id, spec, timeout).await,
            ProbeSpec::Tcp(spec) => tcp::probe(spec).await,
            ProbeSpec::Disk(spec) => disk::probe(&probe.id, spec).await,
            ProbeSpec::Redis(spec) => self.redis.probe(&probe.id, spec, timeout).await,
            ProbeSpec::Promql(spec) => self.promql.probe(&probe.id, spec, timeout).await,
            ProbeSpec::Node(spec) => match &self.cluster {
                Some(c) => node::probe(&c.nodes, &probe.id, spec, timeout).await,
                None => no_cluster(),
            },
            ProbeSpec::Workload(spec) => match &self.cluster {
                Some(c) => workload::probe(&c.client, &c.restarts, &probe.id, spec).await,
                None => no_cluster(),
            },
            ProbeSpec::Patroni(spec) => self.patroni.probe(&probe.id, spec, timeout).await,
            ProbeSpec::Postgres(spec) => postgres::probe(&probe.id, spec, timeout).await,
        }
    }
}

/// A probe that did not finish in time. The Kubernetes kinds look through the API: no answer
/// from it says nothing about the nodes or the workload, so they could not see (`Unknown`),
/// and nothing acts on it; every other kind timed out on its target itself (`Failed`).
fn timed_out(kind: ProbeKind, timeout: Duration) -> Finding {
    let within = humantime::format_duration(timeout);
    match kind {
        ProbeKind::Node | ProbeKind::Workload => Finding::new(
            Outcome::unknown("api_timeout"),
            format!("no answer from the kubernetes api within {within}"),
        ),
        _ => Finding::new(
            Outcome::failed("timeout"),
            format!("no answer within {within}"),
        ),
    }
}

fn no_cluster() -> Finding {
    Finding::new(
        Outcome::unknown("no_cluster"),
        "no Kubernetes cluster configured (no kubeconfig, not in a cluster)",
    )
}
