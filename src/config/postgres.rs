//! The specs of the PostgreSQL-side probes: `kind = "patroni"` (a cluster seen through every
//! member's REST API) and `kind = "postgres"` (one server over SQL).

use std::fmt;
use std::time::Duration;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::SecretRef;

/// `kind = "patroni"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatroniSpec {
    /// Every member's REST API: `"http://10.0.0.1:8008"` or
    /// `{ url = "http://10.0.0.1:8008", name = "pg1", postgres = "10.0.0.1:5432" }`.
    pub members: Vec<PatroniMember>,
    /// A replica further behind than this is lagging and no failover candidate; the same
    /// meaning as Patroni's `maximum_lag_on_failover` (default 1 MiB, Patroni's default).
    #[serde(default = "default_max_lag_bytes")]
    pub max_lag_bytes: u64,
    /// The `cluster` label of the gauges; default: the probe id.
    #[serde(default)]
    pub cluster: Option<String>,
    /// A login to ask a member's postgres directly (`pg_is_in_recovery()`) when its Patroni
    /// does not answer: the only way to see the old primary of a split brain, whose Patroni
    /// died while its postgres kept accepting writes.
    #[serde(default)]
    pub sql: Option<SqlLogin>,
    /// Basic auth of the REST API's write endpoints (Patroni's `restapi.authentication`),
    /// used by the `patroni_failover` and `patroni_reinitialize` actions only.
    #[serde(default)]
    pub auth: Option<RestAuth>,
    /// How long Patroni itself may take to elect a new leader: its `ttl` plus `loop_wait`
    /// (the leader key expires up to `ttl` after its last renewal, replicas notice within a
    /// loop). A `patroni_failover` holds (`patroni_handling_it`) while there has been no
    /// leader for less than this. Default 30 s (Patroni's default `ttl`; add its
    /// `loop_wait`, 10 s by default, to leave Patroni its full chance).
    #[serde(default = "default_ttl", with = "humantime_serde")]
    pub ttl: Duration,
}

fn default_max_lag_bytes() -> u64 {
    1_048_576
}

fn default_ttl() -> Duration {
    Duration::from_secs(30)
}

/// `auth = { username = "patroni", password = { env = "PATRONI_REST_PASSWORD" } }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestAuth {
    pub username: String,
    pub password: SecretRef,
}

/// One member of a Patroni cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatroniMember {
    /// The REST API base URL (`http://host:8008`).
    pub url: String,
    /// The member's Patroni name. Default: learned from `/cluster` (its `api_url`), else the
    /// URL's `host:port`. Set it for gauge labels that never change.
    pub name: Option<String>,
    /// The member's postgres `host:port`, for the `sql` check. Default: what `/cluster` said.
    pub postgres: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberTable {
    url: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    postgres: Option<String>,
}

/// A bare URL string or a table: written by hand so that a misspelt key is named in the
/// error, which an untagged enum would hide behind "did not match any variant".
impl<'de> Deserialize<'de> for PatroniMember {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct MemberVisitor;
        impl<'de> Visitor<'de> for MemberVisitor {
            type Value = PatroniMember;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a REST API URL or a table { url, name, postgres }")
            }
            fn visit_str<E: de::Error>(self, url: &str) -> Result<PatroniMember, E> {
                Ok(PatroniMember {
                    url: url.to_owned(),
                    name: None,
                    postgres: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PatroniMember, A::Error> {
                let t = MemberTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PatroniMember {
                    url: t.url,
                    name: t.name,
                    postgres: t.postgres,
                })
            }
        }
        d.deserialize_any(MemberVisitor)
    }
}

/// How to log in to PostgreSQL (the password only ever comes from env or a file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlLogin {
    pub user: String,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    #[serde(default)]
    pub password: Option<SecretRef>,
}

fn default_dbname() -> String {
    "postgres".into()
}

/// `kind = "postgres"`: one server, a fresh connection per run, no TLS (`sslmode` plays no
/// part: meant for loopback or a trusted network, like a sidecar).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSpec {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    pub user: String,
    #[serde(default = "default_dbname")]
    pub dbname: String,
    #[serde(default)]
    pub password: Option<SecretRef>,
    /// A query running longer than this is a long query (seed 000: 5 minutes).
    #[serde(default = "default_long_query", with = "humantime_serde")]
    pub long_query_threshold: Duration,
    /// Connections used over `max_connections` from which the server is `Degraded`.
    #[serde(default = "default_connections_ratio")]
    pub max_connections_ratio: f64,
}

fn default_port() -> u16 {
    5432
}

fn default_long_query() -> Duration {
    Duration::from_secs(300)
}

fn default_connections_ratio() -> f64 {
    0.9
}

impl PatroniSpec {
    pub fn describe(&self) -> String {
        let urls: Vec<&str> = self.members.iter().map(|m| m.url.as_str()).collect();
        urls.join(",")
    }
}

impl PostgresSpec {
    /// `postgres://user@host:port/dbname`, never the password.
    pub fn describe(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.dbname
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::{ProbeConfig, ProbeSpec};

    fn parse(s: &str) -> Result<ProbeConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn members_are_urls_or_tables() {
        let p = parse(
            r#"id = "pg"
kind = "patroni"
members = ["http://a:8008", { url = "http://b:8008", name = "pg2", postgres = "b:5432" }]
"#,
        )
        .unwrap();
        let ProbeSpec::Patroni(spec) = p.spec else {
            panic!("not patroni")
        };
        assert_eq!(spec.members[0].url, "http://a:8008");
        assert_eq!(spec.members[0].name, None);
        assert_eq!(spec.members[1].name.as_deref(), Some("pg2"));
        assert_eq!(spec.members[1].postgres.as_deref(), Some("b:5432"));
        assert_eq!(spec.max_lag_bytes, 1_048_576);
    }

    #[test]
    fn a_misspelt_member_key_is_named() {
        let err = parse(
            r#"id = "pg"
kind = "patroni"
members = [{ url = "http://b:8008", nmae = "pg2" }]
"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
    }

    #[test]
    fn postgres_defaults_follow_the_runbook() {
        let p = parse("id = \"db\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nuser = \"mon\"\n")
            .unwrap();
        let ProbeSpec::Postgres(spec) = p.spec else {
            panic!("not postgres")
        };
        assert_eq!(spec.long_query_threshold.as_secs(), 300);
        assert_eq!(spec.port, 5432);
        assert_eq!(spec.dbname, "postgres");
        assert!((spec.max_connections_ratio - 0.9).abs() < 1e-9);
        assert_eq!(spec.describe(), "postgres://mon@127.0.0.1:5432/postgres");
    }

    #[test]
    fn an_inline_password_is_rejected() {
        let inline =
            "id = \"db\"\nkind = \"postgres\"\nhost = \"h\"\nuser = \"u\"\npassword = \"x\"\n";
        assert!(parse(inline).is_err());
    }
}
