//! The `[[probe]]` entries of `probes.toml`: fields every probe has, and one spec per kind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;
use super::postgres::{PatroniSpec, PostgresSpec};
pub use super::probe_promql::{NoData, PromqlSpec};
pub use super::probe_redis::RedisSpec;
use crate::level::Level;
use crate::probes::ProbeKind;

/// One probe as written in `probes.toml`.
///
/// The kind-specific fields sit beside the common ones (`kind = "http"`, `url = …`); unknown
/// fields are rejected by the kind's spec, which sees every key the common part did not take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeConfig {
    pub id: String,
    /// What is observed (a service, a cluster); incidents are keyed on it. Default: the id.
    #[serde(default)]
    pub target: Option<String>,
    /// Probes that share a group share one incident (all of `rag-production`).
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default, with = "humantime_serde::option")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
    /// A faster interval used while the last result was not healthy.
    #[serde(default, with = "humantime_serde::option")]
    pub unhealthy_interval: Option<Duration>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Overrides of the default level per reason code (`connection_refused = "P1"`).
    #[serde(default)]
    pub levels: BTreeMap<String, Level>,
    /// Flap damping for this probe (default: `[defaults.damping]`).
    #[serde(default)]
    pub damping: Option<Damping>,
    #[serde(flatten)]
    pub spec: ProbeSpec,
}

/// The keys [`ProbeConfig`] takes itself; every other key of a `[[probe]]` is its spec's.
pub const COMMON_FIELDS: [&str; 9] = [
    "id",
    "target",
    "group",
    "interval",
    "timeout",
    "unhealthy_interval",
    "enabled",
    "levels",
    "damping",
];

/// Where in a probe's spec (its keys but the [`COMMON_FIELDS`] and `kind`) deserialization
/// fails, as a path (`members[1].url`), or `None` when it does not fail or the kind is
/// unknown. serde loses that path inside a flattened, tagged enum, so the loader asks again
/// to name the field in its message.
pub fn spec_error_path<'de, D: serde::Deserializer<'de>>(kind: &str, spec: D) -> Option<String> {
    fn path_of<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(d: D) -> Option<String> {
        serde_path_to_error::deserialize::<D, T>(d)
            .err()
            .map(|e| e.path().to_string())
    }
    match kind {
        "http" => path_of::<HttpSpec, D>(spec),
        "tcp" => path_of::<TcpSpec, D>(spec),
        "disk" => path_of::<DiskSpec, D>(spec),
        "redis" => path_of::<RedisSpec, D>(spec),
        "promql" => path_of::<PromqlSpec, D>(spec),
        "node" => path_of::<NodeSpec, D>(spec),
        "workload" => path_of::<WorkloadSpec, D>(spec),
        "patroni" => path_of::<PatroniSpec, D>(spec),
        "postgres" => path_of::<PostgresSpec, D>(spec),
        _ => None,
    }
}

/// When a level is entered and left (DESIGN.md §5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Damping {
    /// Enter a level after this many consecutive results at or above it…
    #[serde(default = "two")]
    pub enter_after: u32,
    /// …or when `x_of_y[0]` of the last `x_of_y[1]` results are at or above it.
    #[serde(default = "three_of_five")]
    pub x_of_y: [u32; 2],
    /// Leave a level after this many consecutive results below it (hysteresis).
    #[serde(default = "three")]
    pub leave_after: u32,
    /// Frequent intermittent errors: this share of failures (P2 or worse) over the last
    /// `error_window` results is a P2 (seed 000).
    #[serde(default = "default_error_ratio")]
    pub error_ratio: f64,
    #[serde(default = "ten")]
    pub error_window: u32,
}

impl Default for Damping {
    fn default() -> Self {
        Damping {
            enter_after: two(),
            x_of_y: three_of_five(),
            leave_after: three(),
            error_ratio: default_error_ratio(),
            error_window: ten(),
        }
    }
}

fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn ten() -> u32 {
    10
}
fn three_of_five() -> [u32; 2] {
    [3, 5]
}
fn default_error_ratio() -> f64 {
    0.3
}

fn yes() -> bool {
    true
}

/// The kind-specific part of a probe, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeSpec {
    Http(HttpSpec),
    Tcp(TcpSpec),
    Disk(DiskSpec),
    Redis(RedisSpec),
    Promql(PromqlSpec),
    Node(NodeSpec),
    Workload(WorkloadSpec),
    Patroni(PatroniSpec),
    Postgres(PostgresSpec),
}

impl ProbeSpec {
    pub fn kind(&self) -> ProbeKind {
        match self {
            ProbeSpec::Http(_) => ProbeKind::Http,
            ProbeSpec::Tcp(_) => ProbeKind::Tcp,
            ProbeSpec::Disk(_) => ProbeKind::Disk,
            ProbeSpec::Redis(_) => ProbeKind::Redis,
            ProbeSpec::Promql(_) => ProbeKind::Promql,
            ProbeSpec::Node(_) => ProbeKind::Node,
            ProbeSpec::Workload(_) => ProbeKind::Workload,
            ProbeSpec::Patroni(_) => ProbeKind::Patroni,
            ProbeSpec::Postgres(_) => ProbeKind::Postgres,
        }
    }

