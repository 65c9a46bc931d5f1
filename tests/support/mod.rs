//! Test harness: real servers started on 127.0.0.1 with free ports, and stopped (exactly the
//! processes it started, by process group) when their guard drops, even on panic.
#![allow(dead_code)]

pub mod action_sink;
pub mod demo_process;
pub mod deploy;
pub mod engine_driver;
pub mod exposition;
pub mod fake_patroni;
pub mod http_target;
pub mod journal_audit;
pub mod kube_api;
pub mod kube_real;
pub mod notify_harness;
pub mod replica;
pub mod scenario;
pub mod tcp_proxy;
pub mod webhook_sink;

use std::future::Future;
use std::time::{Duration, Instant};

/// Serves `app` on a free port of 127.0.0.1 until the returned token is cancelled.
pub async fn serve_local(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = tokio_util::sync::CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await
            .unwrap();
    });
    (addr, cancel)
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    astreinte::testbed::free_port().expect("a free port on 127.0.0.1")
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether a Debian binary the real-server tests need is installed.
pub fn have(binary: &str) -> bool {
    std::path::Path::new(binary).exists()
}

/// Panics with the install command when a binary is missing: tests never skip silently.
pub fn require(binary: &str, package: &str) {
    assert!(
        have(binary),
        "{binary} is missing: run `apt-get install -y {package}` (scripts/test does it)"
    );
}
