//! The `astreinte` binary running against a small world with a history: probe `api` points at
//! a closed port (its P1 incident stays open), probe `cache` failed and recovered (its incident
//! is resolved, with a post-mortem draft), rule `restart-api` decided in dry-run.

use std::time::Duration;

use astreinte::testbed::daemon::Daemon;
use serde_json::Value;

use super::http_target::HttpTarget;

pub const BIN: &str = env!("CARGO_BIN_EXE_astreinte");

pub struct Scenario {
    pub dir: tempfile::TempDir,
    pub target: HttpTarget,
    pub daemon: Daemon,
    pub client: reqwest::Client,
    /// The open incident of `api` and the resolved one of `cache`.
    pub open_id: String,
    pub resolved_id: String,
}

impl Scenario {
    pub async fn start() -> Scenario {
        Self::start_with(|_| String::new()).await
    }

    /// With more `[[probe]]` tables (given the HTTP target) after `api` and `cache`.
    pub async fn start_with(extra_probes: impl Fn(&HttpTarget) -> String) -> Scenario {
        let target = HttpTarget::start().await;
        target
            .status
            .store(500, std::sync::atomic::Ordering::SeqCst);
        let (port, closed) = (super::free_port(), super::free_port());
        let dir = tempfile::tempdir().unwrap();
        let journal = dir.path().join("journal.json");
        std::fs::write(
            dir.path().join("probes.toml"),
            format!(
                r#"[server]
listen = "0.0.0.0:{port}"

[journal]
path = "{journal}"

[incidents]
green_period = "2s"

[[probe]]
id = "api"
kind = "http"
url = "http://127.0.0.1:{closed}/health"
interval = "1s"
timeout = "800ms"

[[probe]]
id = "cache"
kind = "http"
url = "{cache}"
interval = "1s"
timeout = "800ms"
{extra}"#,
                journal = journal.display(),
                cache = target.url("/switchable"),
                extra = extra_probes(&target),
            ),
        )
        .unwrap();
        std::fs::write(
            dir.path().join("remediations.toml"),
            format!(
                r#"[policy]
mode = "dry-run"
timezone = "Europe/Paris"

[[rule]]
id = "restart-api"
trigger = {{ probe = "api", min_level = "P2" }}
action = {{ kind = "http", method = "POST", url = "http://127.0.0.1:{closed}/restart" }}
budget = {{ max = 1, per = "1h" }}
"#
            ),
        )
        .unwrap();
        let daemon = Daemon::start(BIN.as_ref(), dir.path(), port).await.unwrap();
        let client = reqwest::Client::new();
        let mut s = Scenario {
            dir,
            target,
            daemon,
            client,
            open_id: String::new(),
            resolved_id: String::new(),
        };
        // Default damping: two failures in a row, one second apart.
        let open = s
            .wait_incidents("incidents of api and cache", |v| {
                let open = keys(&v["open"]);
                open.contains(&"api".to_owned()) && open.contains(&"cache".to_owned())
            })
            .await;
        s.open_id = id_of(&open["open"], "api");
        s.target
            .status
            .store(200, std::sync::atomic::Ordering::SeqCst);
        // Green for 2 s, then resolved with a post-mortem draft.
        let resolved = s
            .wait_incidents("the cache incident resolved", |v| {
                v["recent"].as_array().is_some_and(|r| {
                    r.iter()
                        .any(|i| i["key"] == "cache" && i["postmortem"].is_string())
                })
            })
            .await;
        s.resolved_id = id_of(&resolved["recent"], "cache");
        s
    }

    pub async fn json(&self, path: &str) -> Option<Value> {
        let r = self.client.get(self.daemon.url(path)).send().await.ok()?;
        r.json().await.ok()
    }

    async fn wait_incidents(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(40);
        let mut last = Value::Null;
        while std::time::Instant::now() < deadline {
            if let Some(v) = self.json("/incidents").await {
                if done(&v) {
                    return v;
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!(
            "timed out after 40 s waiting for {what}; /incidents: {last}; log: {}",
            std::fs::read_to_string(&self.daemon.log).unwrap_or_default()
        )
    }

    /// Runs the binary with `args` (after `--config DIR`); returns (exit code, stdout, stderr).
    pub async fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = tokio::process::Command::new(BIN)
            .arg("--config")
            .arg(self.dir.path())
            .args(args)
            .output()
            .await
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn keys(incidents: &Value) -> Vec<String> {
    let mut k: Vec<String> = incidents
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i["key"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    k.sort();
    k
}

fn id_of(incidents: &Value, key: &str) -> String {
    incidents
        .as_array()
        .and_then(|a| a.iter().find(|i| i["key"] == key))
        .and_then(|i| i["id"].as_str())
        .unwrap_or_else(|| panic!("no incident for {key} in {incidents}"))
        .to_owned()
}
