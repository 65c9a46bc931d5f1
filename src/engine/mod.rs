//! The engine: the one task that consumes observations in order and moves them through the
//! pipeline: metrics and status, scoring, incidents (and their journal), notifications.
//! Its decisions are taken by the pure modules (`score`, `incident`); it does the IO.

mod first_round;
mod leadership;
mod reconfigure;
mod remediate;
mod run;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::clock::Clock;
use crate::config::Config;
use crate::incident::Event;
use crate::journal::{Journal, Store, StoreError};
use crate::level::Level;
use crate::metrics::{LevelLabels, Metrics, ResultLabels, TargetLabels};
use crate::notify::{Delivery, Notifier};
use crate::postmortem;
use crate::probes::{Observation, Outcome};
use crate::remediation::{Remediator, TaskResult};
use crate::score::Scorer;
use crate::status::StatusBoard;

/// How often incidents are checked for the end of their green period and for breaches.
const TICK: Duration = Duration::from_secs(1);

pub struct Engine<S> {
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusBoard>,
    pub scorer: Scorer,
    pub journal: Journal<S>,
    /// Collects the first result of every probe, printed once as a table on stdout so whoever
    /// started the daemon sees real results at once.
    first_round: Option<first_round::FirstRound>,
    /// The probe ids of each incident key (group or target).
    keys: BTreeMap<String, Vec<String>>,
    /// Incident events for the notifier.
    events: Option<mpsc::Sender<Event>>,
    /// Incident notices to webhooks, Slack and Alertmanager, and their delivery reports.
    notifier: Option<(Notifier, mpsc::Receiver<Delivery>)>,
    /// New configurations (from the policy ConfigMap), applied between two observations.
    config_updates: Option<watch::Receiver<Arc<Config>>>,
    /// Where every observation is appended as a JSON line (`run --record`), for `simulate`.
    recorder: Option<std::io::LineWriter<std::fs::File>>,
    /// Rules, actions and their results (absent for a probe-only engine).
    remediation: Option<(Remediator, mpsc::Receiver<TaskResult>)>,
    /// Where the loop reads the time ([`crate::clock`]): stamps never follow a clock jump.
    clock: Clock,
    /// Beaten on every turn of the loop; `/readyz` reads its age.
    heartbeat: Option<Arc<crate::heartbeat::Heartbeat>>,
    /// Set while this replica took the lead but could not re-read the journal yet: every
    /// rule holds (`journal_unavailable`) until it has (`leadership`).
    takeover_problem: Option<String>,
    dirty: bool,
}

impl<S: Store> Engine<S> {
    pub fn new(
        config: Arc<Config>,
        metrics: Arc<Metrics>,
        status: Arc<StatusBoard>,
        journal: Journal<S>,
    ) -> Self {
        let keys = keys_of(&config);
        let expected = config.enabled_probes().count();
        let mut journal = journal;
        journal.set_limits(
            config.journal.max_bytes,
            crate::config::action_retention(&config),
        );
        let engine = Engine {
            keys,
            config,
            metrics,
            status,
            scorer: Scorer::default(),
            journal,
            first_round: Some(first_round::FirstRound::new(expected)),
            events: None,
            remediation: None,
            recorder: None,
            config_updates: None,
            notifier: None,
            clock: Clock::system(),
            heartbeat: None,
            takeover_problem: None,
            dirty: false,
        };
        engine.declare_targets();
        engine.publish();
        engine
    }

    /// Gives every target (incident key) its `astreinte_target_level` series from the start,
    /// at 0 until a result says otherwise: a target whose level never changed is still
    /// visible (`astreinte_target_level == 0` means ok, not "never seen"). An existing
    /// series keeps its value.
    fn declare_targets(&self) {
        for key in self.keys.keys() {
            // Created (at 0) if absent; the guard is released at once.
            drop(self.metrics.target_level.get_or_create(&TargetLabels {
                target: key.clone(),
            }));
        }
    }

    /// Sends incident events to `tx` (the notifier) as they happen.
    pub fn with_events(mut self, tx: mpsc::Sender<Event>) -> Self {
        self.events = Some(tx);
        self
    }

    /// Sends incident events to the receivers of `notifier`; `deliveries` reports each
    /// delivery, which goes on the incident's timeline.
    pub fn with_notifier(
        mut self,
        notifier: Notifier,
        deliveries: mpsc::Receiver<Delivery>,
    ) -> Self {
        self.notifier = Some((notifier, deliveries));
        self
    }

    /// Reads the time from `clock` (tests: a manual clock) instead of the system's.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Beats `heartbeat` on every turn of the loop (`/readyz`).
    pub fn with_heartbeat(mut self, heartbeat: Arc<crate::heartbeat::Heartbeat>) -> Self {
        self.heartbeat = Some(heartbeat);
        self
    }

