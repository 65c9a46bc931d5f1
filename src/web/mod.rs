//! The status page at `/`: one server-rendered HTML page (no JavaScript, reloads itself every
//! 10 s) for the operator on call. It reads the status board and the configuration only, no
//! other IO, so it stays cheap however often it is loaded. Every piece of dynamic text is
//! escaped ([`escape`]).

mod escape;
mod incidents;
mod page;
mod style;

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::server::AppState;
use crate::when;

pub use escape::escape;
pub use page::{PageData, ProbeRow, render};

/// No script may run and nothing is loaded from elsewhere: the page only needs its own CSS.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'";

/// `GET /`.
pub async fn status_page(State(s): State<Arc<AppState>>) -> Response {
    let html = render_state(&s, crate::clock::Clock::system().now());
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        html,
    )
        .into_response()
}

/// Reads the board once and renders it.
pub fn render_state(s: &AppState, now: jiff::Timestamp) -> String {
    let config = s.config.load();
    let tz = when::policy_zone(config.policy.timezone.as_deref());
    let mut results = s.status.snapshot();
    // Configured probes in file order; a result for a probe no longer configured is dropped
    // by the engine after a reload, and any left over is listed after them.
    let mut rows: Vec<ProbeRow> = config
        .enabled_probes()
        .map(|p| {
            let status = results
                .iter()
                .position(|r| *r.probe == *p.id)
                .map(|i| results.swap_remove(i));
            ProbeRow {
                id: p.id.clone(),
                kind: p.spec.kind().as_str(),
                what: p.spec.describe(),
                status,
            }
        })
        .collect();
    rows.extend(results.into_iter().map(|r| ProbeRow {
        id: r.probe.to_string(),
        kind: r.kind,
        what: String::new(),
        status: Some(r),
    }));
    let source = config.source.to_string();
    let incidents = s.status.incidents();
    let decisions = s.status.decisions();
    render(&PageData {
        now,
        tz: &tz,
        mode: config.policy.mode,
        leader: s.metrics.leader.get() != 0,
        version: env!("CARGO_PKG_VERSION"),
        config_source: &source,
        started: s.started,
        probes: &rows,
        incidents: &incidents,
        decisions: &decisions,
    })
}

#[cfg(test)]
mod tests;
