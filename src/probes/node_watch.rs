//! The node watch behind `kind = "node"`: one list-then-watch loop per (label selector,
//! staleness), shared by the probes that use it, feeding a kube-runtime reflector store, and
//! the time of the API's last answer, so that a probe never serves a stale store as fresh.
//!
//! Written with `Api::list` and `Api::watch` rather than kube-runtime's `watcher`, because the
//! watcher hides what tells a quiet cluster from a dead link: bookmarks and the end of each
//! watch. Here every answer of the API (a list, a watch opened, an event, a bookmark) counts
//! as a sign of life; each watch asks the server to end it after half the staleness, so a
//! healthy link answers at least that often; a request or a watch silent for the whole
//! staleness (an apiserver behind a blackholed network) is dropped and retried with backoff.
//! A 410 Gone relists; any other error retries the watch from the last resourceVersion.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{ListParams, WatchEvent, WatchParams};
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::Event;
use kube::{Api, ResourceExt};
use tokio::time::Instant;

use crate::clients::kube::{Error, Op, WATCH_MAX_PAUSE, WATCH_MIN_PAUSE};

/// What tells two watches apart: the label selector and the staleness.
type WatchKey = (Option<String>, Duration);

/// One watch per (label selector, staleness), started on first use.
pub struct NodeWatches {
    client: kube::Client,
    watches: Mutex<HashMap<WatchKey, Arc<NodeWatch>>>,
}

/// What the watch knows of its own health.
#[derive(Default)]
struct Health {
    /// The last answer of the API to this watch (local monotonic clock).
    last_answer: Option<Instant>,
    /// The last error (RBAC denial, apiserver unreachable, silent watch), for the detail.
    last_error: Option<String>,
}

pub struct NodeWatch {
    pub store: Store<Node>,
    health: Arc<Mutex<Health>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for NodeWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl NodeWatches {
    pub fn new(client: kube::Client) -> Self {
        NodeWatches {
            client,
            watches: Mutex::default(),
        }
    }

    pub fn get(&self, selector: Option<&str>, stale_after: Duration) -> Arc<NodeWatch> {
        let key = (selector.map(str::to_owned), stale_after);
        let mut watches = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        watches
            .entry(key)
            .or_insert_with(|| Arc::new(self.start(selector, stale_after)))
            .clone()
    }

    fn start(&self, selector: Option<&str>, stale_after: Duration) -> NodeWatch {
        let (store, writer) = reflector::store();
        let health: Arc<Mutex<Health>> = Arc::default();
        let reflector = Reflector {
            api: Api::all(self.client.clone()),
            selector: selector.map(str::to_owned),
            stale_after,
            writer,
            health: health.clone(),
            version: None,
        };
        NodeWatch {
            store,
            health,
            task: tokio::spawn(reflector.run()),
        }
    }
}

impl NodeWatch {
    /// The last error, or `None` when the last request worked.
    pub fn last_error(&self) -> Option<String> {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last_error
            .clone()
    }