    fn beat(&self) {
        if let Some(h) = &self.heartbeat {
            h.beat();
        }
    }

    /// Takes new configurations from `rx` as they come.
    pub fn with_config_updates(mut self, rx: watch::Receiver<Arc<Config>>) -> Self {
        self.config_updates = Some(rx);
        self
    }

    /// Appends every observation to `file` as a JSON line.
    pub fn with_recorder(mut self, file: std::fs::File) -> Self {
        self.recorder = Some(std::io::LineWriter::new(file));
        self
    }

    /// Enables remediation through `remediator` (whose results arrive on `results`).
    pub fn with_remediation(
        mut self,
        remediator: Remediator,
        results: mpsc::Receiver<TaskResult>,
    ) -> Self {
        // A replica that does not lead at the start serves the leader's incidents (as just
        // read); one that leads owns the ones it just read.
        if !remediator.is_leader() {
            self.journal.follow_incidents();
        }
        self.remediation = Some((remediator, results));
        self
    }

    /// Does not print the first-round table (tests, `--quiet`).
    pub fn without_table(mut self) -> Self {
        self.first_round = None;
        self
    }

    /// Handles one observation (its `at` is the time used for scoring and incidents).
    /// Returns whether the probe's level changed.
    pub fn handle(&mut self, obs: &Observation) -> bool {
        // A result of a probe a reload just removed (sent before its task stopped) would
        // bring its series back: dropped.
        if !self.config.probe(&obs.probe).is_some_and(|p| p.enabled) {
            debug!(probe = %obs.probe, "result of a probe no longer configured: dropped");
            return false;
        }
        self.metrics.observe(obs);
        if let Some(w) = &mut self.recorder {
            use std::io::Write as _;
            let written = serde_json::to_writer(&mut *w, obs)
                .map_err(std::io::Error::from)
                .and_then(|()| w.write_all(b"\n"));
            if let Err(e) = written {
                error!(error = %e, "cannot record observations; recording stopped");
                self.recorder = None;
            }
        }
        self.print_first_round(obs);
        let Some(probe) = self.config.probe(&obs.probe) else {
            return false;
        };
        let damping = self.config.damping(probe);
        let change = self
            .scorer
            .step(probe, &damping, self.config.interval(probe), obs);
        let (level, reason) = self
            .scorer
            .get(&probe.id)
            .map(|s| (s.level, s.reason.clone()))
            .unwrap_or((Level::Ok, "ok".into()));
        let previous = self.status.record(obs, level, &reason);
        log_observation(obs, previous);
        let key = probe.incident_key();
        if let Some(change) = &change {
            info!(
                probe = %change.probe, key = %change.key, from = %change.from, to = %change.to,
                reason = %change.reason, "level changed"
            );
        } else if !self.journal.incidents().open.contains_key(key) {
            // Nothing changed and no incident to keep up to date (the common, cheap case).
            return false;
        }
        // An open incident is reconciled with every result, so one carried over a restart
        // (when the scores start again from ok) still goes green and resolves.
        let probes_of_key = self.keys.get(key).map(Vec::as_slice).unwrap_or_default();
        let (key_level, key_reason) = self.scorer.key_level(probes_of_key);
        self.metrics
            .target_level
            .get_or_create(&TargetLabels {
                target: key.to_owned(),
            })
            .set(key_level.gauge_value());
        // The incidents are the leader's (`leadership`).
        if !self.leads() {
            return change.is_some();
        }
        let reason_before = self
            .journal
            .doc
            .incidents
            .open
            .get(key)
            .map(|i| i.reason.clone());
        let events = self.journal.doc.incidents.on_level(
            key,
            key_level,
            &key_reason,
            &obs.detail,
            obs.at,
            &self.config.incidents,
        );
        let green_started = self
            .journal
            .doc
            .incidents
            .open
            .get(key)
            .is_some_and(|i| i.green_since == Some(obs.at));
        let reason_changed = reason_before.is_some_and(|before| {
            self.journal
                .doc
                .incidents
                .open
                .get(key)
                .is_some_and(|i| i.reason != before)
        });
        if green_started || reason_changed {
            self.dirty = true;
        }
        self.apply(events);
        change.is_some()
    }

    /// Resolves incidents whose green period is over, marks breached ones.
    pub fn tick(&mut self, now: jiff::Timestamp) {
        if !self.leads() {
            return;
        }
        let events = self.journal.doc.incidents.tick(now, &self.config.incidents);
        self.apply(events);
    }

