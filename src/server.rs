//! The HTTP server (axum): `/metrics`, `/healthz`, `/readyz`, `/status`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::status::{ProbeStatus, StatusBoard};

/// What the handlers read.
pub struct AppState {
    pub config: ArcSwap<Config>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusBoard>,
    /// Set once the probe tasks are running.
    pub scheduler_running: AtomicBool,
    pub started: jiff::Timestamp,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .with_state(state)
}

/// Serves until `cancel` fires.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { cancel.cancelled().await })
        .await
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], s.metrics.encode()).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(s): State<Arc<AppState>>) -> (StatusCode, &'static str) {
    if s.scheduler_running.load(Ordering::Acquire) {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: scheduler not running\n",
        )
    }
}

#[derive(Serialize)]
struct StatusPage {
    version: &'static str,
    started: jiff::Timestamp,
    config: String,
    mode: &'static str,
    probes: Vec<ProbeStatus>,
}

async fn status(State(s): State<Arc<AppState>>) -> Json<StatusPage> {
    let config = s.config.load();
    Json(StatusPage {
        version: env!("CARGO_PKG_VERSION"),
        started: s.started,
        config: config.source.to_string(),
        mode: config.policy.mode.as_str(),
        probes: s.status.snapshot(),
    })
}
