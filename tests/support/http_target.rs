//! A real local HTTP server (axum) with the behaviours the probe tests need.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// A running test server; it stops when dropped.
pub struct HttpTarget {
    pub addr: SocketAddr,
    /// The status `/switchable` answers (tests flip it to simulate an outage).
    pub status: Arc<AtomicU16>,
    /// Calls to `POST /admin/recover` (sets `/switchable` back to 200), `/admin/noop` and
    /// `/admin/hang` (never answers).
    pub admin_calls: Arc<std::sync::atomic::AtomicUsize>,
    cancel: CancellationToken,
}

impl HttpTarget {
    pub async fn start() -> HttpTarget {
        let status = Arc::new(AtomicU16::new(200));
        let admin_calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (st, calls) = (status.clone(), admin_calls.clone());
        let calls2 = admin_calls.clone();
        let hang_calls = admin_calls.clone();
        let app = Router::new()
            .route("/ok", get(|| async { "ok: all good\n" }))
            .route(
                "/fail",
                get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "boom\n") }),
            )
            .route(
                "/hang",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "late"
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "ok: slow\n"
                }),
            )
            .route(
                "/redirect",
                get(|| async { (StatusCode::FOUND, [("location", "/ok")], "") }),
            )
            .route("/big", get(big_body))
            .route(
                "/auth",
                get(|headers: axum::http::HeaderMap| async move {
                    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                        Some("Bearer s3cret-token") => (StatusCode::OK, "ok\n"),
                        _ => (StatusCode::UNAUTHORIZED, "who are you\n"),
                    }
                }),
            )
            .route("/switchable", get(switchable))
            .route(
                "/admin/recover",
                axum::routing::post(move |headers: axum::http::HeaderMap| {
                    let (st, calls) = (st.clone(), calls.clone());
                    async move {
                        if headers.get("authorization").and_then(|v| v.to_str().ok())
                            != Some("Bearer hcloud-token")
                        {
                            return StatusCode::UNAUTHORIZED;
                        }
                        calls.fetch_add(1, Ordering::SeqCst);
                        st.store(200, Ordering::SeqCst);
                        StatusCode::OK
                    }
                }),
            )
            .route("/admin/hang", axum::routing::post(admin_hang))
            .route(
                "/admin/noop",
                axum::routing::post(move || {
                    let calls = calls2.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        StatusCode::OK
                    }
                }),
            )
            .layer(axum::Extension(hang_calls))
            .with_state(status.clone());
        let (addr, cancel) = super::serve_local(app).await;
        HttpTarget {
            addr,
            status,
            admin_calls,
            cancel,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for HttpTarget {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Counts the call, then never answers (an action that hangs).
async fn admin_hang(
    axum::Extension(calls): axum::Extension<Arc<std::sync::atomic::AtomicUsize>>,
) -> StatusCode {
    calls.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    StatusCode::OK
}

/// 100 MB streamed in 64 KiB chunks, never held in memory at once.
async fn big_body() -> Body {
    let chunk = bytes_of(64 * 1024);
    let stream =
        futures::stream::iter((0..1600).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    Body::from_stream(stream)
}

fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b'x'; n])
}

async fn switchable(State(status): State<Arc<AtomicU16>>) -> (StatusCode, &'static str) {
    let code = StatusCode::from_u16(status.load(Ordering::Relaxed)).unwrap_or(StatusCode::OK);
    (code, "switchable\n")
}
