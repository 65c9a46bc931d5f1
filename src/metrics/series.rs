//! Ending the series of what a reload removed. `prometheus-client` families cannot be listed,
//! so the label sets that carry a probe or rule id beside free labels (a member, a reason, an
//! action) are indexed as they are created; [`Metrics::forget`] then removes every series of
//! the probes, targets and rules a new configuration no longer has. A removed counter ends
//! too (Prometheus client practice: the series stops, `rate()` copes).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use super::{
    ActionLabels, DecisionLabels, GaugeName, Metrics, ProbeLabels, RuleLabels, RunLabels,
    TargetLabels,
};

/// Every `result` label of `astreinte_probe_runs_total` ([`crate::probes::Outcome`]).
const RUN_RESULTS: [&str; 4] = ["healthy", "degraded", "failed", "unknown"];

/// What a new configuration no longer has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// Probe ids (removed or disabled).
    pub probes: BTreeSet<String>,
    /// Incident keys (targets or groups) no enabled probe names anymore.
    pub targets: BTreeSet<String>,
    /// Rule ids.
    pub rules: BTreeSet<String>,
}

impl Removed {
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty() && self.targets.is_empty() && self.rules.is_empty()
    }
}

/// Whether `labels` is `probe = <probe>` alone: such a series is not indexed, since
/// [`Metrics::forget`] can name it from the probe id.
pub(super) fn probe_only(probe: &str, labels: &[(String, String)]) -> bool {
    matches!(labels, [(k, v)] if k == "probe" && v == probe)
}

/// One per-kind gauge series: the gauge and its label set.
type GaugeSeries = (GaugeName, Vec<(String, String)>);

/// The label sets created per probe (per-kind gauges) and per rule (decisions, actions).
#[derive(Default)]
pub struct SeriesIndex {
    pub(super) gauges: HashMap<String, HashSet<GaugeSeries>>,
    decisions: HashMap<String, HashSet<DecisionLabels>>,
    actions: HashMap<String, HashSet<ActionLabels>>,
}

/// The index behind a lock that a panic elsewhere cannot make unusable.
#[derive(Default)]
pub struct SharedIndex(Mutex<SeriesIndex>);

impl SharedIndex {
    pub(super) fn with<T>(&self, f: impl FnOnce(&mut SeriesIndex) -> T) -> T {
        let mut index = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut index)
    }

    pub(super) fn gauge(&self, probe: &str, gauge: GaugeName, labels: &[(String, String)]) {
        self.with(|i| {
            i.gauges
                .entry(probe.to_owned())
                .or_default()
                .insert((gauge, labels.to_vec()));
        });
    }

    pub(super) fn decision(&self, labels: &DecisionLabels) {
        self.with(|i| {
            i.decisions
                .entry(labels.rule.clone())
                .or_default()
                .insert(labels.clone());
        });
    }

    pub(super) fn action(&self, labels: &ActionLabels) {
        self.with(|i| {
            i.actions
                .entry(labels.rule.clone())
                .or_default()
                .insert(labels.clone());
        });
    }
}

