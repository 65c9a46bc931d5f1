//! Decoding Redis `INFO` sections (`replication`, `stats`, `persistence`) into typed structs.
//!
//! `INFO` answers `key:value` lines ending in `\r\n`, with `# Section` headers and blank lines.
//! A reply that is too large, not UTF-8, has a line without `:`, lacks a field we rely on, or
//! holds a value that is not a number gets a named [`InfoError`], never a panic.

use std::collections::HashMap;

/// Larger `INFO` sections than this are refused (a real one is a few KiB).
pub const MAX_INFO_BYTES: usize = 256 * 1024;

/// Values longer than this are cut in error messages.
const SHOWN_VALUE_CHARS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InfoError {
    #[error("INFO reply of {0} bytes is larger than the {MAX_INFO_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("INFO reply is not UTF-8")]
    NotUtf8,
    #[error("INFO line {line} is not `key:value`")]
    MalformedLine { line: usize },
    #[error("INFO field `{0}` is missing")]
    Missing(&'static str),
    #[error("INFO field `{field}` has an unexpected value `{value}`")]
    BadValue { field: &'static str, value: String },
}

/// The role an instance reports (`role:master`, `role:slave`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Master,
    Replica,
}

/// `INFO replication`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replication {
    pub role: Role,
    pub connected_replicas: u64,
    /// The replication stream offset this instance has produced (master) or seen (replica).
    pub master_repl_offset: u64,
    pub master_replid: Option<String>,
    /// Present when `role` is `Replica`.
    pub upstream: Option<Upstream>,
    /// The `slaveN:` lines a master lists.
    pub replicas: Vec<ReplicaEntry>,
}

/// What a replica says about its master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub master_host: String,
    pub master_port: u16,
    pub link_up: bool,
    /// `-1` (never) is `None`.
    pub last_io_seconds_ago: Option<u64>,
    pub sync_in_progress: bool,
    /// `slave_repl_offset`: how far this replica has applied the stream.
    pub offset: u64,
    pub link_down_since_seconds: Option<u64>,
}

/// One `slaveN:ip=…,port=…,state=…,offset=…,lag=…` line of a master.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaEntry {
    pub ip: String,
    pub port: u16,
    pub state: String,
    pub offset: u64,
    pub lag_seconds: u64,
}

/// The `INFO stats` counters the cache-miss judgement needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
}

/// The `INFO persistence` flags that say whether a restart keeps the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistenceInfo {
    pub aof_enabled: bool,
    pub loading: bool,
}

/// Who the instance is and how much it holds: `run_id` (`INFO server`: a new one at every
/// start) and the keys of every database (`INFO keyspace`: `db0:keys=3000,expires=0,…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    pub run_id: String,
    pub keys: u64,
}

/// The `key:value` pairs of one or more sections, in a map.
struct Fields<'a>(HashMap<&'a str, &'a str>);

