//! Pure judgement of a Redis master/replica set: from what each instance answered this run to
//! an assembled [`RedisView`] (roles, links, lag, persistence) and a [`Finding`]. No IO.

use serde::Serialize;

use super::data_loss::Memory;
use super::hit_ratio::WindowedLookups;
use super::info::{Dataset, Replication, Role, Stats};
use crate::config::RedisSpec;
use crate::metrics::GaugeName;
use crate::probes::{Finding, Measurement, Outcome};

/// Whether a master keeps its data across a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Persistence {
    pub aof_enabled: bool,
    /// The `save` points from `CONFIG GET save` (`""` = none); `None` when CONFIG is not
    /// allowed (renamed command, ACL).
    pub rdb_save_rules: Option<String>,
}

impl Persistence {
    /// `Some(true)` with AOF or RDB save points, `Some(false)` with neither, `None` when the
    /// save points could not be read and AOF is off.
    pub fn keeps_data(&self) -> Option<bool> {
        if self.aof_enabled {
            return Some(true);
        }
        self.rdb_save_rules
            .as_ref()
            .map(|rules| !rules.trim().is_empty())
    }
}

/// What one instance answered this run.
#[derive(Debug, Clone, PartialEq)]
pub enum InstanceRead {
    Answered {
        replication: Replication,
        stats: Option<Stats>,
        persistence: Option<Persistence>,
        /// `run_id` and key count (`None`: the sections could not be read). Boxed: the
        /// other variants are small.
        dataset: Option<Box<Dataset>>,
    },
    /// Could not connect, or no answer in time; `why` is a reason code (`connection_refused`).
    Down { why: &'static str },
    /// The password was refused or is needed.
    AuthFailed,
    /// It answered something that is not a valid `INFO` reply; `what` never holds a secret.
    ProtocolError { what: String },
}

/// How an instance looked, for the view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    Up,
    Down,
    AuthFailed,
    ProtocolError,
}

/// One instance in the assembled view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceState {
    pub address: String,
    pub reachability: Reachability,
    pub role: Option<Role>,
    /// Replicas only: `master_link_status` is `up`.
    pub master_link_up: Option<bool>,
    /// Replicas only, with exactly one master: master offset − replica offset.
    pub lag_bytes: Option<u64>,
    pub connected_replicas: Option<u64>,
    /// Why it is not `Up` (a reason code or a decoding error), never a secret.
    pub problem: Option<String>,
}

/// The master/replica set as this run saw it; the future remediation code reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisView {
    pub instances: Vec<InstanceState>,
    /// The addresses of the instances that report `role:master`.
    pub masters: Vec<String>,
    /// Whether the single master keeps its data across a restart; `None` when unknown or
    /// when there is not exactly one master. Never restart a master that does not
    /// (`Some(false)`) while its replicas hold the only copy: they would resync an empty set.
    pub master_keeps_data: Option<bool>,
}

/// Builds the view from `(address, read)` pairs in configuration order.
pub fn assemble(reads: &[(String, InstanceRead)]) -> RedisView {
    let masters: Vec<(&String, &Replication, &Option<Persistence>)> = reads
        .iter()
        .filter_map(|(a, r)| match r {
            InstanceRead::Answered {
                replication,
                persistence,
                ..
            } if replication.role == Role::Master => Some((a, replication, persistence)),
            _ => None,
        })
        .collect();
    let single_master = match masters.as_slice() {
        [(_, repl, _)] => Some(repl.master_repl_offset),
        _ => None,
    };
    let instances = reads
        .iter()
        .map(|(address, read)| state(address, read, single_master))
        .collect();
    RedisView {
        instances,
        masters: masters.iter().map(|(a, _, _)| (*a).clone()).collect(),
        master_keeps_data: match masters.as_slice() {
            [(_, _, Some(p))] => p.keeps_data(),
            _ => None,
        },
    }
}

fn state(address: &str, read: &InstanceRead, master_offset: Option<u64>) -> InstanceState {
    let mut s = InstanceState {
        address: address.to_owned(),
        reachability: Reachability::Up,
        role: None,
        master_link_up: None,
        lag_bytes: None,
        connected_replicas: None,
        problem: None,
    };
    match read {
        InstanceRead::Answered { replication, .. } => {
            s.role = Some(replication.role);
            s.connected_replicas = Some(replication.connected_replicas);
            if let Some(up) = &replication.upstream {
                s.master_link_up = Some(up.link_up);
                s.lag_bytes = master_offset.map(|m| m.saturating_sub(up.offset));
            }
        }
        InstanceRead::Down { why } => {
            s.reachability = Reachability::Down;
            s.problem = Some((*why).to_owned());
        }
        InstanceRead::AuthFailed => {
            s.reachability = Reachability::AuthFailed;
            s.problem = Some("authentication failed".to_owned());
        }
        InstanceRead::ProtocolError { what } => {
            s.reachability = Reachability::ProtocolError;
            s.problem = Some(what.clone());
        }
    }
    s
}

