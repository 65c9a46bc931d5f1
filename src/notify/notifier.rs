//! The notifier: one task and one bounded queue per receiver, so a dead receiver delays only
//! itself and notices reach each receiver in order. [`Notifier::notify`] never waits: when a
//! queue is full the notice is dropped for that receiver, with a warning and
//! `astreinte_notifications_total{result="dropped"}`.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::send::post_with_retries;
use super::{
    Delivery, Error, Message, Notice, ReceiverConfig, ReceiverKind, alertmanager, render, slack,
    webhook,
};
use crate::config::IncidentSettings;
use crate::incident::Event;
use crate::metrics::{Metrics, NotifyLabels};

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

/// One receiver's task: delivers its queue in order until the notifier is dropped.
async fn deliver_all(
    cfg: Arc<ReceiverConfig>,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Arc<Queued>>,
    metrics: Arc<Metrics>,
    deliveries: Option<mpsc::Sender<Delivery>>,
) {
    while let Some(q) = rx.recv().await {
        let (path, body) = match cfg.kind {
            ReceiverKind::Webhook => ("", webhook::payload(&q.notice, &q.message)),
            ReceiverKind::Slack => ("", slack::payload(&q.message, cfg.blocks)),
            ReceiverKind::Alertmanager => (
                alertmanager::PATH,
                alertmanager::payload(&q.notice, &q.message),
            ),
        };
        let (result, attempts) = post_with_retries(&client, &cfg, path, &body).await;
        let inc = &q.notice.incident;
        let event = q.notice.kind.as_str();
        match &result {
            Ok(()) => {
                info!(receiver = %cfg.name, incident = %inc.id, event, attempts, "notification delivered");
                count(&metrics, &cfg.name, "delivered");
            }
            Err(e) => {
                warn!(receiver = %cfg.name, incident = %inc.id, event, attempts, error = %e, "notification failed");
                count(&metrics, &cfg.name, "failed");
            }
        }
        let Some(out) = &deliveries else { continue };
        let delivery = Delivery {
            incident_id: inc.id.clone(),
            key: inc.key.clone(),
            receiver: cfg.name.clone(),
            kind: q.notice.kind,
            ok: result.is_ok(),
            attempts,
            error: result.err().map(|e| e.to_string()),
        };
        if out.try_send(delivery).is_err() {
            debug!(receiver = %cfg.name, incident = %inc.id, "delivery report not taken (channel full or closed)");
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
