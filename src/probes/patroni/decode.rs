//! Patroni's REST payloads as they really come (3.0.2, and Patroni 4's renames): `GET /patroni`
//! (one member's own status) and `GET /cluster` (the DCS view). Lenient where Patroni varies
//! (`lag` is an integer or `"unknown"`, `timeline` is missing on stopped members), strict
//! where a wrong type means we would misread the cluster, and never a panic on bad input.

use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Answers are read up to this size; Patroni's are a few kilobytes.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty answer")]
    Empty,
    #[error("answer larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("answer is not JSON (it looks like {looks_like})")]
    NotJson { looks_like: &'static str },
    #[error("malformed JSON: {0}")]
    Malformed(String),
    #[error("unexpected JSON: {0}")]
    Shape(String),
}

/// The codes of [`DecodeError::kind`]: a member that answers with one of them answered
/// something astreinte cannot read, which is not the same as not answering.
pub const UNREADABLE: [&str; 4] = ["empty_body", "body_too_large", "not_json", "bad_json"];

impl DecodeError {
    /// A bounded code for details and logs (one of [`UNREADABLE`]).
    pub fn kind(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty_body",
            DecodeError::TooLarge { .. } => "body_too_large",
            DecodeError::NotJson { .. } => "not_json",
            DecodeError::Malformed(_) | DecodeError::Shape(_) => "bad_json",
        }
    }
}

/// `GET /patroni`: what one member says about itself.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct MemberStatus {
    /// `running`, `starting`, `stopped`, `stopping`, `crashed`, `unknown`… (Patroni 4 also
    /// says `streaming` for a replica that streams).
    pub state: String,
    /// `master` (3.x) or `primary` (4.x), `replica`, `standby_leader`…
    pub role: String,
    /// Patroni ≥ 3.0.3 names the member here; 3.0.2 does not.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub timeline: Option<u64>,
    /// Only on a primary: its `pg_stat_replication` rows.
    #[serde(default)]
    pub replication: Vec<ReplicationRow>,
    #[serde(default)]
    pub pause: bool,
    #[serde(default)]
    pub tags: Tags,
    /// Set when the member sees no leader key (election, or the DCS is gone).
    #[serde(default)]
    pub cluster_unlocked: bool,
    #[serde(default)]
    pub patroni: Option<PatroniVersion>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PatroniVersion {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// A row of the primary's `replication` list. A running `pg_basebackup` shows up here too,
/// so a replica is matched on `application_name` == its member name.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReplicationRow {
    #[serde(default)]
    pub application_name: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub sync_state: Option<String>,
}

/// The member tags that matter to failover.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Tags {
    #[serde(default, deserialize_with = "patroni_bool")]
    pub nofailover: bool,
}

/// `GET /cluster`: the DCS view of the whole cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterDoc {
    pub members: Vec<ClusterMember>,
    #[serde(default)]
    pub pause: bool,
    #[serde(default)]
    pub scheduled_switchover: Option<ScheduledSwitchover>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ClusterMember {
    pub name: String,
    /// `leader`, `replica`, `sync_standby`, `standby_leader`.
    pub role: String,
    #[serde(default)]
    pub state: String,
    /// `http://host:port/patroni`: how a configured REST URL is matched to a member name.
    #[serde(default)]
    pub api_url: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Missing on a stopped member.
    #[serde(default)]
    pub timeline: Option<u64>,
    /// Missing on the leader.
    #[serde(default)]
    pub lag: Option<Lag>,
    #[serde(default)]
    pub tags: Tags,
}

/// A replica's lag as `/cluster` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Lag {
    Bytes(u64),
    /// The member published no WAL position (its postgres is not running).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledSwitchover {
    pub at: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

impl<'de> Deserialize<'de> for Lag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct LagVisitor;
        impl Visitor<'_> for LagVisitor {
            type Value = Lag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a byte count or \"unknown\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Lag, E> {
                Ok(Lag::Bytes(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Lag, E> {
                u64::try_from(v)
                    .map(Lag::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lag, E> {
                if v == "unknown" {
                    Ok(Lag::Unknown)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(LagVisitor)
    }
}

/// A tag as Patroni reads it: a YAML bool, or a string/number it parses as one. Anything else
/// is false, as Patroni's own `parse_bool` makes it.
fn patroni_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Bool(b) => b,
        serde_json::Value::String(s) => {
            matches!(s.to_ascii_lowercase().as_str(), "true" | "on" | "yes" | "1")
        }
        serde_json::Value::Number(n) => n.as_u64() == Some(1),
        _ => false,
    })
}

/// Decodes a `GET /patroni` answer (or any status-shaped answer: `/primary`, `/health`…).
pub fn decode_status(body: &[u8]) -> Result<MemberStatus, DecodeError> {
    decode(body)
}

/// Decodes a `GET /cluster` answer.
pub fn decode_cluster(body: &[u8]) -> Result<ClusterDoc, DecodeError> {
    decode(body)
}

fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, DecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError::TooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    let Some(&first) = body.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Err(DecodeError::Empty);
    };
    let mut json = serde_json::Deserializer::from_slice(body);
    let syntax = match serde_path_to_error::deserialize(&mut json) {
        // Trailing bytes after the document make it malformed, as `from_slice` would say.
        Ok(v) => match json.end() {
            Ok(()) => return Ok(v),
            Err(e) => e,
        },
        Err(e) if e.inner().is_data() => return Err(DecodeError::Shape(shape(&e))),
        Err(e) => e.into_inner(),
    };
    Err(match first {
        b'<' => DecodeError::NotJson {
            looks_like: "an HTML page",
        },
        b'{' | b'[' => DecodeError::Malformed(syntax.to_string()),
        _ => DecodeError::NotJson {
            looks_like: "plain text",
        },
    })
}

/// A shape error that names where it is: `members[1].lag: invalid type…` (a missing field
/// is named by serde itself, at its parent's path).
fn shape(e: &serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    if path == "." {
        e.inner().to_string()
    } else {
        format!("{path}: {}", e.inner())
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
