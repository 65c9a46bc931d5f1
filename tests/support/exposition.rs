//! Metric names on both sides: the sample names an exposition allows (from its `# TYPE`
//! lines), a registry with every family filled, and the metric names a PromQL expression reads.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use astreinte::metrics::{
    GaugeName, LevelLabels, Metrics, NotifyLabels, ResultLabels, RuleLabels, TargetLabels,
};
use astreinte::probes::{Measurement, Observation, Outcome, ProbeKind};

/// Families announced by `# TYPE name type` lines, as `(name, type)`.
pub fn families(exposition: &str) -> BTreeSet<(String, String)> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| {
            let (name, kind) = l.split_once(' ')?;
            Some((name.to_owned(), kind.trim().to_owned()))
        })
        .collect()
}

/// The sample names Prometheus stores for these families (OpenMetrics: a counter `x` is
/// sampled as `x_total`, a histogram as `x_bucket`, `x_sum`, `x_count`).
pub fn sample_names(exposition: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (name, kind) in families(exposition) {
        match kind.as_str() {
            "counter" => {
                out.insert(format!("{name}_total"));
            }
            "histogram" => {
                for suffix in ["_bucket", "_sum", "_count"] {
                    out.insert(format!("{name}{suffix}"));
                }
            }
            "info" => {
                out.insert(format!("{name}_info"));
            }
            _ => {
                out.insert(name);
            }
        }
    }
    out
}

/// A registry in which every family has a sample, so that each shows in the exposition
/// (prometheus-client leaves empty families out).
pub fn populated() -> Metrics {
    let m = Metrics::new();
    m.observe(&Observation {
        probe: Arc::from("p"),
        kind: ProbeKind::Disk,
        target: Arc::from("t"),
        outcome: Outcome::degraded(0.75, "disk_usage_high"),
        detail: String::new(),
        latency: Duration::from_millis(3),
        at: jiff::Timestamp::UNIX_EPOCH,
        // Per-kind gauges get their labels from the probe code (`probe`, or `instance` for
        // Redis members); none here, so only their names are checked from this registry.
        measurements: GaugeName::ALL
            .iter()
            .map(|&g| Measurement::new(g, &[], 1.0))
            .collect(),
    });
    m.schedule_lateness_seconds.observe(0.001);
    for result in ["applied", "invalid"] {
        m.config_reload_total
            .get_or_create(&ResultLabels { result })
            .inc();
    }
    m.target_level
        .get_or_create(&TargetLabels { target: "t".into() })
        .set(1);
    m.incidents_open
        .get_or_create(&LevelLabels { level: "P4" })
        .set(1);
    m.journal_writes_total
        .get_or_create(&ResultLabels { result: "ok" })
        .inc();
    m.decision("r", "dry_run", "ok");
    m.action("r", "scale", "rehearsed");
    m.budget_remaining("r", 1);
    m.remediation_budget_remaining
        .get_or_create(&RuleLabels { rule: "q".into() })
        .set(0);
    m.leader.set(1);
    m.notifications_total
        .get_or_create(&NotifyLabels {
            receiver: "hook".into(),
            result: "delivered",
        })
        .inc();
    m
}

const KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
];

/// The metric names a PromQL expression reads: string literals, label matchers, ranges and
/// grouping clauses are cut out; what remains is functions (followed by `(`), keywords,
/// numbers and metric names.
pub fn promql_metric_names(expr: &str) -> BTreeSet<String> {
    let cut = |re: &str, s: &str| {
        regex::Regex::new(re)
            .unwrap()
            .replace_all(s, " ")
            .into_owned()
    };
    let s = cut(r#""(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`"#, expr);
    let s = cut(r"\{[^}]*\}", &s);
    let s = cut(r"\[[^\]]*\]", &s);
    let s = cut(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)",
        &s,
    );
    let ident = regex::Regex::new(r"[A-Za-z_:][A-Za-z0-9_:]*").unwrap();
    let mut out = BTreeSet::new();
    for m in ident.find_iter(&s) {
        let before = s[..m.start()].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_digit() || c == '.' || c == '$') {
            continue; // part of a number (1e3) or a Grafana variable
        }
        let is_call = s[m.end()..].trim_start().starts_with('(');
        let word = m.as_str();
        if !is_call && !KEYWORDS.contains(&word.to_ascii_lowercase().as_str()) {
            out.insert(word.to_owned());
        }
    }
    out
}
