//! Fault matrix, clock jump: the real daemon under libfaketime, whose wall clock the test
//! moves +1 h and then -1 h mid-run (monotonic time stays real). A failing HTTP target
//! triggers a rule (cooldown 5 min, budget 1 per hour) whose http action calls a local
//! counter: exactly one call before and after the jumps, and the daemon's skew gauge shows
//! the jumps (which also proves libfaketime reaches the Rust binary's `clock_gettime`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use astreinte::testbed::{Proc, require};
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use support::{free_port, serve_local, wait_for};

#[cfg(target_arch = "x86_64")]
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
#[cfg(target_arch = "aarch64")]
const LIBFAKETIME: &str = "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1";

async fn get_text(url: &str) -> Option<String> {
    reqwest::get(url).await.ok()?.text().await.ok()
}

/// The value of an unlabelled gauge in an exposition.
fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// The last decision of rule `reboot` (its line) once it was taken at or after `after`
/// (daemon time; the daemon started without an offset, so its projected time is real time).
async fn decision_after(base: &str, after: jiff::Timestamp) -> Option<String> {
    let body = get_text(&format!("{base}/decisions")).await?;
    let all: serde_json::Value = serde_json::from_str(&body).ok()?;
    let d = all
        .as_array()?
        .iter()
        .find(|d| d["rule"] == "reboot")?
        .clone();
    let at: jiff::Timestamp = d["at"].as_str()?.parse().ok()?;
    (at >= after).then(|| d["line"].as_str().unwrap_or_default().to_owned())
}

fn write_config(dir: &Path, target: &str, action: &str) {
    std::fs::write(
        dir.join("probes.toml"),
        format!(
            "[journal]\npath = \"{}\"\n\n[[probe]]\nid = \"api\"\nkind = \"http\"\nurl = \"{target}\"\n\
             interval = \"1s\"\ntimeout = \"500ms\"\n",
            dir.join("journal.json").display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("remediations.toml"),
        format!(
            "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"reboot\"\n\
             trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"{action}\" }}\n\
             cooldown = \"5m\"\nbudget = {{ max = 1, per = \"1h\" }}\n"
        ),
    )
    .unwrap();
}

/// Moves the daemon's wall clock to `offset` from real time (a libfaketime spec).
fn set_offset(spec: &Path, offset: &str) {
    std::fs::write(spec, format!("{offset}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_jump_neither_frees_nor_freezes_budgets_and_cooldowns() {
    require(LIBFAKETIME, "libfaketime").unwrap();
    astreinte::app::install_crypto();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let app = Router::new()
        .route(
            "/fail",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "down\n") }),
        )
        .route(
            "/reboot",
            post(move || {
                counted.fetch_add(1, Ordering::SeqCst);
                async { "rebooting\n" }
            }),
        );
    let (addr, _stop) = serve_local(app).await;
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &format!("http://{addr}/fail"),
        &format!("http://{addr}/reboot"),
    );
    let spec = dir.path().join("faketime");
    set_offset(&spec, "+0");
    let port = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.arg("--config")
        .arg(dir.path())
        .args(["run", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME_TIMESTAMP_FILE", &spec)
        // Re-read the file on every call, and leave CLOCK_MONOTONIC alone.
        .env("FAKETIME_NO_CACHE", "1")
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    let log = dir.path().join("astreinte.log");
    let _daemon = Proc::spawn("astreinte", cmd, &log).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let metrics = format!("{base}/metrics");

    // Before: one action, then the budget holds.
    wait_for("the first action", Duration::from_secs(20), || async {
        (calls.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    let after_first = jiff::Timestamp::now();
    let first = wait_for(
        "a hold after the action",
        Duration::from_secs(10),
        || async {
            decision_after(&base, after_first)
                .await
                .filter(|l| l.contains("budget"))
        },
    )
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 1, "{first}");
    let text = get_text(&metrics).await.unwrap();
    let skew = gauge(&text, "astreinte_clock_skew_seconds").unwrap();
    assert!(skew.abs() < 2.0, "no offset yet: {skew}");

    for (offset, expected) in [("+1h", 3600.0), ("-1h", -3600.0)] {
        set_offset(&spec, offset);
        let skew = wait_for(
            &format!("the daemon to see its wall clock at {offset}"),
            Duration::from_secs(10),
            || async {
                let text = get_text(&metrics).await?;
                gauge(&text, "astreinte_clock_skew_seconds").filter(|s| (s - expected).abs() < 5.0)
            },
        )
        .await;
        // The daemon's own view on /status: its wall clock moved, its time did not.
        let status: serde_json::Value =
            serde_json::from_str(&get_text(&format!("{base}/status")).await.unwrap()).unwrap();
        let real = jiff::Timestamp::now();
        let seconds_off = |field: &str| {
            let t: jiff::Timestamp = status[field].as_str().unwrap().parse().unwrap();
            t.duration_since(real).as_secs_f64()
        };
        assert!(
            (seconds_off("wall") - expected).abs() < 5.0,
            "wall at {offset}: {status}"
        );
        assert!(seconds_off("now").abs() < 5.0, "now at {offset}: {status}");
        // Rules evaluated at least twice after the jump (daemon time is real time).
        let since = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
        let line = wait_for(
            &format!("a decision after the jump to {offset}"),
            Duration::from_secs(10),
            || decision_after(&base, since),
        )
        .await;
        assert_eq!(
            calls.load(Ordering::SeqCst),
            1,
            "after {offset} (skew {skew}): {line}"
        );
        assert!(line.contains("budget"), "after {offset}: {line}");
        let text = get_text(&metrics).await.unwrap();
        assert!(
            text.contains("astreinte_remediation_budget_remaining{rule=\"reboot\"} 0"),
            "after {offset}: {text}"
        );
    }

    let log = std::fs::read_to_string(&log).unwrap();
    let warnings = log
        .lines()
        .filter(|l| l.contains("the system clock jumped"))
        .count();
    assert_eq!(warnings, 2, "one warning per jump:\n{log}");
    assert!(log.contains("jump_seconds=3600"), "{log}");
    assert!(log.contains("jump_seconds=-7200"), "{log}");
}