/// Judges the view. `lookups` is the hit/miss delta over the window, once there is one.
///
/// In order: two or more masters → `Failed multiple_masters`. A master that restarted with
/// less than half its keys (see [`super::data_loss`]) → `Failed data_loss` (P1). An instance that could not be
/// read although it answered (garbled reply → `protocol_error`, refused password →
/// `auth_failed`) → `Unknown`: it may be the master we cannot see. No master → `Failed
/// no_master` (an unreachable instance that was the only master lands here). Then, with one
/// master, `Degraded`: a replica's link down (`master_link_down`, value = replicas), an
/// instance unreachable (`instance_down`, value = instances), lag over `max_lag_bytes`
/// (`replica_lag`, value = worst bytes), hit ratio under `min_hit_ratio` once the window holds
/// `min_lookups` lookups (`cache_miss_high`, value = ratio).
pub fn judge(
    probe_id: &str,
    view: &RedisView,
    spec: &RedisSpec,
    lookups: Option<WindowedLookups>,
    memory: &Memory,
) -> Finding {
    let count = |f: &dyn Fn(&InstanceState) -> bool| view.instances.iter().filter(|i| f(i)).count();
    let down = count(&|i| i.reachability == Reachability::Down);
    let auth = count(&|i| i.reachability == Reachability::AuthFailed);
    let protocol = count(&|i| i.reachability == Reachability::ProtocolError);
    let link_down = count(&|i| i.master_link_up == Some(false));
    let worst_lag = view.instances.iter().filter_map(|i| i.lag_bytes).max();
    let ratio = lookups.and_then(|l| l.ratio());
    let judged_ratio = lookups
        .filter(|l| l.lookups() >= spec.min_lookups)
        .and_then(|l| l.ratio());

    let blind = if protocol > 0 {
        Some(Outcome::unknown("protocol_error"))
    } else if auth > 0 {
        Some(Outcome::unknown("auth_failed"))
    } else {
        None
    };
    let outcome = match view.masters.len() {
        0 | 1 if memory.loss.is_some() => Outcome::failed("data_loss"),
        0 => blind.unwrap_or_else(|| Outcome::failed("no_master")),
        1 => blind.unwrap_or_else(|| {
            if link_down > 0 {
                Outcome::degraded(link_down as f64, "master_link_down")
            } else if down > 0 {
                Outcome::degraded(down as f64, "instance_down")
            } else if let Some(lag) = worst_lag.filter(|l| *l > spec.max_lag_bytes) {
                Outcome::degraded(lag as f64, "replica_lag")
            } else if let Some(r) = judged_ratio.filter(|r| *r < spec.min_hit_ratio) {
                Outcome::degraded(r, "cache_miss_high")
            } else {
                Outcome::Healthy
            }
        }),
        _ => Outcome::failed("multiple_masters"),
    };

    let mut detail = describe(view, lookups, spec);
    if let Some(loss) = &memory.loss {
        detail.insert_str(
            0,
            &format!(
                "data lost: the master restarted (new run_id) with {} keys, it held {}; ",
                loss.keys_after, loss.keys_before
            ),
        );
    }
    if view.masters.is_empty() && memory.master_keeps_data == Some(false) {
        detail.push_str(
            "; the last master had no persistence: its replicas hold the only copy of the data (never restart them empty)",
        );
    }
    let mut finding = Finding::new(outcome, detail);
    for i in &view.instances {
        let labels = [("instance", i.address.as_str())];
        let up = f64::from(u8::from(i.reachability == Reachability::Up));
        finding = finding.with(Measurement::new(GaugeName::RedisUp, &labels, up));
        if let Some(link) = i.master_link_up {
            let v = f64::from(u8::from(link));
            finding = finding.with(Measurement::new(GaugeName::RedisMasterLinkUp, &labels, v));
        }
        if let Some(lag) = i.lag_bytes {
            let m = Measurement::new(GaugeName::RedisReplicationLagBytes, &labels, lag as f64);
            finding = finding.with(m);
        }
        if let Some(n) = i.connected_replicas {
            let m = Measurement::new(GaugeName::RedisConnectedReplicas, &labels, n as f64);
            finding = finding.with(m);
        }
    }
    if let Some(r) = ratio {
        let m = Measurement::new(GaugeName::RedisKeyspaceHitRatio, &[("probe", probe_id)], r);
        finding = finding.with(m);
    }
    finding
}

/// One sentence per instance, then the hit ratio.
fn describe(view: &RedisView, lookups: Option<WindowedLookups>, spec: &RedisSpec) -> String {
    let mut parts: Vec<String> = view
        .instances
        .iter()
        .map(|i| match (i.reachability, i.role) {
            (Reachability::Up, Some(Role::Master)) => format!(
                "{} master, {} replica(s) connected{}",
                i.address,
                i.connected_replicas.unwrap_or(0),
                match view.master_keeps_data {
                    Some(true) => ", persistent",
                    Some(false) => ", no persistence (a restart empties it and its replicas)",
                    None => "",
                }
            ),
            (Reachability::Up, _) => {
                let link = match i.master_link_up {
                    Some(true) => "up",
                    _ => "down",
                };
                match i.lag_bytes {
                    Some(lag) => format!("{} replica, link {link}, lag {lag} B", i.address),
                    None => format!("{} replica, link {link}", i.address),
                }
            }
            (_, _) => format!(
                "{} {}",
                i.address,
                i.problem.as_deref().unwrap_or("unreachable")
            ),
        })
        .collect();
    if view.masters.len() > 1 {
        parts.insert(0, format!("{} masters", view.masters.len()));
    }
    let window = humantime::format_duration(spec.hit_ratio_window);
    parts.push(match lookups {
        None => format!("hit ratio: collecting {window} of samples"),
        Some(l) => match l.ratio() {
            Some(r) => format!(
                "hit ratio {:.1} % over {window} ({} lookups)",
                r * 100.0,
                l.lookups()
            ),
            None => format!("no lookups over {window}"),
        },
    });
    parts.join("; ")
}
