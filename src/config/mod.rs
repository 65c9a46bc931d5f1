//! Configuration: `probes.toml` + `remediations.toml` from a directory (or the embedded local
//! example), `ASTREINTE_*` environment overrides, serde types, and one `validate()` pass.
//!
//! figment stays inside this module so it can be replaced without touching the rest.

mod incidents;
mod kube;
mod load;
mod notify;
mod postgres;
mod probe;
mod probe_promql;
mod probe_redis;
mod rule;
mod secret;
pub mod validate;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use incidents::IncidentSettings;
pub use kube::{KubeSettings, LeaseSettings};
pub use load::{ConfigError, EMBEDDED_DIR, Source, load_dir, load_embedded, load_from_strings};
pub use notify::{ReceiverConfig, ReceiverKind};
pub use postgres::{PatroniMember, PatroniSpec, PostgresSpec, RestAuth, SqlLogin};
pub use probe::{
    Damping, DiskSpec, HttpSpec, NoData, NodeSpec, ProbeConfig, ProbeSpec, PromqlSpec, RedisSpec,
    TcpSpec, WorkloadSpec,
};
pub use rule::{
    ActionSpec, Budget, Mode, PartitionGuard, PolicyConfig, RuleConfig, Trigger, Verify, Window,
};
pub use secret::{Secret, SecretError, SecretRef, read_opt as read_secret};
pub use validate::Problem;

pub const PROBES_FILE: &str = "probes.toml";
pub const REMEDIATIONS_FILE: &str = "remediations.toml";

/// The whole configuration, as the daemon runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Where it came from (shown in logs and on `/status`).
    pub source: Source,
    pub server: ServerConfig,
    pub defaults: Defaults,
    pub incidents: IncidentSettings,
    pub journal: JournalConfig,
    pub probes: Vec<ProbeConfig>,
    pub policy: PolicyConfig,
    pub rules: Vec<RuleConfig>,
    /// Where incident notices go.
    pub notify: Vec<ReceiverConfig>,
    pub kubernetes: KubeSettings,
    /// Position of each probe id in `probes`, so the engine finds a probe in O(1) for every
    /// observation (a linear search took half the CPU at 50,000 probes, docs/BENCHMARKS.md).
    #[serde(skip)]
    pub probe_index: ProbeIndex,
}

/// Probe id → position in [`Config::probes`], built when the config is loaded.
#[derive(Clone, PartialEq, Default)]
pub struct ProbeIndex(std::collections::HashMap<String, usize>);

impl ProbeIndex {
    pub fn of(probes: &[ProbeConfig]) -> Self {
        let mut index = std::collections::HashMap::with_capacity(probes.len());
        for (i, p) in probes.iter().enumerate() {
            // The first wins, as a linear search would (duplicates fail validation anyway).
            index.entry(p.id.clone()).or_insert(i);
        }
        ProbeIndex(index)
    }
}

impl std::fmt::Debug for ProbeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProbeIndex({} ids)", self.0.len())
    }
}

/// `probes.toml` as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbesFile {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub incidents: IncidentSettings,
    #[serde(default)]
    pub journal: JournalConfig,
    #[serde(default, rename = "probe")]
    pub probes: Vec<ProbeConfig>,
    #[serde(default)]
    pub kubernetes: KubeSettings,
}

/// `remediations.toml` as written.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemediationsFile {
    #[serde(default)]
    pub policy: PolicyConfig,
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub notify: Vec<ReceiverConfig>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 9464))
}

/// Where the journal (actions, incidents, budgets) is kept in local mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalConfig {
    #[serde(default = "default_journal_path")]
    pub path: PathBuf,
    /// The written journal's budget in bytes: a larger document is compacted first
    /// (resolved incidents, then old actions, then long timelines). Well under the 1 MiB
    /// limit of a ConfigMap.
    #[serde(default = "default_journal_max_bytes")]
    pub max_bytes: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            path: default_journal_path(),
            max_bytes: default_journal_max_bytes(),
        }
    }
}

fn default_journal_max_bytes() -> usize {
    crate::journal::DEFAULT_MAX_BYTES
}

/// How far back the policy looks at past actions: the longest budget window or cooldown of
/// the rules (at least an hour). The journal keeps every action that recent.
pub fn action_retention(config: &Config) -> std::time::Duration {
    let rules = config.rules.iter().flat_map(|r| {
        [
            r.budget.as_ref().map(|b| b.per),
            Some(r.cooldown.unwrap_or(crate::policy::DEFAULT_COOLDOWN)),
        ]
    });
    let global = [
        config.policy.global_budget.as_ref().map(|b| b.per),
        config.policy.target_budget.as_ref().map(|b| b.per),
    ];
    rules
        .chain(global)
        .flatten()
        .max()
        .unwrap_or_default()
        .max(std::time::Duration::from_secs(3600))
}

fn default_journal_path() -> PathBuf {
    PathBuf::from("state/journal.json")
}

/// Values a probe takes when it does not set its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default, with = "humantime_serde::option")]
    pub unhealthy_interval: Option<Duration>,
    #[serde(default)]
    pub damping: Damping,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            interval: default_interval(),
            timeout: default_timeout(),
            unhealthy_interval: None,
            damping: Damping::default(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

impl Config {
    pub fn interval(&self, p: &ProbeConfig) -> Duration {
        p.interval.unwrap_or(self.defaults.interval)
    }

    pub fn timeout(&self, p: &ProbeConfig) -> Duration {
        p.timeout.unwrap_or(self.defaults.timeout)
    }

    pub fn unhealthy_interval(&self, p: &ProbeConfig) -> Option<Duration> {
        p.unhealthy_interval.or(self.defaults.unhealthy_interval)
    }

    pub fn damping(&self, p: &ProbeConfig) -> Damping {
        p.damping.unwrap_or(self.defaults.damping)
    }

    pub fn probe(&self, id: &str) -> Option<&ProbeConfig> {
        // The id check keeps this right if `probes` was changed after the index was built.
        match self.probe_index.0.get(id).and_then(|&i| self.probes.get(i)) {
            Some(p) if p.id == id => Some(p),
            _ => self.probes.iter().find(|p| p.id == id),
        }
    }

    /// The enabled probes, in file order.
    pub fn enabled_probes(&self) -> impl Iterator<Item = &ProbeConfig> {
        self.probes.iter().filter(|p| p.enabled)
    }

    /// The files it was read from, for the start-up log line.
    pub fn files(&self) -> Vec<PathBuf> {
        match &self.source {
            Source::Dir(dir) => vec![dir.join(PROBES_FILE), dir.join(REMEDIATIONS_FILE)],
            Source::Embedded | Source::ConfigMap(_) => vec![],
        }
    }
}

impl ProbeConfig {
    /// What is observed: the configured target, or the probe id.
    pub fn target_name(&self) -> &str {
        self.target.as_deref().unwrap_or(&self.id)
    }

    /// The incident key: the group when probes share one, else the target.
    pub fn incident_key(&self) -> &str {
        self.group.as_deref().unwrap_or_else(|| self.target_name())
    }
}
