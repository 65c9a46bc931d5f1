//! The `astreinte` binary as a process: run, SIGTERM, check exit codes, validate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::http_target::HttpTarget;

const BIN: &str = env!("CARGO_BIN_EXE_astreinte");

fn write_config(dir: &Path, probes: &str) {
    std::fs::write(dir.join("probes.toml"), probes).unwrap();
    std::fs::write(
        dir.join("remediations.toml"),
        "[policy]\nmode = \"dry-run\"\n",
    )
    .unwrap();
}

fn http_probe(id: &str, url: &str) -> String {
    format!(
        "[[probe]]\nid = \"{id}\"\nkind = \"http\"\nurl = \"{url}\"\ninterval = \"2s\"\ntimeout = \"1s\"\n"
    )
}

async fn check_exit(probes: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), probes);
    let out = tokio::process::Command::new(BIN)
        .args(["--config", dir.path().to_str().unwrap(), "check"])
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn check_exit_codes_match_the_outcomes() {
    let server = HttpTarget::start().await;
    let healthy = http_probe("ok", &server.url("/ok"));
    let (code, table) = check_exit(&healthy).await;
    assert_eq!(code, 0, "{table}");
    assert!(table.starts_with("PROBE"), "{table}");
    assert!(table.contains("healthy"), "{table}");

    let degraded = format!(
        "{healthy}{}slo_latency = \"1ms\"\n",
        http_probe("slow", &server.url("/slow"))
    );
    let (code, table) = check_exit(&degraded).await;
    assert_eq!(code, 1, "{table}");

    let failed = format!("{healthy}{}", http_probe("broken", &server.url("/fail")));
    let (code, table) = check_exit(&failed).await;
    assert_eq!(code, 2, "{table}");
    assert!(table.contains("bad_status"), "{table}");
}

#[tokio::test]
async fn check_json_output_is_machine_readable() {
    let server = HttpTarget::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &http_probe("ok", &server.url("/ok")));
    let out = tokio::process::Command::new(BIN)
        .args([
            "--config",
            dir.path().to_str().unwrap(),
            "check",
            "--output",
            "json",
        ])
        .output()
        .await
        .unwrap();
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["probe"], "ok");
    assert_eq!(rows[0]["outcome"], "healthy");
}

#[test]
fn validate_exits_1_and_lists_the_problems() {
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        "[[probe]]\nid = \"x\"\nkind = \"tcp\"\naddress = \"nope\"\n",
    );
    let out = Command::new(BIN)
        .args(["--config", dir.path().to_str().unwrap(), "validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("probes.toml") && stderr.contains("address"),
        "{stderr}"
    );
}

#[tokio::test]
async fn daemon_serves_healthz_and_stops_on_sigterm_within_5s() {
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &http_probe("self", &format!("http://127.0.0.1:{port}/healthz")),
    );
    let log = dir.path().join("daemon.log");
    let mut cmd = Command::new(BIN);
    cmd.args([
        "--config",
        dir.path().to_str().unwrap(),
        "--log-format",
        "json",
        "run",
        "--listen",
    ])
    .arg(format!("127.0.0.1:{port}"))
    .stdout(Stdio::null());
    let mut daemon = astreinte::testbed::Proc::spawn("astreinte", cmd, &log).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    astreinte::app::install_crypto();
    let client = reqwest::Client::new();
    support::wait_for("/healthz", Duration::from_secs(10), || async {
        let r = client.get(format!("{base}/healthz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    // The probe of its own /healthz shows up on /status as healthy.
    let status: serde_json::Value =
        support::wait_for("a probe result", Duration::from_secs(10), || async {
            let v: serde_json::Value = client
                .get(format!("{base}/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["probes"].as_array()?.len() == 1).then_some(v)
        })
        .await;
    assert_eq!(status["probes"][0]["outcome"], "healthy", "{status}");
    let ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    daemon.signal(rustix::process::Signal::TERM);
    let started = Instant::now();
    let code = loop {
        if let Some(code) = daemon.try_exit_code() {
            break code;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(code, Some(0));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("astreinte started") && log.contains("astreinte stopped"),
        "{log}"
    );
    // Issue 15 #8: one `target` key per JSON line (tracing's), the probe's is `probe_target`.
    let healthy = log
        .lines()
        .find(|l| l.contains("probe healthy"))
        .unwrap_or_else(|| panic!("no 'probe healthy' line in {log}"));
    assert_eq!(healthy.matches("\"target\":").count(), 1, "{healthy}");
    assert!(healthy.contains("\"probe_target\":\"self\""), "{healthy}");
}

/// Issue 14: while the API server is down, the kube client's own trace layer logged an ERROR
/// line ("failed with error …") for every request, on top of astreinte's line naming what
/// failed (138 in a 50 s outage). Here the API server is down from the start (nothing listens
/// on its port), `RUST_LOG=info` as an operator would set it.
#[tokio::test]
async fn an_unreachable_api_server_is_logged_by_astreinte_not_by_the_kube_client() {
    let port = support::free_port();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    support::kube_api::write_kubeconfig(
        &kubeconfig,
        &format!("http://127.0.0.1:{}", support::free_port()),
    );
    write_config(
        dir.path(),
        &format!(
            "[kubernetes]\nkubeconfig = \"{}\"\n\n[[probe]]\nid = \"nodes\"\nkind = \"node\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n",
            kubeconfig.display()
        ),
    );
    let log = dir.path().join("daemon.log");
    let mut cmd = Command::new(BIN);
    cmd.args(["--config", dir.path().to_str().unwrap(), "run", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST")
        .stdout(Stdio::null());
    let mut daemon = astreinte::testbed::Proc::spawn("astreinte", cmd, &log).unwrap();
    astreinte::app::install_crypto();
    let client = reqwest::Client::new();
    // Three node probe runs have failed to reach the API server.
    support::wait_for(
        "three failed node probe runs",
        Duration::from_secs(20),
        || async {
            let text = client
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            let runs: f64 = text
                .lines()
                .filter(|l| l.starts_with("astreinte_probe_runs_total{") && l.contains("\"nodes\""))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum();
            (runs >= 3.0).then_some(())
        },
    )
    .await;
    daemon.stop(Duration::from_secs(5));
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("failed with error"), "{log}");
    assert!(
        log.contains("nodes"),
        "astreinte's own lines name the probe:\n{log}"
    );
}