impl Metrics {
    /// Removes every series of the probes, targets and rules in `removed`.
    pub fn forget(&self, removed: &Removed) {
        let (gauges, decisions, actions) = self.series.with(|i| {
            let gauges: Vec<_> = removed
                .probes
                .iter()
                .filter_map(|p| i.gauges.remove(p))
                .flatten()
                .collect();
            let decisions: Vec<_> = removed
                .rules
                .iter()
                .filter_map(|r| i.decisions.remove(r))
                .flatten()
                .collect();
            let actions: Vec<_> = removed
                .rules
                .iter()
                .filter_map(|r| i.actions.remove(r))
                .flatten()
                .collect();
            (gauges, decisions, actions)
        });
        for probe in &removed.probes {
            let labels = ProbeLabels {
                probe: probe.as_str().into(),
            };
            self.probe_success.remove(&labels);
            self.probe_duration_seconds.remove(&labels);
            let probe_only = vec![("probe".to_owned(), probe.clone())];
            for family in self.gauges.values() {
                family.remove(&probe_only);
            }
            for result in RUN_RESULTS {
                self.probe_runs_total.remove(&RunLabels {
                    probe: probe.as_str().into(),
                    result,
                });
            }
        }
        for (gauge, labels) in gauges {
            if let Some(family) = self.gauges.get(&gauge) {
                family.remove(&labels);
            }
        }
        for target in &removed.targets {
            self.target_level.remove(&TargetLabels {
                target: target.clone(),
            });
        }
        for rule in &removed.rules {
            self.remediation_budget_remaining
                .remove(&RuleLabels { rule: rule.clone() });
        }
        for labels in decisions {
            self.remediation_decisions_total.remove(&labels);
        }
        for labels in actions {
            self.remediation_actions_total.remove(&labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::probes::{Measurement, Observation, Outcome, ProbeKind};

    fn observation(probe: &str, member: &str) -> Observation {
        Observation {
            probe: Arc::from(probe),
            kind: ProbeKind::Http,
            target: Arc::from(probe),
            outcome: Outcome::failed("connection_refused"),
            detail: String::new(),
            latency: Duration::from_millis(3),
            at: jiff::Timestamp::UNIX_EPOCH,
            measurements: vec![Measurement::new(
                GaugeName::PatroniLagBytes,
                &[("probe", probe), ("member", member)],
                1.0,
            )],
        }
    }

    #[test]
    fn forgetting_ends_every_series_of_the_removed_and_keeps_the_others() {
        let m = Metrics::new();
        for (probe, member) in [("keep", "a"), ("gone", "a"), ("gone", "b")] {
            m.observe(&observation(probe, member));
        }
        m.observe(&Observation {
            outcome: Outcome::Healthy,
            ..observation("gone", "b")
        });
        for rule in ["keep-rule", "gone-rule"] {
            m.decision(rule, "hold", "cooldown");
            m.action(rule, "restart", "succeeded");
            m.budget_remaining(rule, 1);
        }
        for target in ["keep", "gone"] {
            m.target_level
                .get_or_create(&TargetLabels {
                    target: target.to_owned(),
                })
                .set(2);
        }
        m.forget(&Removed {
            probes: ["gone".to_owned()].into(),
            targets: ["gone".to_owned()].into(),
            rules: ["gone-rule".to_owned()].into(),
        });
        let text = m.encode();
        assert!(!text.contains("gone"), "{text}");
        for kept in [
            "probe_success{probe=\"keep\"} 0",
            "astreinte_probe_runs_total{probe=\"keep\",result=\"failed\"} 1",
            "astreinte_patroni_lag_bytes{probe=\"keep\",member=\"a\"} 1",
            "astreinte_target_level{target=\"keep\"} 2",
            "astreinte_remediation_decisions_total{rule=\"keep-rule\"",
            "astreinte_remediation_actions_total{rule=\"keep-rule\"",
            "astreinte_remediation_budget_remaining{rule=\"keep-rule\"} 1",
        ] {
            assert!(text.contains(kept), "{kept}: {text}");
        }
    }

    #[test]
    fn a_series_labelled_by_the_probe_alone_is_not_indexed_and_still_ends() {
        let m = Metrics::new();
        for probe in ["keep", "gone"] {
            m.observe(&Observation {
                measurements: vec![Measurement::new(
                    GaugeName::HttpStatusCode,
                    &[("probe", probe)],
                    200.0,
                )],
                ..observation(probe, "unused")
            });
        }
        assert!(m.series.with(|i| i.gauges.is_empty()));
        m.forget(&Removed {
            probes: ["gone".to_owned()].into(),
            ..Removed::default()
        });
        let text = m.encode();
        assert!(!text.contains("gone"), "{text}");
        assert!(
            text.contains("astreinte_http_status_code{probe=\"keep\"} 200"),
            "{text}"
        );
    }
}
