//! The `kind = "redis"` probe spec: a master and its replicas, AUTH from a secret, the lag
//! limit and the keyspace hit ratio the runbook calls "high cache miss rate".

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSpec {
    /// Every instance of the set, master and replicas, as `host:port`.
    pub instances: Vec<String>,
    /// ACL user for `AUTH user password`; needs `password`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// A replica further behind the master than this is `Degraded` (`replica_lag`).
    #[serde(default = "default_max_lag_bytes")]
    pub max_lag_bytes: u64,
    /// A keyspace hit ratio below this over the window is `Degraded` (`cache_miss_high`).
    #[serde(default = "default_min_hit_ratio")]
    pub min_hit_ratio: f64,
    /// The hit ratio is the delta of hits and misses over this window, not the lifetime
    /// counters; there is no ratio until the window is covered.
    #[serde(default = "default_hit_ratio_window", with = "humantime_serde")]
    pub hit_ratio_window: Duration,
    /// Fewer lookups than this over the window are too few to judge (an idle cache).
    #[serde(default = "default_min_lookups")]
    pub min_lookups: u64,
}

fn default_max_lag_bytes() -> u64 {
    1024 * 1024
}

fn default_min_hit_ratio() -> f64 {
    0.8
}

fn default_hit_ratio_window() -> Duration {
    Duration::from_secs(300)
}

fn default_min_lookups() -> u64 {
    100
}

impl RedisSpec {
    /// Every problem with the fields, as `(field, message)`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.instances.is_empty() {
            out.push(("instances", "must list at least one `host:port`".to_owned()));
        }
        let mut seen = BTreeSet::new();
        for a in &self.instances {
            if !is_host_port(a) {
                out.push(("instances", format!("`{a}` is not host:port")));
            } else if !seen.insert(a) {
                out.push(("instances", format!("`{a}` is listed twice")));
            }
        }
        if let Some(p) = self.password.as_ref().and_then(|s| s.shape_problem()) {
            out.push(("password", p.to_owned()));
        }
        if self.username.is_some() && self.password.is_none() {
            out.push(("username", "needs a `password`".to_owned()));
        }
        if !(0.0..=1.0).contains(&self.min_hit_ratio) {
            out.push((
                "min_hit_ratio",
                format!("{} is not a ratio between 0 and 1", self.min_hit_ratio),
            ));
        }
        if self.hit_ratio_window.is_zero() {
            out.push(("hit_ratio_window", "must be greater than zero".to_owned()));
        }
        out
    }
}

/// `host:port` with a non-empty host and a port above 0.
pub(super) fn is_host_port(address: &str) -> bool {
    matches!(address.rsplit_once(':'),
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ProbeConfig, ProbeSpec};

    #[test]
    fn defaults_and_problems() {
        let p: ProbeConfig = toml::from_str(
            "id = \"r\"\nkind = \"redis\"\ninstances = [\"127.0.0.1:6379\", \"nope\", \"127.0.0.1:6379\"]\nusername = \"u\"\nmin_hit_ratio = 1.5",
        )
        .unwrap();
        let ProbeSpec::Redis(spec) = p.spec else {
            panic!("not redis")
        };
        assert_eq!(spec.max_lag_bytes, 1024 * 1024);
        assert_eq!(spec.hit_ratio_window, Duration::from_secs(300));
        let fields: Vec<_> = spec.problems().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            ["instances", "instances", "username", "min_hit_ratio"]
        );
    }

    #[test]
    fn unknown_field_is_named() {
        let err = toml::from_str::<ProbeConfig>(
            "id = \"r\"\nkind = \"redis\"\ninstances = []\nmax_lag = 3",
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_lag"), "{err}");
    }

    #[test]
    fn load_names_the_probe_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let probes = "[[probe]]\nid = \"cache\"\nkind = \"redis\"\ninstances = []\n\n\
                      [[probe]]\nid = \"up\"\nkind = \"promql\"\nurl = \"ftp://x\"\nquery = \" \"\n";
        std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
        std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
        let err = crate::config::load_dir(dir.path()).unwrap_err().to_string();
        for expected in [
            "probe \"cache\": field `instances`: must list at least one",
            "probe \"up\": field `url`: scheme `ftp`",
            "probe \"up\": field `query`: must not be empty",
            "probe \"up\": field `min`: set `min`, `max` or both",
        ] {
            assert!(err.contains(expected), "{expected} in {err}");
        }
    }
}
