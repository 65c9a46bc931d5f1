//! `astreinte simulate`: replays a recorded series of observations (JSON lines, as written by
//! `astreinte run --record FILE`) through the real scoring, incident and policy code, with the
//! recorded times, and prints every decision. Nothing is probed and nothing is acted on, so an
//! operator can rehearse a new rule against last night before enabling it.

use std::io::BufRead;
use std::sync::Arc;

use tokio::sync::watch;

use crate::actuators::Actuators;
use crate::config::{Config, Mode};
use crate::engine::Engine;
use crate::journal::{ActionResult, Journal, MemoryStore};
use crate::metrics::Metrics;
use crate::probes::{Observation, Prober};
use crate::remediation::Remediator;
use crate::status::StatusBoard;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("line {line}: not an observation: {source}")]
    Parse {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read the recording: {0}")]
    Read(#[from] std::io::Error),
    #[error("{0}")]
    Setup(String),
}

/// Reads JSON lines of observations, in time order.
pub fn read(input: impl BufRead) -> Result<Vec<Observation>, Error> {
    let mut out: Vec<Observation> = vec![];
    for (i, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|source| Error::Parse {
            line: i + 1,
            source,
        })?);
    }
    out.sort_by_key(|o| o.at);
    Ok(out)
}

/// Replays `observations`; returns one line per decision change, incident event and
/// rehearsed action. With `as_configured == false` every rule is judged as if enforced.
pub async fn replay(
    config: &Config,
    observations: &[Observation],
    as_configured: bool,
) -> Result<Vec<String>, Error> {
    let mut config = config.clone();
    if !as_configured {
        config.policy.mode = Mode::Enforce;
        for r in &mut config.rules {
            r.mode = None;
        }
    }
    let config = Arc::new(config);
    let start = observations
        .first()
        .map_or(jiff::Timestamp::UNIX_EPOCH, |o| o.at);
    let journal = Journal::open(MemoryStore::default(), start).await;
    let (_leader_tx, leader) = watch::channel(true);
    let actuators = Actuators::new().map_err(|e| Error::Setup(e.to_string()))?;
    let prober = Prober::new().map_err(|e| Error::Setup(e.to_string()))?;
    let (remediator, results) = Remediator::new(actuators, prober, leader);
    let (events_tx, mut events) = tokio::sync::mpsc::channel(1024);
    let mut engine = Engine::new(
        config.clone(),
        Arc::new(Metrics::new()),
        Arc::new(StatusBoard::default()),
        journal,
    )
    .with_events(events_tx)
    .with_remediation(remediator, results)
    .without_table();
    let mut lines = vec![];
    let mut last_lines: std::collections::BTreeMap<String, String> = Default::default();
    for obs in observations {
        engine.handle(obs);
        engine.tick(obs.at);
        let started = engine.remediate_without_running(obs.at);
        for d in engine.decisions() {
            if last_lines.get(&d.rule) != Some(&d.line) {
                lines.push(format!("{} {}", d.at, d.line));
                last_lines.insert(d.rule.clone(), d.line.clone());
            }
        }
        for id in started {
            if let Some(a) = engine.journal.doc.actions.iter_mut().find(|a| a.id == id) {
                a.result = ActionResult::Rehearsed;
                a.ended_at = Some(obs.at);
                lines.push(format!(
                    "{} would act: {} (rule {})",
                    obs.at, a.detail, a.rule
                ));
            }
        }
        while let Ok(e) = events.try_recv() {
            lines.push(format!("{} {}", obs.at, describe(&e)));
        }
    }
    Ok(lines)
}

fn describe(e: &crate::incident::Event) -> String {
    use crate::incident::Event;
    match e {
        Event::Opened(i) => format!("incident {} opened at {}: {}", i.id, i.level, i.reason),
        Event::Escalated { incident, from } => {
            format!(
                "incident {} escalated {from} → {}",
                incident.id, incident.level
            )
        }
        Event::Breached(i) => format!("incident {} breached its {} response target", i.id, i.peak),
        Event::Resolved(i) => format!("incident {} resolved", i.id),
        Event::Paged { text, .. } => format!("page: {text}"),
    }
}
