//! The default level of each outcome, from the runbooks in `seeds/`:
//! service down → P1; degraded > 50 % → P1, 20–50 % → P2, < 20 % → P3; PostgreSQL failover or
//! one node down → P2; split brain, cluster down → P1; pod restart, high cache miss → P3;
//! disk ≥ 70 % → P4. A probe's `levels` table overrides any of them by reason code.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::level::Level;
use crate::probes::Outcome;

/// "No primary for longer than the failover TTL" turns a P2 into a P1 (Patroni's default ttl).
pub const NO_LEADER_P1_AFTER: Duration = Duration::from_secs(30);

/// The level of a degradation percentage (seed 000's performance thresholds).
pub fn degradation_level(percent: f64) -> Level {
    if percent > 50.0 {
        Level::P1
    } else if percent >= 20.0 {
        Level::P2
    } else if percent > 0.0 {
        Level::P3
    } else {
        Level::Ok
    }
}

/// The default level for a reason code, when the code alone decides it.
fn by_reason(reason: &str) -> Option<Level> {
    Some(match reason {
        // Whole things down.
        "split_brain" | "cluster_down" | "all_members_down" | "no_replicas_available" => Level::P1,
        // Seed 000 P1: "Perte de données" (a Redis master that restarted empty).
        "data_loss" => Level::P1,
        // Seed 004 P2: PostgreSQL failover, one node down; seed 000 P2: frequent intermittent
        // errors, a major feature down.
        "no_leader"
        | "leader_unreachable"
        | "dcs_unreachable"
        | "member_down"
        | "node_not_ready"
        | "no_master"
        | "multiple_masters"
        | "replicas_unavailable"
        | "crash_loop"
        | "intermittent_errors"
        | "auth_failed"
        | "disk_full"
        | "inodes_full"
        | "no_data" => Level::P2,
        // Seed 004 P3: pod restart, high cache miss rate; and minor trouble.
        "pod_restarted"
        | "cache_miss_high"
        | "replica_lag"
        | "replica_not_streaming"
        | "failover_not_ready"
        | "master_link_down"
        | "instance_down"
        | "long_queries"
        | "connections_high"
        | "node_pressure" => Level::P3,
        // Seed 004 P4: disk 70 %, anomalies without user impact.
        "disk_usage_high" | "inodes_high" | "paused" => Level::P4,
        _ => return None,
    })
}

/// Kinds whose outright failure is a data-store failure (P2: Patroni or a failover is
/// expected to handle it) rather than a service down (P1).
fn is_data_store(kind: &str) -> bool {
    matches!(kind, "postgres" | "redis" | "patroni")
}

/// The level an outcome maps to, or `None` for `Unknown` (which neither raises nor clears).
/// `degradation` is the smoothed percentage to use for `slow` outcomes.
pub fn level_of(
    kind: &str,
    outcome: &Outcome,
    degradation: f64,
    overrides: &BTreeMap<String, Level>,
) -> Option<Level> {
    if let Some(l) = overrides.get(outcome.reason()) {
        return match outcome {
            Outcome::Unknown { .. } => None,
            _ => Some(*l),
        };
    }
    match outcome {
        Outcome::Healthy => Some(Level::Ok),
        Outcome::Unknown { .. } => None,
        Outcome::Degraded { reason, .. } if reason.starts_with("slow") => {
            Some(degradation_level(degradation))
        }
        Outcome::Degraded { reason, .. } => Some(by_reason(reason).unwrap_or(Level::P3)),
        Outcome::Failed { reason } => Some(by_reason(reason).unwrap_or(if is_data_store(kind) {
            Level::P2
        } else {
            Level::P1
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(kind: &str, o: Outcome) -> Option<Level> {
        let deg = match &o {
            Outcome::Degraded { value, .. } => *value,
            _ => 0.0,
        };
        level_of(kind, &o, deg, &BTreeMap::new())
    }

    #[test]
    fn seed_defaults() {
        let table = [
            (
                "http",
                Outcome::failed("connection_refused"),
                Some(Level::P1),
            ),
            ("http", Outcome::failed("bad_status"), Some(Level::P1)),
            ("http", Outcome::degraded(60.0, "slow"), Some(Level::P1)),
            ("http", Outcome::degraded(50.0, "slow"), Some(Level::P2)),
            ("http", Outcome::degraded(20.0, "slow"), Some(Level::P2)),
            ("http", Outcome::degraded(19.0, "slow"), Some(Level::P3)),
            ("http", Outcome::Healthy, Some(Level::Ok)),
            ("http", Outcome::unknown("no_cluster"), None),
            ("patroni", Outcome::failed("split_brain"), Some(Level::P1)),
            ("patroni", Outcome::failed("no_leader"), Some(Level::P2)),
            (
                "patroni",
                Outcome::degraded(0.0, "failover_not_ready"),
                Some(Level::P3),
            ),
            (
                "postgres",
                Outcome::failed("connection_refused"),
                Some(Level::P2),
            ),
            ("node", Outcome::failed("node_not_ready"), Some(Level::P2)),
            ("node", Outcome::failed("cluster_down"), Some(Level::P1)),
            (
                "workload",
                Outcome::degraded(1.0, "pod_restarted"),
                Some(Level::P3),
            ),
            (
                "redis",
                Outcome::degraded(0.4, "cache_miss_high"),
                Some(Level::P3),
            ),
            (
                "disk",
                Outcome::degraded(0.71, "disk_usage_high"),
                Some(Level::P4),
            ),
            ("disk", Outcome::failed("disk_full"), Some(Level::P2)),
            ("promql", Outcome::failed("threshold"), Some(Level::P1)),
        ];
        for (kind, outcome, want) in table {
            assert_eq!(level(kind, outcome.clone()), want, "{kind} {outcome:?}");
        }
    }

    #[test]
    fn overrides_win_but_never_for_unknown() {
        let mut o = BTreeMap::new();
        o.insert("bad_status".to_owned(), Level::P3);
        o.insert("no_cluster".to_owned(), Level::P1);
        assert_eq!(
            level_of("http", &Outcome::failed("bad_status"), 0.0, &o),
            Some(Level::P3)
        );
        assert_eq!(
            level_of("node", &Outcome::unknown("no_cluster"), 0.0, &o),
            None
        );
    }
}
