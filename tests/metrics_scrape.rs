//! astreinte's own `/metrics`, proven with the real tools: the `astreinte` binary runs with a
//! small config, a real Prometheus scrapes it, the series are queried back through
//! Prometheus' HTTP API, `promtool check metrics` lints the exposition, and SIGTERM stops
//! the daemon cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use astreinte::testbed::prometheus::{Prometheus, ScrapeJob};
use rustix::process::{Pid, Signal, kill_process};
use support::http_target::HttpTarget;

/// The daemon; killed if the test fails before it is stopped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_daemon(config: &std::path::Path, port: u16, log: &std::path::Path) -> Daemon {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_astreinte"))
        .args(["--log-format", "json", "run", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Daemon(child)
}

/// promtool 2.42 reads an OpenMetrics counter's `_total` sample as a family without help
/// text; that is the only finding allowed.
fn is_known_quirk(line: &str) -> bool {
    line.strip_suffix(" no help text")
        .is_some_and(|name| name.ends_with("_total") && !name.contains(' '))
}

#[tokio::test]
async fn prometheus_scrapes_astreinte_and_promtool_accepts_it() {
    support::require("/usr/bin/prometheus", "prometheus");
    support::require("/usr/bin/promtool", "prometheus");
    astreinte::app::install_crypto();
    let target = HttpTarget::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("probes.toml"),
        format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
             [[probe]]\nid = \"web\"\nkind = \"http\"\nurl = \"{}\"\n\n\
             [[probe]]\nid = \"port\"\nkind = \"tcp\"\naddress = \"{}\"\n",
            target.url("/ok"),
            target.addr
        ),
    )
    .unwrap();
    std::fs::write(config.join("remediations.toml"), "").unwrap();
    let port = support::free_port();
    let mut daemon = start_daemon(&config, port, &dir.path().join("astreinte.log"));
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    support::wait_for("astreinte /readyz", Duration::from_secs(15), || async {
        let r = http.get(format!("{base}/readyz")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;

    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let job = ScrapeJob::new("astreinte", &[format!("127.0.0.1:{port}")]);
    let prometheus = Prometheus::start(&prom_dir, &[job]).await.unwrap();
    prometheus
        .wait_up("astreinte", Duration::from_secs(30))
        .await
        .unwrap();
    for expr in [
        r#"probe_success{job="astreinte",probe="web"}"#,
        r#"astreinte_probe_runs_total{job="astreinte",probe="port",result="healthy"}"#,
    ] {
        let series = support::wait_for(expr, Duration::from_secs(15), || async {
            let s = prometheus.query(expr).await.ok()?;
            (!s.is_empty()).then_some(s)
        })
        .await;
        assert!(series[0].1 >= 1.0, "{expr}: {series:?}");
    }

    // promtool lints the exposition as served.
    let body = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("astreinte_probe_runs_total{"), "{body}");
    let mut promtool = Command::new("/usr/bin/promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Exit 0 is clean, 3 is lint findings only; 1 would be a parse error.
    assert!(matches!(out.status.code(), Some(0 | 3)), "{out:?}");
    let unexpected: Vec<&str> = findings
        .lines()
        .filter(|l| !l.trim().is_empty() && !is_known_quirk(l.trim()))
        .collect();
    assert!(unexpected.is_empty(), "promtool findings: {unexpected:?}");

    // SIGTERM: a clean exit, 0, within 5 s.
    let pid = Pid::from_child(&daemon.0);
    kill_process(pid, Signal::TERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "astreinte still running 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn the_quirk_matcher_is_narrow() {
    assert!(is_known_quirk("astreinte_probe_runs_total no help text"));
    assert!(!is_known_quirk("astreinte_probe_runs no help text"));
    assert!(!is_known_quirk(
        "astreinte_x_total counter metrics should have \"_total\" suffix"
    ));
}
