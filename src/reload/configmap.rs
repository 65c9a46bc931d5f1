//! The policy ConfigMap (keys `probes.toml` and `remediations.toml`), watched through the API
//! (not the mounted file, which the kubelet refreshes late). Each new version is parsed and
//! validated by [`crate::config::load_from_strings`]; a bad one also gets a Warning Event on
//! the ConfigMap. Errors are retried with the node watch's capped pause
//! ([`WATCH_MAX_PAUSE`]), so an edit made after an apiserver outage is seen within it.

use std::sync::Arc;
use std::time::Duration;

use backon::ExponentialBuilder;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::utils::ResetTimerBackoff;
use kube::runtime::watcher::ExponentialBackoff;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::actuators::kube::{EventType, record_event};
use crate::clients::kube::{Client, WATCH_MAX_PAUSE, WATCH_MIN_PAUSE};
use crate::config::{self, Config, PROBES_FILE, REMEDIATIONS_FILE};
use crate::metrics::Metrics;

/// Events carry at most this much of the problem list (the log has all of it).
const EVENT_MESSAGE_MAX: usize = 1024;

/// An error this long after the previous one starts the pauses over (an object received
/// does too). kube-runtime's default waits 120 s, with pauses up to 60 s (30 s jittered):
/// back from an outage, the watch then stayed deaf for up to 45 s after the 410 Gone.
const BACKOFF_RESET: Duration = Duration::from_secs(10);

/// Pauses from [`WATCH_MIN_PAUSE`], doubling up to [`WATCH_MAX_PAUSE`] (no jitter: the cap
/// is the cap), like the node watch's.
fn backoff() -> ResetTimerBackoff<ExponentialBackoff> {
    let pauses = ExponentialBuilder::default()
        .with_min_delay(WATCH_MIN_PAUSE)
        .with_max_delay(WATCH_MAX_PAUSE)
        .with_factor(2.0)
        .without_max_times();
    ResetTimerBackoff::new(pauses.into(), BACKOFF_RESET)
}

/// Watches `namespace/name`; the receiver holds the last good configuration (starting with
/// `initial`). Stops when `cancel` fires.
pub fn spawn(
    client: Client,
    namespace: &str,
    name: &str,
    initial: Arc<Config>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> (watch::Receiver<Arc<Config>>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(initial);
    let task = spawn_into(client, namespace, name, Arc::new(tx), metrics, cancel);
    (rx, task)
}

/// Watches `namespace/name` and publishes each good version on `tx` (shared with the other
/// sources of configurations, see [`super`]). Stops when `cancel` fires.
pub fn spawn_into(
    client: Client,
    namespace: &str,
    name: &str,
    tx: Arc<watch::Sender<Arc<Config>>>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let origin = format!("{namespace}/{name}");
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let mut stream = watcher(api, config)
            .backoff(backoff())
            .applied_objects()
            .boxed();
        let mut last_seen: Option<(Option<String>, Option<String>)> = None;
        loop {
            let cm = tokio::select! {
                () = cancel.cancelled() => return,
                next = stream.next() => match next {
                    Some(Ok(cm)) => cm,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, configmap = %origin, "policy watch failed, retrying");
                        continue;
                    }
                    None => return,
                },
            };
            let data = cm.data.clone().unwrap_or_default();
            let keys = (
                data.get(PROBES_FILE).cloned(),
                data.get(REMEDIATIONS_FILE).cloned(),
            );
            // A resync or an edit of unrelated keys: nothing to do.
            if last_seen.as_ref() == Some(&keys) {
                continue;
            }
            last_seen = Some(keys.clone());
            apply(&client, &cm, &origin, keys, &tx, &metrics).await;
        }
    })
}

async fn apply(
    client: &Client,
    cm: &ConfigMap,
    origin: &str,
    (probes, remediations): (Option<String>, Option<String>),
    tx: &watch::Sender<Arc<Config>>,
    metrics: &Metrics,
) {
    let result = match (&probes, &remediations) {
        (Some(p), Some(r)) => config::load_from_strings(origin, p, r)
            .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>()),
        _ => Err(vec![format!(
            "configmap {origin} must hold both `{PROBES_FILE}` and `{REMEDIATIONS_FILE}` keys"
        )]),
    };
    match result {
        Ok(new) => super::accept(new, &format!("configmap {origin}"), tx, metrics),
        Err(problems) => {
            super::reject(&problems, &format!("configmap {origin}"), metrics);
            let mut message = format!(
                "rejected, keeping the last good configuration: {}",
                problems.join("; ")
            );
            if message.len() > EVENT_MESSAGE_MAX {
                let cut = (0..=EVENT_MESSAGE_MAX)
                    .rev()
                    .find(|i| message.is_char_boundary(*i))
                    .unwrap_or(0);
                message.truncate(cut);
                message.push('…');
            }
            let object = crate::actuators::kube::reference("v1", "ConfigMap", &cm.metadata);
            record_event(
                client,
                &object,
                "AstreinteConfigInvalid",
                &message,
                EventType::Warning,
            )
            .await;
        }
    }
}
