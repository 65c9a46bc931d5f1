//! Series labelled by a cluster object (today `astreinte_node_ready{node}`) end when the object
//! goes. A node probe's observation that saw the cluster (it carries measurements, or found no
//! node at all: `no_nodes`) lists every node it watches; a series of that probe for a node it
//! no longer lists is removed, unless another probe still sets it. An observation that could
//! not see (an API outage: no measurements) leaves the series as they are.

use std::collections::HashSet;

use super::{GaugeName, Metrics};
use crate::probes::{Observation, ProbeKind};

/// The gauges whose labels name cluster objects.
const CLUSTER_LABELLED: [GaugeName; 1] = [GaugeName::NodeReady];

impl Metrics {
    /// Removes the series of cluster objects `obs` (a node probe's result) no longer lists.
    /// Called after its measurements were recorded (and indexed).
    pub(super) fn retire_gone_objects(&self, obs: &Observation) {
        if obs.kind != ProbeKind::Node
            || (obs.measurements.is_empty() && obs.outcome.reason() != "no_nodes")
        {
            return;
        }
        let listed: HashSet<(GaugeName, &[(String, String)])> = obs
            .measurements
            .iter()
            .filter(|m| CLUSTER_LABELLED.contains(&m.gauge))
            .map(|m| (m.gauge, m.labels.as_slice()))
            .collect();
        let gone = self.series.with(|i| {
            let Some(mine) = i.gauges.get_mut(&*obs.probe) else {
                return vec![];
            };
            let gone: Vec<_> = mine
                .iter()
                .filter(|(g, l)| {
                    CLUSTER_LABELLED.contains(g) && !listed.contains(&(*g, l.as_slice()))
                })
                .cloned()
                .collect();
            for s in &gone {
                mine.remove(s);
            }
            let probe: &str = &obs.probe;
            gone.into_iter()
                .filter(|s| {
                    !i.gauges
                        .iter()
                        .any(|(p, set)| p != probe && set.contains(s))
                })
                .collect()
        });
        for (gauge, labels) in gone {
            if let Some(family) = self.gauges.get(&gauge) {
                family.remove(&labels);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::probes::{Measurement, Outcome};

    fn nodes(probe: &str, names: &[&str], outcome: Outcome) -> Observation {
        Observation {
            probe: Arc::from(probe),
            kind: ProbeKind::Node,
            target: Arc::from(probe),
            outcome,
            detail: String::new(),
            latency: Duration::from_millis(1),
            at: jiff::Timestamp::UNIX_EPOCH,
            measurements: names
                .iter()
                .map(|n| Measurement::new(GaugeName::NodeReady, &[("node", n)], 1.0))
                .collect(),
        }
    }

    #[test]
    fn a_node_that_goes_loses_its_series_and_an_outage_keeps_them() {
        let m = Metrics::new();
        m.observe(&nodes("nodes", &["a", "b"], Outcome::Healthy));
        let text = m.encode();
        assert!(
            text.contains("astreinte_node_ready{node=\"b\"} 1"),
            "{text}"
        );
        m.observe(&nodes("nodes", &["a"], Outcome::Healthy));
        let text = m.encode();
        assert!(
            text.contains("astreinte_node_ready{node=\"a\"} 1"),
            "{text}"
        );
        assert!(!text.contains("node=\"b\""), "{text}");
        // The API did not answer: nothing is known, nothing is removed.
        m.observe(&nodes("nodes", &[], Outcome::unknown("api_unreachable")));
        assert!(m.encode().contains("node=\"a\""));
        // The last node is gone.
        m.observe(&nodes("nodes", &[], Outcome::unknown("no_nodes")));
        assert!(!m.encode().contains("astreinte_node_ready{"));
    }
}
