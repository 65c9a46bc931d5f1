//! The HTTP server (axum): `/` (the status page, see [`crate::web`]), `/metrics`, `/healthz`,
//! `/readyz`, `/status`.

use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::incident::Incident;
use crate::metrics::{CONTENT_TYPE, Metrics};
use crate::remediation::DecisionEntry;
use crate::status::{ProbeStatus, StatusBoard};

/// What the handlers read.
pub struct AppState {
    pub config: ArcSwap<Config>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<StatusBoard>,
    /// Beaten by the engine loop; `/readyz` is its age (a stale beat is not ready).
    pub heartbeat: Arc<crate::heartbeat::Heartbeat>,
    pub started: jiff::Timestamp,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(crate::web::status_page))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/decisions", get(decisions))
        .route("/incidents", get(incidents))
        .route("/incidents/{id}", get(incident))
        .route("/incidents/{id}/postmortem", get(postmortem))
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

/// Ready while the engine loop beats ([`crate::heartbeat`]): a dead or stuck engine is not.
async fn readyz(State(s): State<Arc<AppState>>) -> (StatusCode, String) {
    match s.heartbeat.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".into()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}

#[derive(Serialize)]
struct StatusPage {
    version: &'static str,
    started: jiff::Timestamp,
    /// The daemon's time (wall clock at start + monotonic time), which every stamp uses.
    now: jiff::Timestamp,
    /// The system clock as the daemon reads it (differs from `now` after a clock jump).
    wall: jiff::Timestamp,
    config: String,
    mode: &'static str,
    probes: Vec<ProbeStatus>,
}

async fn status(State(s): State<Arc<AppState>>) -> Json<StatusPage> {
    let config = s.config.load();
    let clock = crate::clock::Clock::system().read();
    Json(StatusPage {
        version: env!("CARGO_PKG_VERSION"),
        started: s.started,
        now: clock.at,
        wall: clock.wall,
        config: config.source.to_string(),
        mode: config.policy.mode.as_str(),
        probes: s.status.snapshot(),
    })
}

async fn decisions(State(s): State<Arc<AppState>>) -> Json<Vec<DecisionEntry>> {
    Json(s.status.decisions())
}

#[derive(Serialize)]
struct IncidentList {
    open: Vec<Incident>,
    recent: Vec<Incident>,
    /// Whether this replica leads. A follower serves the leader's incidents as last read
    /// from the shared journal (at most a few seconds old): the same ids and timelines.
    leader: bool,
}

async fn incidents(State(s): State<Arc<AppState>>) -> Json<IncidentList> {
    let all = s.status.incidents();
    Json(IncidentList {
        open: all.open.into_values().collect(),
        recent: all.recent.into_iter().collect(),
        leader: s.metrics.leader.get() != 0,
    })
}

/// Ids are matched against known incidents only; nothing from the path reaches a file system.
async fn incident(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match s.status.incidents().find(&id) {
        Some(i) => Json(i.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no such incident\n").into_response(),
    }
}

async fn postmortem(State(s): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let all = s.status.incidents();
    match all.find(&id).map(|i| i.postmortem.clone()) {
        Some(Some(md)) => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response()
        }
        Some(None) => (
            StatusCode::NOT_FOUND,
            "the incident is not resolved yet: no post-mortem draft\n",
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such incident\n").into_response(),
    }
}
