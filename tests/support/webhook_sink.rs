//! A real local HTTP server (axum) that receives notifications: it records every request
//! (path, `Authorization`, JSON body) and can fail on purpose.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio_util::sync::CancellationToken;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub authorization: Option<String>,
    pub body: serde_json::Value,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// `/flaky` answers 500 while this is above zero (and counts it down).
    failures_left: AtomicU32,
}

/// A running sink; it stops when dropped.
pub struct WebhookSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl WebhookSink {
    /// Routes: `POST /ok/{name}` answers 200, `/flaky/{name}` 500 for the first
    /// `flaky_failures` requests then 200, `/bad/{name}` 400.
    pub async fn start(flaky_failures: u32) -> WebhookSink {
        let shared = Arc::new(Shared {
            received: Mutex::default(),
            failures_left: AtomicU32::new(flaky_failures),
        });
        let app = Router::new()
            .route("/{mode}/{name}", post(receive))
            .with_state(shared.clone());
        let (addr, cancel) = super::serve_local(app).await;
        WebhookSink {
            addr,
            shared,
            cancel,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received at `path` so far.
    pub fn received(&self, path: &str) -> Vec<Received> {
        let all = self.shared.received.lock().unwrap();
        all.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// The incident notices received at `path`: (event, incident id), in order.
    pub fn notices(&self, path: &str) -> Vec<(String, String)> {
        self.received(path)
            .iter()
            .map(|r| {
                (
                    r.body["event"].as_str().unwrap_or_default().to_owned(),
                    r.body["incident"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    Path((mode, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    shared.received.lock().unwrap().push(Received {
        path: format!("/{mode}/{name}"),
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body,
    });
    match mode.as_str() {
        "bad" => StatusCode::BAD_REQUEST,
        "flaky" => {
            let left = shared.failures_left.load(Ordering::SeqCst);
            if left > 0 {
                shared.failures_left.store(left - 1, Ordering::SeqCst);
                StatusCode::INTERNAL_SERVER_ERROR
            } else {
                StatusCode::OK
            }
        }
        _ => StatusCode::OK,
    }
}
