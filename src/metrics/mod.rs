//! Every metric astreinte exports, registered in one place (prefix `astreinte_`, except
//! blackbox_exporter's `probe_success` and `probe_duration_seconds`, kept for dashboards).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};

use crate::probes::Observation;

mod cluster_series;
mod series;

pub use series::Removed;

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Per-kind gauges that probes fill through [`crate::probes::Measurement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GaugeName {
    HttpStatusCode,
    DiskUsedRatio,
    DiskInodesUsedRatio,
    RedisUp,
    RedisMasterLinkUp,
    RedisReplicationLagBytes,
    RedisConnectedReplicas,
    RedisKeyspaceHitRatio,
    PromqlValue,
    NodeReady,
    NodesNotReady,
    WorkloadDesiredReplicas,
    WorkloadAvailableReplicas,
    WorkloadPodsNotRunning,
    PatroniLagBytes,
    PatroniMemberUp,
    PatroniLeaders,
    PatroniFailoverReady,
    PatroniTimeline,
    PostgresLongQueries,
    PostgresConnectionsUsedRatio,
    PostgresInRecovery,
    PostgresReplicationLagBytes,
}

impl GaugeName {
    pub const ALL: &[GaugeName] = &[
        GaugeName::HttpStatusCode,
        GaugeName::DiskUsedRatio,
        GaugeName::DiskInodesUsedRatio,
        GaugeName::RedisUp,
        GaugeName::RedisMasterLinkUp,
        GaugeName::RedisReplicationLagBytes,
        GaugeName::RedisConnectedReplicas,
        GaugeName::RedisKeyspaceHitRatio,
        GaugeName::PromqlValue,
        GaugeName::NodeReady,
        GaugeName::NodesNotReady,
        GaugeName::WorkloadDesiredReplicas,
        GaugeName::WorkloadAvailableReplicas,
        GaugeName::WorkloadPodsNotRunning,
        GaugeName::PatroniLagBytes,
        GaugeName::PatroniMemberUp,
        GaugeName::PatroniLeaders,
        GaugeName::PatroniFailoverReady,
        GaugeName::PatroniTimeline,
        GaugeName::PostgresLongQueries,
        GaugeName::PostgresConnectionsUsedRatio,
        GaugeName::PostgresInRecovery,
        GaugeName::PostgresReplicationLagBytes,
    ];

    /// The metric name without the `astreinte_` prefix, and its help text.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            GaugeName::HttpStatusCode => (
                "http_status_code",
                "Status code of the last HTTP probe answer",
            ),
            GaugeName::DiskUsedRatio => (
                "disk_used_ratio",
                "Used share of the file system's space, as df computes it",
            ),
            GaugeName::DiskInodesUsedRatio => (
                "disk_inodes_used_ratio",
                "Used share of the file system's inodes",
            ),
            GaugeName::RedisUp => (
                "redis_up",
                "Whether the Redis instance answered INFO (1) or not (0)",
            ),
            GaugeName::RedisMasterLinkUp => (
                "redis_master_link_up",
                "Whether the Redis replica's link to its master is up (1) or down (0)",
            ),
            GaugeName::RedisReplicationLagBytes => (
                "redis_replication_lag_bytes",
                "Bytes the Redis replica is behind the master (master_repl_offset - replica offset)",
            ),
            GaugeName::RedisConnectedReplicas => (
                "redis_connected_replicas",
                "Replicas connected to the Redis instance",
            ),
            GaugeName::RedisKeyspaceHitRatio => (
                "redis_keyspace_hit_ratio",
                "Keyspace hits / lookups over the probe's hit_ratio_window",
            ),
            GaugeName::PromqlValue => (
                "promql_value",
                "The PromQL probe's worst series value (the one nearest to or furthest past its bounds)",
            ),
            GaugeName::NodeReady => ("node_ready", "Whether the node's Ready condition is True"),
            GaugeName::NodesNotReady => ("nodes_not_ready", "Nodes a node probe sees NotReady"),
            GaugeName::WorkloadDesiredReplicas => (
                "workload_desired_replicas",
                "Replicas the Deployment asks for (spec.replicas)",
            ),
            GaugeName::WorkloadAvailableReplicas => (
                "workload_available_replicas",
                "Available replicas of the Deployment",
            ),
            GaugeName::WorkloadPodsNotRunning => (
                "workload_pods_not_running",
                "Pods of the Deployment not Running or in CrashLoopBackOff",
            ),
            GaugeName::PatroniLagBytes => (
                "patroni_lag_bytes",
                "Replication lag of a Patroni member in bytes, as /cluster reports it (0 on the leader)",
            ),
            GaugeName::PatroniMemberUp => (
                "patroni_member_up",
                "Whether a Patroni member's REST API answered GET /patroni (1) or not (0)",
            ),
            GaugeName::PatroniLeaders => (
                "patroni_leaders",
                "Members that say they run as primary (0 = no leader, 2 or more = split brain)",
            ),
            GaugeName::PatroniFailoverReady => (
                "patroni_failover_ready",
                "Whether an automatic failover would succeed now (1) or not (0)",
            ),
            GaugeName::PatroniTimeline => (
                "patroni_timeline",
                "PostgreSQL timeline of a Patroni member",
            ),
            GaugeName::PostgresLongQueries => (
                "postgres_long_queries",
                "Client queries running longer than the probe's long_query_threshold",
            ),
            GaugeName::PostgresConnectionsUsedRatio => (
                "postgres_connections_used_ratio",
                "Client connections over max_connections",
            ),
            GaugeName::PostgresInRecovery => (
                "postgres_in_recovery",
                "Whether the server is in recovery, i.e. a replica (1) or a primary (0)",
            ),
            GaugeName::PostgresReplicationLagBytes => (
                "postgres_replication_lag_bytes",
                "Bytes of WAL a replica has yet to replay, seen from the primary's pg_stat_replication",
            ),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    /// Shared with the observation (one allocation per probe, not per series or per run).
    pub probe: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub probe: Arc<str>,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

/// `receiver` is the configured receiver name (bounded by the config).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    pub receiver: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    pub target: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LevelLabels {
    pub level: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub rule: String,
    pub decision: &'static str,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    pub rule: String,
    pub action: String,
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: &'static str,
}

pub type FloatGauge = Gauge<f64, AtomicU64>;

/// The registry and handles to every family.
pub struct Metrics {
    registry: Registry,
    pub probe_success: Family<ProbeLabels, Gauge>,
    pub probe_duration_seconds: Family<ProbeLabels, FloatGauge>,
    pub probe_runs_total: Family<RunLabels, Counter>,
    pub schedule_lateness_seconds: Histogram,
    pub config_reload_total: Family<ResultLabels, Counter>,
    pub target_level: Family<TargetLabels, Gauge>,
    pub incidents_open: Family<LevelLabels, Gauge>,
    pub journal_writes_total: Family<ResultLabels, Counter>,
    pub journal_bytes: Gauge,
    pub remediation_decisions_total: Family<DecisionLabels, Counter>,
    pub remediation_actions_total: Family<ActionLabels, Counter>,
    pub remediation_budget_remaining: Family<RuleLabels, Gauge>,
    pub leader: Gauge,
    /// Probe tasks alive: the enabled probes, also after any number of reloads.
    pub probe_tasks: Gauge,
    pub notifications_total: Family<NotifyLabels, Counter>,
    /// Wall clock − the daemon's projected (monotonic) time, see [`crate::clock`].
    pub clock_skew_seconds: FloatGauge,
    /// 1 when the last applied configuration changes a section only a restart applies.
    pub config_restart_pending: Gauge,
    gauges: HashMap<GaugeName, Family<Vec<(String, String)>, FloatGauge>>,
    /// The label sets to remove when a reload removes their probe or rule.
    series: series::SharedIndex,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let probe_success = Family::<ProbeLabels, Gauge>::default();
        registry.register(
            "probe_success",
            "Whether the last run of the probe was healthy (1) or not (0)",
            probe_success.clone(),
        );
        let probe_duration_seconds = Family::<ProbeLabels, FloatGauge>::default();
        registry.register(
            "probe_duration_seconds",
            "How long the last run of the probe took",
            probe_duration_seconds.clone(),
        );
        let ours = registry.sub_registry_with_prefix("astreinte");
        let probe_runs_total = Family::<RunLabels, Counter>::default();
        ours.register(
            "probe_runs",
            "Probe runs by outcome (healthy, degraded, failed, unknown)",
            probe_runs_total.clone(),
        );
        // 100 µs to ~13 s: lateness is normally well under a millisecond.
        let schedule_lateness_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0001, 2.0, 18),
        );
        ours.register(
            "schedule_lateness_seconds",
            "How late each probe tick fired after its scheduled instant",
            schedule_lateness_seconds.clone(),
        );
        let config_reload_total = Family::<ResultLabels, Counter>::default();
        ours.register(
            "config_reload",
            "Configuration reloads by result (applied, invalid)",
            config_reload_total.clone(),
        );
        let target_level = Family::<TargetLabels, Gauge>::default();
        ours.register(
            "target_level",
            "Current level of each target or group: 0 ok, 1 P4, 2 P3, 3 P2, 4 P1",
            target_level.clone(),
        );
        let incidents_open = Family::<LevelLabels, Gauge>::default();
        for level in ["P1", "P2", "P3", "P4"] {
            incidents_open.get_or_create(&LevelLabels { level }).set(0);
        }
        ours.register(
            "incidents_open",
            "Open incidents by current level",
            incidents_open.clone(),
        );
        let journal_writes_total = Family::<ResultLabels, Counter>::default();
        ours.register(
            "journal_writes",
            "Journal writes by result (ok, error)",
            journal_writes_total.clone(),
        );
        let journal_bytes = Gauge::default();
        ours.register(
            "journal_bytes",
            "Size of the last journal document written, in bytes (compacted under [journal] max_bytes)",
            journal_bytes.clone(),
        );
        let remediation_decisions_total = Family::<DecisionLabels, Counter>::default();
        ours.register(
            "remediation_decisions",
            "Remediation decisions by rule, decision (act, dry_run, hold) and reason, counted when a rule's decision changes",
            remediation_decisions_total.clone(),
        );
        let remediation_actions_total = Family::<ActionLabels, Counter>::default();
        ours.register(
            "remediation_actions",
            "Remediation actions by rule, action and result (succeeded, rehearsed, failed, deadline…)",
            remediation_actions_total.clone(),
        );
        let remediation_budget_remaining = Family::<RuleLabels, Gauge>::default();
        ours.register(
            "remediation_budget_remaining",
            "Actions a rule may still take in its budget window",
            remediation_budget_remaining.clone(),
        );
        let leader = Gauge::default();
        ours.register(
            "leader",
            "Whether this replica holds the leader Lease and may remediate (1) or not (0)",
            leader.clone(),
        );
        let probe_tasks = Gauge::default();
        ours.register(
            "probe_tasks",
            "Probe tasks running: one per enabled probe of the running configuration",
            probe_tasks.clone(),
        );
        let notifications_total = Family::<NotifyLabels, Counter>::default();
        ours.register(
            "notifications",
            "Incident notices by receiver and result (delivered, failed, dropped)",
            notifications_total.clone(),
        );
        let clock_skew_seconds = FloatGauge::default();
        ours.register(
            "clock_skew_seconds",
            "System (wall) clock minus the daemon's monotonic time since start: non-zero after the system time jumped",
            clock_skew_seconds.clone(),
        );
        let config_restart_pending = Gauge::default();
        ours.register(
            "config_restart_pending",
            "Whether the last applied configuration changes [server], [journal], [kubernetes] or [[notify]], which only a restart applies (1) or not (0)",
            config_restart_pending.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        ours.register("build_info", "Version of the running astreinte", build_info);
        let mut gauges = HashMap::new();
        for &name in GaugeName::ALL {
            let family = Family::<Vec<(String, String)>, FloatGauge>::default();
            let (metric, help) = name.describe();
            ours.register(metric, help, family.clone());
            gauges.insert(name, family);
        }
        // Counters an alert reads with `increase(…) > 0` exist from the start, at 0: a series
        // born at its first increment has no earlier sample, so its first rise is missed.
        for result in ["applied", "invalid", "unchanged"] {
            let _ = config_reload_total.get_or_create(&ResultLabels { result });
        }
        for result in ["ok", "error", "conflict"] {
            let _ = journal_writes_total.get_or_create(&ResultLabels { result });
        }
        Metrics {
            registry,
            probe_success,
            probe_duration_seconds,
            probe_runs_total,
            schedule_lateness_seconds,
            config_reload_total,
            target_level,
            incidents_open,
            journal_writes_total,
            journal_bytes,
            remediation_decisions_total,
            remediation_actions_total,
            remediation_budget_remaining,
            leader,
            probe_tasks,
            notifications_total,
            clock_skew_seconds,
            config_restart_pending,
            gauges,
            series: series::SharedIndex::default(),
        }
    }

    /// Records one probe run.
    pub fn observe(&self, obs: &Observation) {
        let probe = ProbeLabels {
            probe: obs.probe.clone(),
        };
        self.probe_success
            .get_or_create(&probe)
            .set(i64::from(obs.outcome.is_healthy()));
        self.probe_duration_seconds
            .get_or_create(&probe)
            .set(obs.latency.as_secs_f64());
        self.probe_runs_total
            .get_or_create(&RunLabels {
                probe: probe.probe,
                result: obs.outcome.result_label(),
            })
            .inc();
        for m in &obs.measurements {
            if let Some(family) = self.gauges.get(&m.gauge) {
                // A series labelled by the probe alone is found again from its id
                // ([`Metrics::forget`]): only those with free labels are indexed (an index
                // entry per http probe cost about 0.5 KiB, docs/BENCHMARKS.md, run C).
                if !series::probe_only(&obs.probe, &m.labels) && family.get(&m.labels).is_none() {
                    self.series.gauge(&obs.probe, m.gauge, &m.labels);
                }
                family.get_or_create(&m.labels).set(m.value);
            }
        }
        self.retire_gone_objects(obs);
    }

    pub fn decision(&self, rule: &str, decision: &'static str, reason: &str) {
        let labels = DecisionLabels {
            rule: rule.to_owned(),
            decision,
            reason: reason.to_owned(),
        };
        if self.remediation_decisions_total.get(&labels).is_none() {
            self.series.decision(&labels);
        }
        self.remediation_decisions_total
            .get_or_create(&labels)
            .inc();
    }

    pub fn action(&self, rule: &str, action: &str, result: &'static str) {
        let labels = ActionLabels {
            rule: rule.to_owned(),
            action: action.to_owned(),
            result,
        };
        if self.remediation_actions_total.get(&labels).is_none() {
            self.series.action(&labels);
        }
        self.remediation_actions_total.get_or_create(&labels).inc();
    }

    pub fn budget_remaining(&self, rule: &str, remaining: u32) {
        self.remediation_budget_remaining
            .get_or_create(&RuleLabels {
                rule: rule.to_owned(),
            })
            .set(i64::from(remaining));
    }

    /// The exposition in OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{Measurement, Outcome, ProbeKind};
    use std::sync::Arc;
    use std::time::Duration;

    /// Issue 14 #8: `increase(astreinte_config_reload_total{result="invalid"}[5m]) > 0` must see
    /// the first invalid edit, so the series exists at 0 before it.
    #[test]
    fn alerted_counters_exist_at_zero_from_the_start() {
        let text = Metrics::new().encode();
        for series in [
            "astreinte_config_reload_total{result=\"invalid\"} 0",
            "astreinte_config_reload_total{result=\"applied\"} 0",
            "astreinte_journal_writes_total{result=\"error\"} 0",
            "astreinte_journal_writes_total{result=\"conflict\"} 0",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
    }

    #[test]
    fn an_observation_shows_in_the_exposition() {
        let m = Metrics::new();
        m.observe(&Observation {
            probe: Arc::from("root-disk"),
            kind: ProbeKind::Disk,
            target: Arc::from("root-disk"),
            outcome: Outcome::degraded(0.75, "disk_usage_high"),
            detail: String::new(),
            latency: Duration::from_millis(3),
            at: jiff::Timestamp::UNIX_EPOCH,
            measurements: vec![Measurement::new(
                GaugeName::DiskUsedRatio,
                &[("probe", "root-disk")],
                0.75,
            )],
        });
        let text = m.encode();
        assert!(
            text.contains("probe_success{probe=\"root-disk\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("astreinte_probe_runs_total{probe=\"root-disk\",result=\"degraded\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("astreinte_disk_used_ratio{probe=\"root-disk\"} 0.75"),
            "{text}"
        );
        assert!(text.contains("astreinte_build_info{version="), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
