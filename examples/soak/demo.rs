//! The demo stack under soak: the release `astreinte demo --dir D --port P` as a child
//! process (a `testbed::Proc`; the daemon runs inside it, so its pid is the daemon's), faults
//! sent through the library's own `demo::fault::send`, its `/status`, `/metrics` and journal,
//! and the stop: SIGINT (the demo stops its stack), then a check that nothing it started runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use astreinte::demo::{ControlFile, Fault};
use astreinte::journal::JournalDoc;
use astreinte::testbed::procfs::{self, ProcInfo};
use astreinte::testbed::{Proc, free_port, wait_for};
use rustix::process::Signal;
use serde_json::Value;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long the demo may take to stop its stack after SIGINT.
const STOP_GRACE: Duration = Duration::from_secs(60);

pub struct Demo {
    proc: Proc,
    pub dir: PathBuf,
    pub daemon: String,
    client: reqwest::Client,
}

impl Demo {
    /// Starts the demo in `dir` (stdout and stderr into `logs`) and waits until its daemon
    /// answers `/healthz` and every probe has run.
    pub async fn start(bin: &Path, dir: &Path, logs: &Path) -> Result<Demo, BoxError> {
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let mut cmd = Command::new(bin);
        cmd.args(["demo", "--port", &port.to_string(), "--dir"])
            .arg(dir)
            .env("RUST_LOG", "info")
            .env_remove("ASTREINTE_CONFIG");
        let proc = Proc::spawn_with_stdout(
            "astreinte demo",
            cmd,
            &logs.join("demo.out"),
            &logs.join("demo.err"),
        )?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        let mut demo = Demo {
            proc,
            dir: dir.canonicalize()?,
            daemon: format!("http://127.0.0.1:{port}"),
            client,
        };
        let (c, url) = (demo.client.clone(), demo.url("/status"));
        let ready = wait_for("the demo's daemon", Duration::from_secs(240), || {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let v: Value = c.get(&url).send().await.ok()?.json().await.ok()?;
                all_green(v["probes"].as_array()?).then_some(())
            }
        })
        .await;
        if let Err(e) = ready {
            demo.stop();
            return Err(format!("{e}; see {}/demo.err", logs.display()).into());
        }
        Ok(demo)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.daemon)
    }

    /// The configuration the demo wrote (its rules, budgets and cooldowns).
    pub fn config(&self) -> Result<astreinte::config::Config, BoxError> {
        Ok(astreinte::config::load_dir(&self.dir)?)
    }

    /// Applies `fault` through the demo's control endpoint; returns its first line.
    pub async fn fault(&self, fault: Fault) -> Result<String, BoxError> {
        let control = ControlFile::locate(Some(&self.dir))?;
        let text = astreinte::demo::fault::send(Some(&control.dir), fault).await?;
        Ok(text.lines().next().unwrap_or_default().to_owned())
    }

    pub async fn text(&self, path: &str) -> Option<String> {
        let r = self.client.get(self.url(path)).send().await.ok()?;
        r.text().await.ok()
    }

    /// Whether every probe is green (the root disk only has to have run).
    pub async fn green(&self) -> bool {
        let Some(text) = self.text("/status").await else {
            return false;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else {
            return false;
        };
        v["probes"].as_array().is_some_and(|p| all_green(p))
    }

    /// The outcome of one probe in `/status`.
    pub async fn outcome(&self, probe: &str) -> Option<String> {
        let v: Value = serde_json::from_str(&self.text("/status").await?).ok()?;
        let entry = v["probes"]
            .as_array()?
            .iter()
            .find(|p| p["probe"] == probe)?
            .clone();
        entry["outcome"].as_str().map(str::to_owned)
    }

    /// The journal file as the daemon last wrote it.
    pub fn journal(&self) -> Option<JournalDoc> {
        let text = std::fs::read_to_string(self.dir.join("journal.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Every process the demo started, now.
    pub fn processes(&self) -> Vec<ProcInfo> {
        procfs::started_by(self.pid(), &self.dir.to_string_lossy())
    }

    /// SIGINT, then waits for the demo to stop its stack; SIGKILL (of the demo only) past the
    /// grace. Returns whether it stopped by itself.
    pub fn stop(&mut self) -> bool {
        if !self.proc.is_running() {
            return true;
        }
        self.proc.signal(Signal::INT);
        let deadline = std::time::Instant::now() + STOP_GRACE;
        while self.proc.is_running() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        let clean = !self.proc.is_running();
        self.proc.kill();
        clean
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every probe healthy, but the root disk of a build machine, which only has to be probed.
fn all_green(probes: &[Value]) -> bool {
    let green = probes
        .iter()
        .filter(|p| p["probe"] != "root-disk")
        .all(|p| p["outcome"] == "healthy");
    let disk_seen = probes
        .iter()
        .any(|p| p["probe"] == "root-disk" && p["outcome"] != "unknown");
    green && disk_seen
}
