//! The local HTTP target every probe hits: a small axum server on several 127.0.0.1 ports
//! (so fresh connections spread over more 4-tuples), counting requests per path, with
//! switchable paths (200 or 503, flipped by the driver) that log when each request was served,
//! and a hook that logs when an action's POST arrived.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;

/// One switchable path: whether it fails now, and when each request was served.
#[derive(Default, Clone)]
pub struct Switch {
    pub failing: bool,
    /// (served at, answered with a failure).
    pub hits: Vec<(SystemTime, bool)>,
}

#[derive(Default)]
pub struct Shared {
    /// Requests to `/a` (astreinte's probes).
    pub astreinte: AtomicU64,
    /// Requests to `/b` (blackbox_exporter's probes).
    pub blackbox: AtomicU64,
    pub switches: Mutex<HashMap<String, Switch>>,
    pub hooks: Mutex<HashMap<String, Vec<SystemTime>>>,
}

impl Shared {
    pub fn set_failing(&self, name: &str, failing: bool) {
        let mut map = self.switches.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(name.to_owned()).or_default().failing = failing;
    }
    pub fn switch(&self, name: &str) -> Switch {
        let map = self.switches.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned().unwrap_or_default()
    }
    pub fn hook(&self, name: &str) -> Vec<SystemTime> {
        let map = self.hooks.lock().unwrap_or_else(|e| e.into_inner());
        map.get(name).cloned().unwrap_or_default()
    }
}

pub struct Target {
    pub addrs: Vec<SocketAddr>,
    pub shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Target {
    /// Starts the server on `ports` fresh 127.0.0.1 ports.
    pub async fn start(ports: usize) -> std::io::Result<Target> {
        let shared = Arc::new(Shared::default());
        let cancel = CancellationToken::new();
        let app = Router::new()
            .route(
                "/a",
                get(|State(s): State<Arc<Shared>>| async move {
                    s.astreinte.fetch_add(1, Ordering::Relaxed);
                    "ok\n"
                }),
            )
            .route(
                "/b",
                get(|State(s): State<Arc<Shared>>| async move {
                    s.blackbox.fetch_add(1, Ordering::Relaxed);
                    "ok\n"
                }),
            )
            .route("/sw/{name}", get(switchable))
            .route("/hook/{name}", post(hook))
            .with_state(shared.clone());
        let mut addrs = vec![];
        for _ in 0..ports {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            addrs.push(listener.local_addr()?);
            let app = app.clone();
            let stop = cancel.clone();
            tokio::spawn(async move {
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
            });
        }
        Ok(Target {
            addrs,
            shared,
            cancel,
        })
    }

    /// The URL of `path` on the `i`-th port (modulo the number of ports).
    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}{path}", self.addrs[i % self.addrs.len()])
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn switchable(
    State(s): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> (StatusCode, &'static str) {
    let now = SystemTime::now();
    let mut map = s.switches.lock().unwrap_or_else(|e| e.into_inner());
    let sw = map.entry(name).or_default();
    sw.hits.push((now, sw.failing));
    if sw.failing {
        (StatusCode::SERVICE_UNAVAILABLE, "down\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}

async fn hook(State(s): State<Arc<Shared>>, Path(name): Path<String>) -> &'static str {
    let now = SystemTime::now();
    let mut map = s.hooks.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(name).or_default().push(now);
    "done\n"
}
