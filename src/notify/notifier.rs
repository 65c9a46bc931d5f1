//! The notifier: one task and one bounded queue per receiver, so a dead receiver delays only
//! itself and notices reach each receiver in order. [`Notifier::notify`] never waits: when a
//! queue is full the notice is dropped for that receiver, with a warning and
//! `astreinte_notifications_total{result="dropped"}`. Other results: `delivered`, `failed`,
//! and for Alertmanager's periodic resends of open incidents, `resent` and `resend_failed`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::MissedTickBehavior;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::send::post_with_retries;
use super::{
    Delivery, Error, Message, Notice, NoticeKind, ReceiverConfig, ReceiverKind, alertmanager,
    render, slack, webhook,
};
use crate::config::IncidentSettings;
use crate::incident::Event;
use crate::metrics::{Metrics, NotifyLabels};

/// `tokio::time::interval` refuses a zero period (resend is off then anyway).
const MIN_RESEND: Duration = Duration::from_millis(100);

/// A rendered notice, shared by every receiver's queue.
struct Queued {
    notice: Notice,
    message: Message,
}

/// One receiver's end of the notifier.
struct Lane {
    config: Arc<ReceiverConfig>,
    queue: mpsc::Sender<Arc<Queued>>,
}

/// Hands incident events to every receiver. Dropping it lets each receiver's task finish its
/// queue and stop.
pub struct Notifier {
    lanes: Vec<Lane>,
    settings: IncidentSettings,
    metrics: Arc<Metrics>,
}

impl Notifier {
    /// Spawns one task per enabled receiver on `tracker`. Each delivery outcome is also sent
    /// to `deliveries` (if given) for the incident timeline; when that channel is full the
    /// outcome is only logged, never waited for.
    pub fn spawn(
        receivers: &[ReceiverConfig],
        settings: IncidentSettings,
        metrics: Arc<Metrics>,
        deliveries: Option<mpsc::Sender<Delivery>>,
        tracker: &TaskTracker,
    ) -> Result<Notifier, Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("astreinte/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Client)?;
        let mut lanes = vec![];
        for cfg in receivers.iter().filter(|r| r.enabled) {
            let config = Arc::new(cfg.clone());
            let (queue, rx) = mpsc::channel(cfg.queue_size.max(1));
            tracker.spawn(deliver_all(
                config.clone(),
                client.clone(),
                rx,
                metrics.clone(),
                deliveries.clone(),
            ));
            lanes.push(Lane { config, queue });
        }
        Ok(Notifier {
            lanes,
            settings,
            metrics,
        })
    }

    /// Renders later notices with `settings` (after a reload: response targets, green period).
    pub fn set_settings(&mut self, settings: IncidentSettings) {
        self.settings = settings;
    }

    /// Queues `event` (which happened at `at`) for every receiver whose `min_level` it
    /// reaches. Never blocks; returns how many receivers it was queued for.
    pub fn notify(&self, event: &Event, at: jiff::Timestamp) -> usize {
        self.notify_notice(Notice::new(event, at))
    }

    /// [`Notifier::notify`] for a notice built by the caller.
    pub fn notify_notice(&self, notice: Notice) -> usize {
        let message = render(&notice, &self.settings);
        let queued = Arc::new(Queued { notice, message });
        let level = queued.notice.level();
        let mut sent = 0;
        for lane in &self.lanes {
            let name = &lane.config.name;
            if level < lane.config.min_level {
                debug!(receiver = %name, incident = %queued.notice.incident.id, %level, "below the receiver's min_level, not sent");
                continue;
            }
            match lane.queue.try_send(queued.clone()) {
                Ok(()) => sent += 1,
                Err(e) => {
                    let why = match e {
                        TrySendError::Full(_) => "queue full",
                        TrySendError::Closed(_) => "receiver task stopped",
                    };
                    warn!(receiver = %name, incident = %queued.notice.incident.id,
                        event = queued.notice.kind.as_str(), why, "notification dropped");
                    count(&self.metrics, name, "dropped");
                }
            }
        }
        sent
    }

    /// The names of the receivers it sends to.
    pub fn receivers(&self) -> impl Iterator<Item = &str> {
        self.lanes.iter().map(|l| l.config.name.as_str())
    }
}

