//! The `redis` probe: a fresh connection per instance per run (no connection manager: a pooled
//! connection reconnects silently and hides an outage), `INFO replication`, `stats` and
//! `persistence`, `server` and `keyspace` in one round trip, `CONFIG GET save` on the master,
//! each under a timeout. [`info`] decodes, [`hit_ratio`] keeps the windowed counters,
//! [`data_loss`] remembers the master across runs, [`assess`] judges.

mod assess;
mod data_loss;
mod hit_ratio;
/// Public for the micro benchmarks (`benches/hot_paths.rs`).
pub mod info;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use redis::{AsyncConnectionConfig, ConnectionAddr, ErrorKind, IntoConnectionInfo, RedisError};

pub use assess::{InstanceState, Persistence, Reachability, RedisView};
pub use info::Role;

use super::classify::classify_chain;
use super::{Finding, Outcome};
use crate::config::{RedisSpec, Secret};
use assess::InstanceRead;
use data_loss::DataGuard;
use hit_ratio::HitRatios;

/// Share of the probe's timeout that one instance may take, so that a hung instance shows as
/// `instance_down` before the overall timeout turns the whole run into a failure.
const INSTANCE_SHARE: f64 = 0.8;

/// The redis probe's state across runs: the hit/miss samples of every probe, and what each
/// set's master held (for data loss).
#[derive(Clone, Default)]
pub(super) struct RedisProber {
    hit_ratios: Arc<HitRatios>,
    data: Arc<DataGuard>,
}

/// How to log in, resolved from the spec's secret for this run only.
struct Credentials {
    username: Option<String>,
    password: Option<Secret>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message names the variable or file, never the value.
    #[error("password: {0}")]
    Secret(crate::config::SecretError),
}

impl RedisProber {
    pub(super) async fn probe(&self, id: &str, spec: &RedisSpec, timeout: Duration) -> Finding {
        let reads = match read_all(spec, timeout).await {
            Ok(r) => r,
            Err(e) => return Finding::new(Outcome::unknown("secret_unavailable"), e.to_string()),
        };
        let stats: Vec<_> = reads
            .iter()
            .map(|(address, read)| {
                let stats = match read {
                    InstanceRead::Answered { stats, .. } => *stats,
                    _ => None,
                };
                (address.as_str(), stats)
            })
            .collect();
        let now = Instant::now();
        let lookups = self
            .hit_ratios
            .record(id, now, spec.hit_ratio_window, &stats);
        let view = assess::assemble(&reads);
        let masters: Vec<&info::Dataset> = reads
            .iter()
            .filter_map(|(_, read)| match read {
                InstanceRead::Answered {
                    replication,
                    dataset: Some(d),
                    ..
                } if replication.role == Role::Master => Some(&**d),
                _ => None,
            })
            .collect();
        let master = match (masters.as_slice(), view.masters.len()) {
            ([d], 1) => Some((*d, view.master_keeps_data)),
            _ => None,
        };
        let memory = self.data.record(id, master, now);
        assess::judge(id, &view, spec, lookups, &memory)
    }
}

/// Reads every instance once and assembles the view (roles, links, lag, whether the master
/// keeps its data): what a remediation looks at before it touches a Redis set.
pub async fn observe_set(spec: &RedisSpec, timeout: Duration) -> Result<RedisView, Error> {
    Ok(assess::assemble(&read_all(spec, timeout).await?))
}

async fn read_all(
    spec: &RedisSpec,
    timeout: Duration,
) -> Result<Vec<(String, InstanceRead)>, Error> {
    let creds = Credentials {
        username: spec.username.clone(),
        password: crate::config::read_secret(spec.password.as_ref())
            .await
            .map_err(Error::Secret)?,
    };
    let budget = timeout.mul_f64(INSTANCE_SHARE);
    let reads = join_all(
        spec.instances
            .iter()
            .map(|a| read_instance(a, &creds, budget)),
    )
    .await;
    Ok(spec.instances.iter().cloned().zip(reads).collect())
}

/// Connects afresh to one instance and reads it, within `budget`.
async fn read_instance(address: &str, creds: &Credentials, budget: Duration) -> InstanceRead {
    let Some((host, port)) = address
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
    else {
        return InstanceRead::Down { why: "bad_address" };
    };
    let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(p) = &creds.password {
        settings = settings.set_password(p.expose());
        if let Some(u) = &creds.username {
            settings = settings.set_username(u);
        }
    }
    let info = match ConnectionAddr::Tcp(host, port).into_connection_info() {
        Ok(i) => i.set_redis_settings(settings),
        Err(_) => return InstanceRead::Down { why: "bad_address" },
    };
    let client = match redis::Client::open(info) {
        Ok(c) => c,
        Err(_) => return InstanceRead::Down { why: "bad_address" },
    };
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(budget))
        .set_response_timeout(Some(budget));
    match tokio::time::timeout(budget, query(&client, &config)).await {
        Ok(read) => read,
        Err(_) => InstanceRead::Down { why: "timeout" },
    }
}

