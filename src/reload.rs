//! Live policy toggles: the policy ConfigMap (keys `probes.toml` and `remediations.toml`) is
//! watched through the API (not the mounted file, which the kubelet refreshes late), each
//! version parsed and validated by [`crate::config::load_from_strings`]. A good one is
//! published on the channel; a bad one is rejected with every problem logged, a Warning Event
//! on the ConfigMap and `astreinte_config_reload_total{result="invalid"}`, and the last good
//! configuration stays.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::actuators::kube::{EventType, record_event};
use crate::clients::kube::Client;
use crate::config::{self, Config, PROBES_FILE, REMEDIATIONS_FILE};
use crate::metrics::{Metrics, ResultLabels};

/// Events carry at most this much of the problem list (the log has all of it).
const EVENT_MESSAGE_MAX: usize = 1024;

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
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let origin = format!("{namespace}/{name}");
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let task = tokio::spawn(async move {
        let mut stream = watcher(api, config)
            .default_backoff()
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
    });
    (rx, task)
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
        Ok(new) => {
            metrics
                .config_reload_total
                .get_or_create(&ResultLabels { result: "applied" })
                .inc();
            tracing::info!(
                configmap = %origin,
                probes = new.enabled_probes().count(),
                rules = new.rules.len(),
                mode = new.policy.mode.as_str(),
                "configuration reloaded from the policy configmap"
            );
            tx.send_replace(Arc::new(new));
        }
        Err(problems) => {
            metrics
                .config_reload_total
                .get_or_create(&ResultLabels { result: "invalid" })
                .inc();
            for p in &problems {
                tracing::error!(configmap = %origin, problem = %p, "invalid policy configmap");
            }
            tracing::error!(
                configmap = %origin,
                problems = problems.len(),
                "policy configmap rejected, keeping the last good configuration"
            );
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