    /// `Some((silent for, why))` when the API has not answered for longer than `stale_after`.
    pub fn stale(&self, stale_after: Duration) -> Option<(Duration, String)> {
        let health = self.health.lock().unwrap_or_else(|p| p.into_inner());
        let silent = health.last_answer?.elapsed();
        (silent > stale_after).then(|| {
            let why = health
                .last_error
                .clone()
                .unwrap_or_else(|| "no answer".into());
            (silent, why)
        })
    }
}

/// How a watch ended without an error.
enum End {
    /// The server closed it (its `timeoutSeconds`): resume from the last version.
    Closed,
    /// 410 Gone: the version is too old, list again.
    Expired,
}

struct Reflector {
    api: Api<Node>,
    selector: Option<String>,
    stale_after: Duration,
    writer: Writer<Node>,
    health: Arc<Mutex<Health>>,
    /// The resourceVersion to resume from; `None`: list first.
    version: Option<String>,
}

impl Reflector {
    async fn run(mut self) {
        let mut pause = WATCH_MIN_PAUSE;
        loop {
            let result = match self.version.clone() {
                None => self.list().await,
                Some(version) => match self.watch(&version).await {
                    Ok(End::Closed) => Ok(()),
                    Ok(End::Expired) => {
                        self.version = None;
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(()) => pause = WATCH_MIN_PAUSE,
                Err(e) => {
                    tracing::warn!(error = %e, "node watch failed, retrying");
                    self.health().last_error = Some(e);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(WATCH_MAX_PAUSE);
                }
            }
        }
    }

    fn health(&self) -> std::sync::MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answered(&self) {
        let mut h = self.health();
        h.last_answer = Some(Instant::now());
        h.last_error = None;
    }

    fn op(verb: &'static str) -> Op {
        Op::new(verb, "nodes", "", "")
    }

    /// Lists the nodes and replaces the store's content with them.
    async fn list(&mut self) -> Result<(), String> {
        let mut params = ListParams::default();
        if let Some(s) = &self.selector {
            params = params.labels(s);
        }
        let list = tokio::time::timeout(self.stale_after, self.api.list(&params))
            .await
            .map_err(|_| self.silent("list nodes"))?
            .map_err(|e| Error::from_kube(e, &Self::op("list")).to_string())?;
        self.answered();
        self.writer.apply_watcher_event(&Event::Init);
        for node in list.items {
            self.writer.apply_watcher_event(&Event::InitApply(node));
        }
        self.writer.apply_watcher_event(&Event::InitDone);
        self.version = list.metadata.resource_version.filter(|v| !v.is_empty());
        if self.version.is_none() {
            return Err("the node list came without a resourceVersion".into());
        }
        Ok(())
    }

    /// Watches from `version` until the server ends the watch, an error, or silence.
    async fn watch(&mut self, version: &str) -> Result<End, String> {
        // Whole seconds, at least one: the server ends the watch after half the staleness.
        let secs = u32::try_from((self.stale_after / 2).as_secs()).unwrap_or(u32::MAX);
        let mut params = WatchParams::default().timeout(secs.max(1));
        if let Some(s) = &self.selector {
            params = params.labels(s);
        }
        let api = self.api.clone();
        let stream = tokio::time::timeout(self.stale_after, api.watch(&params, version))
            .await
            .map_err(|_| self.silent("watch nodes"))?
            .map_err(|e| Error::from_kube(e, &Self::op("watch")).to_string())?;
        self.answered();
        let mut stream = std::pin::pin!(stream);
        loop {
            let item = tokio::time::timeout(self.stale_after, stream.next())
                .await
                .map_err(|_| self.silent("the node watch"))?;
            let event = match item {
                None => return Ok(End::Closed),
                Some(Err(e)) => return Err(Error::from_kube(e, &Self::op("watch")).to_string()),
                Some(Ok(event)) => event,
            };
            self.answered();
            match event {
                WatchEvent::Added(node) | WatchEvent::Modified(node) => {
                    self.advance(&node);
                    self.writer.apply_watcher_event(&Event::Apply(node));
                }
                WatchEvent::Deleted(node) => {
                    self.advance(&node);
                    self.writer.apply_watcher_event(&Event::Delete(node));
                }
                WatchEvent::Bookmark(b) => self.version = Some(b.metadata.resource_version),
                WatchEvent::Error(e) if e.code == 410 => return Ok(End::Expired),
                WatchEvent::Error(e) => {
                    return Err(format!("the node watch failed ({}): {}", e.code, e.message));
                }
            }
        }
    }

    fn advance(&mut self, node: &Node) {
        if let Some(v) = node.resource_version().filter(|v| !v.is_empty()) {
            self.version = Some(v);
        }
    }

    fn silent(&self, what: &str) -> String {
        format!(
            "no answer from the kubernetes api to {what} within {}",
            humantime::format_duration(self.stale_after)
        )
    }
}