async fn query(client: &redis::Client, config: &AsyncConnectionConfig) -> InstanceRead {
    let mut con = match client
        .get_multiplexed_async_connection_with_config(config)
        .await
    {
        Ok(c) => c,
        Err(e) => return classify(&e, Phase::Connect),
    };
    type Replies = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);
    let (replication, stats, persistence, server, keyspace): Replies = match redis::pipe()
        .cmd("INFO")
        .arg("replication")
        .cmd("INFO")
        .arg("stats")
        .cmd("INFO")
        .arg("persistence")
        .cmd("INFO")
        .arg("server")
        .cmd("INFO")
        .arg("keyspace")
        .query_async(&mut con)
        .await
    {
        Ok(r) => r,
        Err(e) => return classify(&e, Phase::Command),
    };
    let replication = match replication_read(&replication) {
        Ok(r) => r,
        Err(what) => return InstanceRead::ProtocolError { what },
    };
    // Stats and persistence are extras: a reply without them still says the role.
    let stats = info::parse_stats(&stats).ok();
    let persistence = match info::parse_persistence(&persistence) {
        Ok(p) if replication.role == Role::Master => Some(Persistence {
            aof_enabled: p.aof_enabled,
            rdb_save_rules: save_rules(&mut con).await,
        }),
        _ => None,
    };
    InstanceRead::Answered {
        replication,
        stats,
        persistence,
        dataset: info::parse_dataset(&server, &keyspace).ok().map(Box::new),
    }
}

/// The `INFO replication` reply decoded, or what is wrong with it (the `what` of an
/// [`InstanceRead::ProtocolError`]: an instance that answers something unreadable is not
/// judged, the probe says `Unknown`).
fn replication_read(raw: &[u8]) -> Result<info::Replication, String> {
    info::parse_replication(raw).map_err(|e| e.to_string())
}

/// `CONFIG GET save` → the save points, or `None` when CONFIG is refused or renamed.
async fn save_rules(con: &mut redis::aio::MultiplexedConnection) -> Option<String> {
    let reply: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("save")
        .query_async(con)
        .await
        .ok()?;
    match reply.as_slice() {
        [name, rules] if name == "save" => Some(rules.clone()),
        _ => None,
    }
}

/// The server's error code (`NOAUTH`, `ERR`…), also when it came back inside a pipeline.
fn server_code(e: &RedisError) -> Option<String> {
    if let Some(code) = e.code() {
        return Some(code.to_owned());
    }
    let errors = e.clone().into_server_errors()?;
    let code = errors.first()?.1.code();
    // The code is the server's word: keep it short and plain before it reaches a detail.
    Some(
        code.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(32)
            .collect(),
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Connect,
    Command,
}

/// Sorts a client error: refused or silent is `Down`, a refused password is `AuthFailed`, a
/// garbled reply or a connection closed mid-reply is a protocol error.
fn classify(e: &RedisError, phase: Phase) -> InstanceRead {
    let code = server_code(e);
    let auth = e.kind() == ErrorKind::AuthenticationFailed
        || matches!(code.as_deref(), Some("NOAUTH" | "WRONGPASS"));
    if auth {
        return InstanceRead::AuthFailed;
    }
    if e.kind() == ErrorKind::Server(redis::ServerErrorKind::BusyLoading) {
        return InstanceRead::Down { why: "loading" };
    }
    if e.is_timeout() {
        return InstanceRead::Down { why: "timeout" };
    }
    if e.is_connection_refusal() {
        return InstanceRead::Down {
            why: "connection_refused",
        };
    }
    if e.is_io_error() && phase == Phase::Connect {
        return InstanceRead::Down {
            why: classify_chain(e),
        };
    }
    let what = match e.kind() {
        ErrorKind::Parse => "the reply is not valid RESP",
        ErrorKind::Io => "the connection closed before the reply was complete",
        ErrorKind::UnexpectedReturnType => "the reply has an unexpected type",
        _ => "the server answered with an error",
    };
    InstanceRead::ProtocolError {
        what: match code {
            Some(code) => format!("{what} ({code})"),
            None => what.to_owned(),
        },
    }
}
