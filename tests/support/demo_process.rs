//! `astreinte demo` as a process for the demo tests: start it, talk to it (`/status`,
//! `demo fault`), list the processes it started, and stop it with SIGINT even when a test
//! fails (so that it stops its stack).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use astreinte::testbed::{Proc, wait_for};
use rustix::process::Signal;
use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_astreinte");

pub fn client() -> reqwest::Client {
    astreinte::app::install_crypto();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

pub async fn get_json(http: &reqwest::Client, url: &str) -> Option<Value> {
    http.get(url).send().await.ok()?.json().await.ok()
}

/// The demo's output so far, to explain a failure.
pub fn logs(dir: &Path) -> String {
    let out = std::fs::read_to_string(dir.join("demo.out")).unwrap_or_default();
    let err = std::fs::read_to_string(dir.join("demo.err")).unwrap_or_default();
    let tail: Vec<&str> = err.lines().rev().take(40).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!(
        "--- stdout ---\n{out}\n--- stderr (end) ---\n{}",
        tail.join("\n")
    )
}

/// Every probe healthy, but the root disk of a build machine, which only has to be probed.
pub fn all_green(probes: &[Value]) -> bool {
    let green = probes
        .iter()
        .filter(|p| p["probe"] != "root-disk")
        .all(|p| p["outcome"] == "healthy");
    let disk_seen = probes
        .iter()
        .any(|p| p["probe"] == "root-disk" && p["outcome"] != "unknown");
    green && disk_seen
}

/// Waits (60 s) until `check` accepts the `/status` entry of `probe`.
pub async fn wait_probe<T>(
    http: &reqwest::Client,
    base: &str,
    probe: &str,
    what: &str,
    check: impl Fn(&Value) -> Option<T>,
) -> T {
    let url = format!("{base}/status");
    let check = &check;
    let found = wait_for(what, Duration::from_secs(60), || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let status = get_json(&http, &url).await?;
            let entry = status["probes"]
                .as_array()?
                .iter()
                .find(|p| p["probe"] == probe)?
                .clone();
            check(&entry)
        }
    })
    .await;
    match found {
        Ok(v) => v,
        Err(e) => panic!(
            "{probe}: {e}
status: {:#}",
            get_json(http, &url).await.unwrap_or_default()
        ),
    }
}

/// The demo process. Dropped while it runs (a failed assertion), it gets SIGINT first, so
/// that it stops its stack; SIGKILL (by `Proc`) only if it does not exit within 30 s.
pub struct Demo(pub Proc);

impl Drop for Demo {
    fn drop(&mut self) {
        if self.0.is_running() {
            self.0.signal(Signal::INT);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while self.0.is_running() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

pub fn start_demo(work: &Path, dir: &Path, port: u16) -> Demo {
    let mut cmd = Command::new(BIN);
    cmd.args(["demo", "--port", &port.to_string(), "--dir"])
        .arg(dir)
        .env("RUST_LOG", "info")
        .env_remove("ASTREINTE_CONFIG");
    Demo(
        Proc::spawn_with_stdout(
            "astreinte demo",
            cmd,
            &work.join("demo.out"),
            &work.join("demo.err"),
        )
        .unwrap(),
    )
}

pub async fn fault(dir: &Path, name: &str) -> String {
    let out = tokio::process::Command::new(BIN)
        .args(["demo", "fault", name, "--dir"])
        .arg(dir)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "demo fault {name}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}
