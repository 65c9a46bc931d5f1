//! `SecretRef` files are read off the async threads and per use: a secret file that does not
//! answer (a FIFO nobody writes yet) does not stop the runtime, and a rotated token reaches the
//! next probe run without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use astreinte::config::{SecretRef, load_dir};
use astreinte::probes::Prober;
use axum::http::{HeaderMap, StatusCode};

/// Makes `path` a FIFO and starts a thread that writes `s3cret` into it once told the test's
/// task ran again after the read started (or, to unblock a thread a blocking read would
/// hold, after 30 s: then it returns false and the test fails).
fn fifo_secret(
    path: &std::path::Path,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<bool>) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success());
    let (resumed_tx, resumed_rx) = std::sync::mpsc::channel::<()>();
    let fifo = path.to_owned();
    let writer = std::thread::spawn(move || {
        let on_time = resumed_rx.recv_timeout(Duration::from_secs(30)).is_ok();
        std::fs::write(&fifo, "s3cret\n").unwrap();
        on_time
    });
    (resumed_tx, writer)
}

/// One thread for the runtime: a blocking read in a task would stop every other task,
/// this test's included.
#[tokio::test(flavor = "current_thread")]
async fn a_secret_file_is_read_off_the_async_thread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let (resumed_tx, writer) = fifo_secret(&path);
    let secret = SecretRef {
        env: None,
        file: Some(path),
    };
    let reading = tokio::spawn(async move { secret.read().await });
    // The read task runs now; a blocking read would not let this task come back.
    tokio::task::yield_now().await;
    let _ = resumed_tx.send(());
    let got = reading.await.unwrap().unwrap();
    assert!(
        writer.join().unwrap(),
        "the runtime's thread was blocked by the secret read"
    );
    assert_eq!(got.expose(), "s3cret");
}

#[tokio::test]
async fn a_rotated_token_is_used_by_the_next_probe_run() {
    astreinte::app::install_crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/health",
        axum::routing::get(|headers: HeaderMap| async move {
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Bearer new-token") => StatusCode::OK,
                _ => StatusCode::UNAUTHORIZED,
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "old-token\n").unwrap();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"http://{addr}/health\"\n\
             bearer_token = {{ file = \"{}\" }}\n",
            token.display()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    let probe = config.probe("api").unwrap().clone();
    let prober = Prober::new().unwrap();
    let first = prober.observe(&config, &probe).await;
    assert!(!first.outcome.is_healthy(), "{first:?}");
    // Rotated as a Kubernetes Secret volume does it: a new file swapped in.
    let next = dir.path().join("token.new");
    std::fs::write(&next, "new-token\n").unwrap();
    std::fs::rename(&next, &token).unwrap();
    let second = prober.observe(&config, &probe).await;
    assert!(second.outcome.is_healthy(), "{second:?}");
    server.abort();
}

/// The same for the token of an `http` action (issue 16 §3: it was read with a blocking
/// `resolve()` on the async thread; the webhook notifier and the Patroni actions had the
/// same read and now share this path). One runtime thread: a blocking read would hold it
/// until the writer gives up after 30 s.
#[tokio::test(flavor = "current_thread")]
async fn an_http_action_token_file_is_read_off_the_async_thread() {
    astreinte::app::install_crypto();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/restart",
        axum::routing::post(|headers: HeaderMap| async move {
            match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Bearer s3cret") => StatusCode::OK,
                _ => StatusCode::UNAUTHORIZED,
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let (resumed_tx, writer) = fifo_secret(&path);
    let action: astreinte::config::ActionSpec = toml::from_str(&format!(
        "kind = \"http\"\nmethod = \"POST\"\nurl = \"http://{addr}/restart\"\ntoken = {{ file = \"{}\" }}\n",
        path.display()
    ))
    .unwrap();
    std::fs::write(dir.path().join("probes.toml"), "").unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    let actuators = astreinte::actuators::Actuators::new().unwrap();
    let running = tokio::spawn(async move {
        actuators
            .run(&action, &config, Duration::from_secs(40))
            .await
    });
    tokio::task::yield_now().await;
    let _ = resumed_tx.send(());
    let out = running.await.unwrap();
    assert!(
        writer.join().unwrap(),
        "the runtime's thread was blocked by the token read"
    );
    assert!(out.is_ok(), "{out:?}");
    server.abort();
}