/// One receiver's task: delivers its queue in order until the notifier is dropped, and for
/// Alertmanager sends the alerts of open incidents again every `resend`.
async fn deliver_all(
    cfg: Arc<ReceiverConfig>,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Arc<Queued>>,
    metrics: Arc<Metrics>,
    deliveries: Option<mpsc::Sender<Delivery>>,
) {
    let resend = cfg.kind == ReceiverKind::Alertmanager && !cfg.resend.is_zero();
    // The last notice of each open incident, by id.
    let mut firing: BTreeMap<String, Arc<Queued>> = BTreeMap::new();
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + cfg.resend,
        cfg.resend.max(MIN_RESEND),
    );
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            next = rx.recv() => {
                let Some(q) = next else { break };
                if resend {
                    match q.notice.kind {
                        NoticeKind::Resolved => {
                            firing.remove(&q.notice.incident.id);
                        }
                        // A page is one notice; it does not replace the incident's alert.
                        NoticeKind::Paged => {}
                        _ => {
                            firing.insert(q.notice.incident.id.clone(), q.clone());
                        }
                    }
                }
                let delivery = deliver_one(&cfg, &client, &q, &metrics).await;
                if let Some(out) = &deliveries
                    && out.try_send(delivery).is_err()
                {
                    debug!(receiver = %cfg.name, incident = %q.notice.incident.id,
                        "delivery report not taken (channel full or closed)");
                }
            }
            _ = ticker.tick(), if resend && !firing.is_empty() => {
                for q in firing.values() {
                    resend_firing(&cfg, &client, q, &metrics).await;
                }
            }
        }
    }
}

/// Sends one notice with retries; logs and counts the outcome.
async fn deliver_one(
    cfg: &ReceiverConfig,
    client: &reqwest::Client,
    q: &Queued,
    metrics: &Metrics,
) -> Delivery {
    let (path, body) = match cfg.kind {
        ReceiverKind::Webhook => ("", webhook::payload(&q.notice, &q.message)),
        ReceiverKind::Slack => ("", slack::payload(&q.message, cfg.blocks)),
        ReceiverKind::Alertmanager => (
            alertmanager::PATH,
            alertmanager::payload(&q.notice, &q.message),
        ),
    };
    let (result, attempts) = post_with_retries(client, cfg, path, &body, cfg.retries).await;
    let inc = &q.notice.incident;
    let event = q.notice.kind.as_str();
    match &result {
        Ok(()) => {
            info!(receiver = %cfg.name, incident = %inc.id, event, attempts, "notification delivered");
            count(metrics, &cfg.name, "delivered");
        }
        Err(e) => {
            warn!(receiver = %cfg.name, incident = %inc.id, event, attempts, error = %e, "notification failed");
            count(metrics, &cfg.name, "failed");
        }
    }
    Delivery {
        incident_id: inc.id.clone(),
        key: inc.key.clone(),
        receiver: cfg.name.clone(),
        kind: q.notice.kind,
        ok: result.is_ok(),
        attempts,
        error: result.err().map(|e| e.to_string()),
    }
}

/// One attempt, no retry: the next resend comes soon anyway.
async fn resend_firing(
    cfg: &ReceiverConfig,
    client: &reqwest::Client,
    q: &Queued,
    metrics: &Metrics,
) {
    let body = alertmanager::firing(&q.notice, &q.message);
    let (result, _) = post_with_retries(client, cfg, alertmanager::PATH, &body, 0).await;
    match result {
        Ok(()) => {
            debug!(receiver = %cfg.name, incident = %q.notice.incident.id, "firing alert sent again");
            count(metrics, &cfg.name, "resent");
        }
        Err(e) => {
            warn!(receiver = %cfg.name, incident = %q.notice.incident.id, error = %e, "cannot send the firing alert again");
            count(metrics, &cfg.name, "resend_failed");
        }
    }
}

fn count(metrics: &Metrics, receiver: &str, result: &'static str) {
    metrics
        .notifications_total
        .get_or_create(&NotifyLabels {
            receiver: receiver.to_owned(),
            result,
        })
        .inc();
}
