//! The notifier under test: receivers with short retry timings, and the channel of delivery
//! reports and the metrics to assert on.

use std::sync::Arc;
use std::time::Duration;

use astreinte::config::{IncidentSettings, ReceiverConfig, ReceiverKind};
use astreinte::incident::Event;
use astreinte::level::Level;
use astreinte::metrics::Metrics;
use astreinte::notify::{Delivery, Notifier};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// A receiver with fast retries (50 ms, doubling) and no resend.
pub fn receiver(name: &str, kind: ReceiverKind, url: &str) -> ReceiverConfig {
    ReceiverConfig {
        name: name.into(),
        kind,
        url: Some(url.into()),
        url_from: None,
        token: None,
        min_level: Level::P4,
        timeout: Duration::from_secs(2),
        retries: 3,
        retry_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(10),
        queue_size: 16,
        resend: Duration::ZERO,
        blocks: false,
        enabled: true,
    }
}

/// A running notifier; drop `notifier` and wait on `tracker` to stop it.
pub struct Harness {
    pub notifier: Notifier,
    pub deliveries: mpsc::Receiver<Delivery>,
    pub metrics: Arc<Metrics>,
    pub tracker: TaskTracker,
}

pub fn start(receivers: &[ReceiverConfig], settings: &IncidentSettings) -> Harness {
    astreinte::app::install_crypto();
    let metrics = Arc::new(Metrics::new());
    let (tx, deliveries) = mpsc::channel(64);
    let tracker = TaskTracker::new();
    let notifier = Notifier::spawn(
        receivers,
        settings.clone(),
        metrics.clone(),
        Some(tx),
        &tracker,
    )
    .unwrap();
    Harness {
        notifier,
        deliveries,
        metrics,
        tracker,
    }
}

impl Harness {
    pub async fn next_delivery(&mut self) -> Delivery {
        tokio::time::timeout(Duration::from_secs(20), self.deliveries.recv())
            .await
            .expect("a delivery report within 20 s")
            .expect("the delivery channel is open")
    }

    pub fn metric(&self, receiver: &str, result: &str) -> u64 {
        let text = self.metrics.encode();
        let prefix = format!(
            "astreinte_notifications_total{{receiver=\"{receiver}\",result=\"{result}\"}} "
        );
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.parse().unwrap())
    }
}

/// The one event a step must produce.
pub fn only(events: Vec<Event>) -> Event {
    assert_eq!(events.len(), 1, "{events:?}");
    events.into_iter().next().unwrap()
}

pub fn fixed(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}
