//! A new configuration reaches the engine: what it no longer has (probes, their targets,
//! rules) is forgotten everywhere (scores, `/status`, last decisions, metric series), and an
//! open incident no configured probe watches anymore is resolved, saying why.

use std::collections::BTreeSet;
use std::sync::Arc;

use tracing::{info, warn};

use super::{Engine, keys_of};
use crate::config::Config;
use crate::incident::{Event, REMOVED_FROM_CONFIG};
use crate::journal::Store;
use crate::metrics::Removed;

impl<S: Store> Engine<S> {
    /// Switches to a new configuration. What it no longer has (probes, including disabled
    /// ones, their targets, rules) is forgotten everywhere: scores, `/status`, last decisions,
    /// and every metric series. An open incident of a removed target is resolved at once with
    /// "target removed from configuration" ([`Engine::resolve_unwatched`]); its actions are
    /// not undone. Other open incidents and the journal stay.
    pub fn set_config(&mut self, config: Arc<Config>) {
        let removed = removed_by(&self.config, &config);
        if !removed.is_empty() {
            info!(
                probes = ?removed.probes, targets = ?removed.targets, rules = ?removed.rules,
                "removed from the configuration: their series end"
            );
        }
        self.keys = keys_of(&config);
        self.declare_targets();
        self.journal.set_limits(
            config.journal.max_bytes,
            crate::config::action_retention(&config),
        );
        self.scorer.retain(&config);
        let ids: Vec<&str> = config.enabled_probes().map(|p| p.id.as_str()).collect();
        self.status.retain(&ids);
        if let Some((remediator, _)) = &mut self.remediation {
            remediator
                .last
                .retain(|rule, _| !removed.rules.contains(rule));
            self.status
                .set_decisions(remediator.last.values().cloned().collect());
        }
        self.metrics.forget(&removed);
        // `[incidents]` applies live, to the texts of notices too (receivers do not).
        if let Some((notifier, _)) = &mut self.notifier {
            notifier.set_settings(config.incidents.clone());
        }
        self.config = config;
        self.first_round = None;
        self.resolve_unwatched();
        self.publish();
    }

    /// Resolves every open incident whose key (target or group) no enabled probe has: after
    /// a reload, or at start-up for one read back from the journal of an older configuration.
    /// Left open, it could never go green.
    pub fn resolve_unwatched(&mut self) {
        // A follower leaves them to the leader, which resolves them the same way.
        if !self.leads() {
            return;
        }
        let now = self.clock.now();
        let unwatched: Vec<String> = (self.journal.doc.incidents.open.keys())
            .filter(|key| !self.keys.contains_key(*key))
            .cloned()
            .collect();
        let events: Vec<Event> = unwatched
            .iter()
            .filter_map(|key| {
                self.journal
                    .doc
                    .incidents
                    .resolve_removed(key, now, &self.config.incidents)
            })
            .collect();
        for key in &unwatched {
            warn!(key = %key, "open incident resolved: {}", REMOVED_FROM_CONFIG);
        }
        self.apply(events);
    }
}

/// What `new` no longer has of `old`: enabled probes, incident keys, rules.
fn removed_by(old: &Config, new: &Config) -> Removed {
    let probes =
        |c: &Config| -> BTreeSet<String> { c.enabled_probes().map(|p| p.id.clone()).collect() };
    let targets = |c: &Config| -> BTreeSet<String> { keys_of(c).into_keys().collect() };
    let rules = |c: &Config| -> BTreeSet<String> { c.rules.iter().map(|r| r.id.clone()).collect() };
    Removed {
        probes: probes(old).difference(&probes(new)).cloned().collect(),
        targets: targets(old).difference(&targets(new)).cloned().collect(),
        rules: rules(old).difference(&rules(new)).cloned().collect(),
    }
}
