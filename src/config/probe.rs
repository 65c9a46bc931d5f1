//! The `[[probe]]` entries of `probes.toml`: fields every probe has, and one spec per kind.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;
use super::postgres::{PatroniSpec, PostgresSpec};
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
    #[serde(flatten)]
    pub spec: ProbeSpec,
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
    Patroni(PatroniSpec),
    Postgres(PostgresSpec),
}

impl ProbeSpec {
    pub fn kind(&self) -> ProbeKind {
        match self {
            ProbeSpec::Http(_) => ProbeKind::Http,
            ProbeSpec::Tcp(_) => ProbeKind::Tcp,
            ProbeSpec::Disk(_) => ProbeKind::Disk,
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
    fn unknown_kind_is_rejected_by_name() {
        let err = parse("id = \"a\"\nkind = \"ftp\"").unwrap_err();
        assert!(err.to_string().contains("ftp"), "{err}");
    }
}