impl<'a> Fields<'a> {
    fn parse(raw: &'a [u8]) -> Result<Self, InfoError> {
        if raw.len() > MAX_INFO_BYTES {
            return Err(InfoError::TooLarge(raw.len()));
        }
        let text = std::str::from_utf8(raw).map_err(|_| InfoError::NotUtf8)?;
        let mut map = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once(':')
                .ok_or(InfoError::MalformedLine { line: i + 1 })?;
            map.insert(key, value);
        }
        Ok(Fields(map))
    }

    fn get(&self, field: &'static str) -> Option<&'a str> {
        self.0.get(field).copied()
    }

    fn str(&self, field: &'static str) -> Result<&'a str, InfoError> {
        self.get(field).ok_or(InfoError::Missing(field))
    }

    fn u64(&self, field: &'static str) -> Result<u64, InfoError> {
        number(field, self.str(field)?)
    }

    /// A counter that may be `-1` for "not applicable".
    fn optional_u64(&self, field: &'static str) -> Result<Option<u64>, InfoError> {
        match self.get(field) {
            None | Some("-1") => Ok(None),
            Some(v) => number(field, v).map(Some),
        }
    }

    fn flag(&self, field: &'static str) -> Result<bool, InfoError> {
        match self.str(field)? {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(bad(field, other)),
        }
    }
}

fn number<T: std::str::FromStr>(field: &'static str, value: &str) -> Result<T, InfoError> {
    value.trim().parse().map_err(|_| bad(field, value))
}

fn bad(field: &'static str, value: &str) -> InfoError {
    InfoError::BadValue {
        field,
        value: value.chars().take(SHOWN_VALUE_CHARS).collect(),
    }
}

/// Decodes `INFO replication`.
pub fn parse_replication(raw: &[u8]) -> Result<Replication, InfoError> {
    let f = Fields::parse(raw)?;
    let role = match f.str("role")? {
        "master" => Role::Master,
        "slave" | "replica" => Role::Replica,
        other => return Err(bad("role", other)),
    };
    let upstream = match role {
        Role::Master => None,
        Role::Replica => Some(Upstream {
            master_host: f.str("master_host")?.to_owned(),
            master_port: number("master_port", f.str("master_port")?)?,
            link_up: match f.str("master_link_status")? {
                "up" => true,
                "down" => false,
                other => return Err(bad("master_link_status", other)),
            },
            last_io_seconds_ago: f.optional_u64("master_last_io_seconds_ago")?,
            sync_in_progress: f.flag("master_sync_in_progress")?,
            offset: f.u64("slave_repl_offset")?,
            link_down_since_seconds: f.optional_u64("master_link_down_since_seconds")?,
        }),
    };
    let connected_replicas = f.u64("connected_slaves")?;
    let mut replicas = Vec::new();
    // Only the first `connected_slaves` entries are read: the count bounds the work.
    for n in 0..connected_replicas.min(1024) {
        let key = format!("slave{n}");
        if let Some(v) = f.0.get(key.as_str()) {
            replicas.push(parse_replica_entry(v)?);
        }
    }
    Ok(Replication {
        role,
        connected_replicas,
        master_repl_offset: f.u64("master_repl_offset")?,
        master_replid: f.get("master_replid").map(str::to_owned),
        upstream,
        replicas,
    })
}

/// `ip=127.0.0.1,port=26380,state=online,offset=154,lag=1`.
fn parse_replica_entry(value: &str) -> Result<ReplicaEntry, InfoError> {
    let mut parts: HashMap<&str, &str> = HashMap::new();
    for item in value.split(',') {
        let (k, v) = item.split_once('=').ok_or_else(|| bad("slaveN", value))?;
        parts.insert(k, v);
    }
    let get = |k: &'static str| parts.get(k).copied().ok_or_else(|| bad("slaveN", value));
    Ok(ReplicaEntry {
        ip: get("ip")?.to_owned(),
        port: number("slaveN.port", get("port")?)?,
        state: get("state")?.to_owned(),
        offset: number("slaveN.offset", get("offset")?)?,
        lag_seconds: number("slaveN.lag", get("lag")?)?,
    })
}

/// Decodes the keyspace counters of `INFO stats`.
pub fn parse_stats(raw: &[u8]) -> Result<Stats, InfoError> {
    let f = Fields::parse(raw)?;
    Ok(Stats {
        keyspace_hits: f.u64("keyspace_hits")?,
        keyspace_misses: f.u64("keyspace_misses")?,
    })
}

/// Decodes the flags of `INFO persistence`.
pub fn parse_persistence(raw: &[u8]) -> Result<PersistenceInfo, InfoError> {
    let f = Fields::parse(raw)?;
    Ok(PersistenceInfo {
        aof_enabled: f.flag("aof_enabled")?,
        loading: f.flag("loading")?,
    })
}

/// Decodes `INFO server` (its `run_id`) and `INFO keyspace` (the keys of all databases; an
/// empty instance lists none).
pub fn parse_dataset(server: &[u8], keyspace: &[u8]) -> Result<Dataset, InfoError> {
    let run_id = Fields::parse(server)?.str("run_id")?.to_owned();
    let mut keys: u64 = 0;
    for (name, value) in Fields::parse(keyspace)?.0 {
        if !name.starts_with("db") {
            continue;
        }
        let n = value
            .split(',')
            .find_map(|part| part.strip_prefix("keys="))
            .ok_or_else(|| bad("dbN.keys", value))?;
        keys = keys.saturating_add(number("dbN.keys", n)?);
    }
    Ok(Dataset { run_id, keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_from_server_and_keyspace() {
        let d = parse_dataset(
            b"# Server\r\nredis_version:7.0.15\r\nrun_id:4f1c\r\n",
            b"# Keyspace\r\ndb0:keys=3000,expires=0,avg_ttl=0\r\ndb2:keys=5,expires=1,avg_ttl=9\r\n",
        )
        .unwrap();
        assert_eq!((d.run_id.as_str(), d.keys), ("4f1c", 3005));
        let empty = parse_dataset(b"run_id:9\r\n", b"# Keyspace\r\n").unwrap();
        assert_eq!(empty.keys, 0);
        assert!(parse_dataset(b"run_id:9\r\n", b"db0:expires=0\r\n").is_err());
    }

    const MASTER: &[u8] = b"# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
slave0:ip=127.0.0.1,port=26380,state=online,offset=154,lag=1\r\nmaster_replid:abc\r\n\
master_repl_offset:154\r\n";

    #[test]
    fn master_with_one_replica() {
        let r = parse_replication(MASTER).unwrap();
        assert_eq!(r.role, Role::Master);
        assert_eq!(r.connected_replicas, 1);
        assert_eq!(r.master_repl_offset, 154);
        assert_eq!(r.replicas[0].port, 26380);
        assert_eq!(r.replicas[0].state, "online");
        assert!(r.upstream.is_none());
    }

    #[test]
    fn missing_role_is_named() {
        let err = parse_replication(b"connected_slaves:0\r\n").unwrap_err();
        assert_eq!(err, InfoError::Missing("role"));
        assert_eq!(err.to_string(), "INFO field `role` is missing");
    }

    #[test]
    fn bad_numbers_and_lines_are_named() {
        let err = parse_replication(b"role:master\r\nconnected_slaves:x\r\n").unwrap_err();
        assert!(matches!(
            err,
            InfoError::BadValue {
                field: "connected_slaves",
                ..
            }
        ));
        let err = parse_replication(b"role:master\r\ngarbage\r\n").unwrap_err();
        assert_eq!(err, InfoError::MalformedLine { line: 2 });
        let err = parse_replication(b"role:sentinel\r\n").unwrap_err();
        assert!(matches!(err, InfoError::BadValue { field: "role", .. }));
    }

    #[test]
    fn huge_and_binary_input_are_refused() {
        let huge = vec![b'a'; MAX_INFO_BYTES + 1];
        assert_eq!(
            parse_replication(&huge).unwrap_err(),
            InfoError::TooLarge(MAX_INFO_BYTES + 1)
        );
        assert_eq!(
            parse_stats(&[0xff, 0xfe, b':', b'1']).unwrap_err(),
            InfoError::NotUtf8
        );
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let line = format!("role:{}\r\n", "x".repeat(10_000));
        let err = parse_replication(line.as_bytes()).unwrap_err();
        assert!(err.to_string().len() < 120, "{err}");
    }

    #[test]
    fn stats_and_persistence() {
        let s = parse_stats(b"# Stats\r\nkeyspace_hits:10\r\nkeyspace_misses:3\r\n").unwrap();
        assert_eq!((s.keyspace_hits, s.keyspace_misses), (10, 3));
        let p = parse_persistence(b"# Persistence\r\nloading:0\r\naof_enabled:1\r\n").unwrap();
        assert!(p.aof_enabled && !p.loading);
        assert_eq!(
            parse_stats(b"keyspace_hits:1\r\n").unwrap_err(),
            InfoError::Missing("keyspace_misses")
        );
    }
}
