//! One replica of the daemon in a "cluster" (the Kubernetes API test server, possibly behind
//! a [`super::tcp_proxy::TcpProxy`]): the real binary with its own configuration directory,
//! kubeconfig and identity (`POD_NAME`), read from the outside through `/metrics` and
//! `/status`. Killed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use astreinte::testbed::Proc;
use serde_json::Value;

pub struct Replica {
    pub identity: String,
    pub dir: PathBuf,
    pub base: String,
    pub proc: Proc,
}

impl Replica {
    /// Writes `probes.toml` (with `kubeconfig` put in its `[kubernetes]` section by the
    /// caller) and `remediations.toml` in `dir`, and starts the daemon there.
    pub fn start(identity: &str, dir: &Path, probes: &str, remediations: &str) -> Replica {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("probes.toml"), probes).unwrap();
        std::fs::write(dir.join("remediations.toml"), remediations).unwrap();
        let port = super::free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
        cmd.arg("--config")
            .arg(dir)
            .args(["run", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .env("POD_NAME", identity)
            .env("RUST_LOG", "info")
            .env_remove("KUBECONFIG")
            .env_remove("KUBERNETES_SERVICE_HOST");
        let proc = Proc::spawn(
            &format!("astreinte {identity}"),
            cmd,
            &dir.join("astreinte.log"),
        )
        .unwrap();
        Replica {
            identity: identity.to_owned(),
            dir: dir.to_owned(),
            base: format!("http://127.0.0.1:{port}"),
            proc,
        }
    }

    fn client() -> reqwest::Client {
        astreinte::app::install_crypto();
        reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap()
    }

    pub async fn metrics(&self) -> Option<String> {
        let r = Self::client()
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .ok()?;
        r.text().await.ok()
    }

    /// The value of one sample (`name{labels}` exactly as exposed), or `None`.
    pub async fn sample(&self, series: &str) -> Option<f64> {
        sample(&self.metrics().await?, series)
    }

    /// The sum of every sample of a family whose labels contain `filter`.
    pub async fn sum(&self, family: &str, filter: &str) -> Option<f64> {
        let text = self.metrics().await?;
        Some(
            text.lines()
                .filter(|l| l.starts_with(&format!("{family}{{")) && l.contains(filter))
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum(),
        )
    }

    /// The `/status` entry of `probe`.
    pub async fn probe_status(&self, probe: &str) -> Option<Value> {
        let status: Value = Self::client()
            .get(format!("{}/status", self.base))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        status["probes"]
            .as_array()?
            .iter()
            .find(|p| p["probe"] == probe)
            .cloned()
    }

    /// The last lines of its log, to explain a failure.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("astreinte.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// The value of `series` (`name{labels}` or `name`) in an exposition.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
