//! Secrets never leak: recognizable secret values are given to every kind of secret field
//! (bearer token, Redis and PostgreSQL passwords, an action token, a notification token), the
//! daemon runs at trace level through failures, incidents and actions, and every output is
//! scanned: logs, /metrics, /status, /incidents, /decisions, the status page, the journal.
//! Also: the HTTP server refuses path tricks and oversized requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use support::http_target::HttpTarget;

const SECRETS: [(&str, &str); 5] = [
    ("ASTREINTE_T_BEARER", "zq-bearer-8f3a1c"),
    ("ASTREINTE_T_REDIS", "zq-redis-4b7e2d"),
    ("ASTREINTE_T_PG", "zq-postgres-9c1f0a"),
    ("ASTREINTE_T_ACTION", "zq-action-6d2b8e"),
    ("ASTREINTE_T_NOTIFY", "zq-notify-3e9a7f"),
];

#[tokio::test]
async fn secrets_never_appear_in_any_output() {
    astreinte::app::install_crypto();
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let closed = support::free_port();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"

[journal]
path = "{journal}"

[defaults]
interval = "1s"
timeout = "500ms"

[[probe]]
id = "api"
kind = "http"
url = "{api}"
bearer_token = {{ env = "ASTREINTE_T_BEARER" }}

[[probe]]
id = "auth"
kind = "http"
url = "{auth}"
bearer_token = {{ env = "ASTREINTE_T_BEARER" }}

[[probe]]
id = "cache"
kind = "redis"
instances = ["127.0.0.1:{closed}"]
password = {{ env = "ASTREINTE_T_REDIS" }}

[[probe]]
id = "db"
kind = "postgres"
host = "127.0.0.1"
port = {closed}
user = "app"
dbname = "app"
password = {{ env = "ASTREINTE_T_PG" }}
"#,
            journal = dir.path().join("journal.json").display(),
            api = target.url("/switchable"),
            auth = target.url("/auth"),
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        format!(
            r#"
[policy]
mode = "enforce"

[[rule]]
id = "fix-api"
trigger = {{ probe = "api", min_level = "P2" }}
action = {{ kind = "http", method = "POST", url = "{noop}", token = {{ env = "ASTREINTE_T_ACTION" }} }}

[[notify]]
name = "hook"
kind = "webhook"
url = "http://127.0.0.1:{closed}/hook"
token = {{ env = "ASTREINTE_T_NOTIFY" }}
"#,
            noop = target.url("/admin/noop"),
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.args([
        "--config",
        dir.path().to_str().unwrap(),
        "--log-format",
        "json",
        "run",
    ])
    .env("RUST_LOG", "trace");
    for (k, v) in SECRETS {
        cmd.env(k, v);
    }
    let mut daemon = astreinte::testbed::Proc::spawn("astreinte", cmd, &log).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    // Wait until an incident opened and the action ran (the token was used).
    support::wait_for("the action", Duration::from_secs(30), || async {
        (target.admin_calls.load(Ordering::SeqCst) >= 1).then_some(())
    })
    .await;
    // Then the action's end is journalled and the webhook (which uses its token) was tried.
    support::wait_for(
        "the action's result and a notice attempt",
        Duration::from_secs(30),
        || async {
            let journal = std::fs::read_to_string(dir.path().join("journal.json")).ok()?;
            let metrics = client
                .get(format!("{base}/metrics"))
                .send()
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            (journal.contains("\"ended_at\":\"")
                && metrics.contains("astreinte_notifications_total{"))
            .then_some(())
        },
    )
    .await;
    let mut outputs = vec![];
    for path in ["/metrics", "/status", "/incidents", "/decisions", "/"] {
        let body = client
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        outputs.push((path.to_owned(), body));
    }
    // SIGTERM and wait for the exit: the shutdown lines are in the log too.
    daemon.stop(Duration::from_secs(10));
    outputs.push(("log".into(), std::fs::read_to_string(&log).unwrap()));
    outputs.push((
        "journal".into(),
        std::fs::read_to_string(dir.path().join("journal.json")).unwrap(),
    ));
    let (_, logs) = outputs.iter().find(|(n, _)| n == "log").unwrap();
    assert!(
        logs.len() > 10_000,
        "trace logs were written ({} bytes)",
        logs.len()
    );
    for (name, text) in &outputs {
        for (var, secret) in SECRETS {
            assert!(!text.contains(secret), "{var}'s value leaked into {name}");
        }
    }
}

#[tokio::test]
async fn the_server_refuses_path_tricks_and_huge_requests() {
    astreinte::app::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!("[server]\nlisten = \"127.0.0.1:{port}\"\n\n[journal]\npath = \"{}\"\n\n[[probe]]\nid = \"d\"\nkind = \"disk\"\npath = \"/\"\n", dir.path().join("j.json").display()),
    )
    .unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.args(["--config", dir.path().to_str().unwrap(), "run"]);
    let _daemon =
        astreinte::testbed::Proc::spawn("astreinte", cmd, &dir.path().join("log")).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    support::wait_for("/healthz", Duration::from_secs(10), || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .ok()
            .map(|_| ())
    })
    .await;
    for path in [
        "/incidents/..%2F..%2Fetc%2Fpasswd/postmortem",
        "/incidents/../../etc/passwd",
        "/incidents/%00/postmortem",
    ] {
        let r = client.get(format!("{base}{path}")).send().await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(!body.contains("root:"), "{path} served a file");
    }
    // A 10 MB request body to a GET route: refused or ignored, the daemon stays up.
    let big = vec![b'x'; 10 * 1024 * 1024];
    let _ = client.post(format!("{base}/status")).body(big).send().await;
    let r = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // 200 parallel scrapers of /metrics and /status all get an answer.
    let mut tasks = vec![];
    for i in 0..200 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let path = if i % 2 == 0 { "/metrics" } else { "/status" };
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), 200);
    }
}