    /// A short description of what is probed, for tables and logs (never a secret).
    pub fn describe(&self) -> String {
        match self {
            ProbeSpec::Http(h) => h.url.clone(),
            ProbeSpec::Tcp(t) => t.address.clone(),
            ProbeSpec::Disk(d) => d.path.display().to_string(),
            ProbeSpec::Redis(r) => r.instances.join(","),
            ProbeSpec::Promql(q) => format!("{} {}", q.url, q.query),
            ProbeSpec::Node(n) => match &n.label_selector {
                Some(sel) => format!("nodes {sel}"),
                None => "nodes".into(),
            },
            ProbeSpec::Workload(w) => format!("deployment {}/{}", w.namespace, w.deployment),
            ProbeSpec::Patroni(p) => p.describe(),
            ProbeSpec::Postgres(p) => p.describe(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    pub url: String,
    #[serde(default = "get")]
    pub method: String,
    /// Accepted status codes; empty means any 2xx.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    /// A regular expression the body must match.
    #[serde(default)]
    pub body_regex: Option<String>,
    /// Bodies are read up to this size; a larger one fails with `body_too_large`.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: u64,
    #[serde(default)]
    pub follow_redirects: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub bearer_token: Option<SecretRef>,
    /// Latency objective: slower answers are `Degraded` by the percentage over it.
    #[serde(default, with = "humantime_serde::option")]
    pub slo_latency: Option<Duration>,
}

fn get() -> String {
    "GET".into()
}

fn default_max_body() -> u64 {
    1024 * 1024
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// `host:port`.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSpec {
    pub path: PathBuf,
    /// Used ratio (space or inodes) from which the disk is `Degraded` (seed 004: 70 %).
    #[serde(default = "default_degraded_ratio")]
    pub degraded_ratio: f64,
    /// Used ratio from which the disk is `Failed`.
    #[serde(default = "default_failed_ratio")]
    pub failed_ratio: f64,
}

fn default_degraded_ratio() -> f64 {
    0.70
}

fn default_failed_ratio() -> f64 {
    0.95
}

/// `kind = "node"`: Ready and pressure conditions of every node (or those a label selector
/// picks), from a shared watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// `node-role.kubernetes.io/worker=true`, `pool in (a,b)`…; default: every node.
    #[serde(default)]
    pub label_selector: Option<String>,
    /// After this long without an answer of the API to the watch, the probe says `Unknown
    /// watch_stale` instead of trusting the nodes it last saw. The watch is renewed every
    /// half of it, so a quiet, healthy cluster still answers in time.
    #[serde(default = "default_node_stale_after", with = "humantime_serde")]
    pub stale_after: Duration,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            label_selector: None,
            stale_after: default_node_stale_after(),
        }
    }
}

fn default_node_stale_after() -> Duration {
    Duration::from_secs(60)
}

/// `kind = "workload"`: a Deployment's replicas and the state of its pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    pub namespace: String,
    pub deployment: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ProbeConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn kind_fields_sit_beside_common_ones() {
        let p =
            parse("id = \"a\"\nkind = \"http\"\nurl = \"http://x/\"\ninterval = \"15s\"").unwrap();
        assert_eq!(p.interval, Some(Duration::from_secs(15)));
        assert!(matches!(p.spec, ProbeSpec::Http(ref h) if h.url == "http://x/"));
    }

    #[test]
    fn unknown_field_is_rejected_by_name() {
        let err =
            parse("id = \"a\"\nkind = \"tcp\"\naddress = \"x:1\"\nadress = \"y\"").unwrap_err();
        assert!(err.to_string().contains("adress"), "{err}");
    }

    #[test]
    fn kubernetes_kinds_parse_and_reject_unknown_fields() {
        let p = parse("id = \"n\"\nkind = \"node\"\nlabel_selector = \"pool=a\"").unwrap();
        assert_eq!(p.spec.kind(), ProbeKind::Node);
        assert_eq!(p.spec.describe(), "nodes pool=a");
        let p = parse("id = \"w\"\nkind = \"workload\"\nnamespace = \"rag\"\ndeployment = \"api\"")
            .unwrap();
        assert_eq!(p.spec.describe(), "deployment rag/api");
        let err =
            parse("id = \"w\"\nkind = \"workload\"\nnamespace = \"rag\"\ndeploymnet = \"api\"")
                .unwrap_err();
        assert!(err.to_string().contains("deploymnet"), "{err}");
    }

    #[test]
    fn common_fields_are_the_probe_config_keys() {
        let mut p = parse("id = \"a\"\nkind = \"tcp\"\naddress = \"x:1\"").unwrap();
        p.target = Some("t".into());
        p.group = Some("g".into());
        p.interval = Some(Duration::from_secs(2));
        p.timeout = Some(Duration::from_secs(1));
        p.unhealthy_interval = Some(Duration::from_secs(2));
        p.levels.insert("x".into(), Level::P1);
        p.damping = Some(Damping::default());
        let toml::Value::Table(t) = toml::Value::try_from(&p).unwrap() else {
            panic!("a probe is a table");
        };
        let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
        keys.retain(|k| !["kind", "address"].contains(k));
        keys.sort_unstable();
        let mut common = COMMON_FIELDS.to_vec();
        common.sort_unstable();
        assert_eq!(keys, common);
    }

    #[test]
    fn spec_errors_have_a_path_for_every_kind() {
        for kind in [
            "http", "tcp", "disk", "redis", "promql", "node", "workload", "patroni", "postgres",
        ] {
            let bad: toml::Value = toml::from_str("label_selector = 5\nurl = 5\naddress = 5\npath = 5\ninstances = 5\nnamespace = 5\nmembers = 5\nhost = 5").unwrap();
            let path = spec_error_path(kind, bad);
            assert!(path.is_some_and(|p| p != "."), "{kind}");
        }
        let ok: toml::Value = toml::from_str("address = \"h:1\"").unwrap();
        assert_eq!(spec_error_path("tcp", ok), None);
    }

    #[test]
    fn unknown_kind_is_rejected_by_name() {
        let err = parse("id = \"a\"\nkind = \"ftp\"").unwrap_err();
        assert!(err.to_string().contains("ftp"), "{err}");
    }
}