    fn apply(&mut self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        self.dirty = true;
        for event in events {
            match &event {
                Event::Opened(i) => {
                    warn!(incident = %i.id, level = %i.level, reason = %i.reason, "incident opened")
                }
                Event::Escalated { incident, from } => {
                    warn!(incident = %incident.id, from = %from, to = %incident.level, reason = %incident.reason, "incident escalated")
                }
                Event::Breached(i) => {
                    warn!(incident = %i.id, level = %i.peak, "incident past its response target")
                }
                Event::Resolved(i) => {
                    info!(incident = %i.id, minutes = i.duration(self.clock.now()).as_secs() / 60, "incident resolved");
                    // Its reversible actions are undone from the next round (`undos_due`).
                    self.write_postmortem(&i.id);
                }
                Event::Paged { text, .. } => warn!(page = %text, "paging the on-call"),
            }
            // One set of notices per incident: the leader's (`leadership`).
            if !self.leads() && !leadership::sent_by_follower(&event) {
                debug!(?event, "not the leader: the leader sends this notice");
                continue;
            }
            if let Some((notifier, _)) = &self.notifier {
                notifier.notify(&event, self.clock.now());
            }
            if let Some(tx) = &self.events
                && tx.try_send(event).is_err()
            {
                warn!("notification queue full: an incident event was not sent");
            }
        }
        self.dirty = true;
        self.publish();
    }

    fn write_postmortem(&mut self, id: &str) {
        let actions: Vec<_> = self
            .journal
            .doc
            .actions
            .iter()
            .filter(|a| a.incident.as_deref() == Some(id))
            .cloned()
            .collect();
        let tz = self
            .config
            .policy
            .timezone
            .as_deref()
            .and_then(|n| jiff::tz::TimeZone::get(n).ok())
            .unwrap_or(jiff::tz::TimeZone::UTC);
        if let Some(inc) = self.journal.doc.incidents.recent_mut(id) {
            inc.postmortem = Some(postmortem::draft(inc, &actions, &tz));
        }
    }

    /// Updates the status board and the incident gauges.
    fn publish(&self) {
        let incidents = self.journal.incidents();
        self.status.set_incidents(incidents);
        let by_level = incidents.open_by_level();
        for level in [Level::P1, Level::P2, Level::P3, Level::P4] {
            let n = by_level.get(&level).copied().unwrap_or(0);
            self.metrics
                .incidents_open
                .get_or_create(&LevelLabels {
                    level: level.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// Saves the journal if something changed. A failed write is loud (log + metric).
    pub async fn persist(&mut self) {
        // While the store is backed off from (it did not answer), the change waits.
        if !self.dirty || self.journal.backing_off() {
            return;
        }
        let result = match self.journal.save().await {
            Ok(()) => {
                self.dirty = false;
                "ok"
            }
            // Another replica wrote first and the merged retry lost again: an ordinary race
            // between replicas, written at the next save; not a write error.
            Err(e @ StoreError::Conflict { .. }) => {
                warn!(error = %e, "the journal changed under this replica twice: saved at the next change");
                "conflict"
            }
            Err(e) => {
                error!(error = %e, "cannot write the journal");
                "error"
            }
        };
        self.count_write(result);
    }

    fn count_write(&self, result: &'static str) {
        self.metrics
            .journal_writes_total
            .get_or_create(&ResultLabels { result })
            .inc();
        let bytes = i64::try_from(self.journal.written_bytes()).unwrap_or(i64::MAX);
        self.metrics.journal_bytes.set(bytes);
    }

    fn print_first_round(&mut self, obs: &Observation) {
        let Some(round) = &mut self.first_round else {
            return;
        };
        if let Some(text) = round.add(&self.config, obs) {
            println!("{text}");
            self.first_round = None;
        }
    }
}

/// The probe ids of each incident key (group or target).
fn keys_of(config: &Config) -> BTreeMap<String, Vec<String>> {
    let mut keys: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in config.enabled_probes() {
        keys.entry(p.incident_key().to_owned())
            .or_default()
            .push(p.id.clone());
    }
    keys
}

/// Changes of outcome are logged at info (warn when worse); steady results at debug.
fn log_observation(obs: &Observation, previous: Option<&'static str>) {
    let now = obs.outcome.result_label();
    let latency_ms = obs.latency.as_secs_f64() * 1000.0;
    if previous == Some(now) {
        debug!(probe = %obs.probe, outcome = now, reason = obs.outcome.reason(), latency_ms, "probe result");
        return;
    }
    match obs.outcome {
        Outcome::Healthy => info!(
            probe = %obs.probe, probe_target = %obs.target, outcome = now, was = previous.unwrap_or("none"),
            detail = %obs.detail, latency_ms, "probe healthy"
        ),
        _ => warn!(
            probe = %obs.probe, probe_target = %obs.target, outcome = now, reason = obs.outcome.reason(),
            was = previous.unwrap_or("none"), detail = %obs.detail, latency_ms, "probe not healthy"
        ),
    }
}
