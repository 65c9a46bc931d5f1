//! The `astreinte` daemon itself as a process (`run --config DIR --listen 127.0.0.1:PORT`),
//! for the tests that look at it from outside (status page, CLI clients) and for a demo.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Error, Proc, Result, wait_for};

/// A running daemon; dropping it kills it.
pub struct Daemon {
    pub proc: Proc,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `binary` listening on 127.0.0.1:`port` with the configuration in `config_dir`
    /// (its log goes there too) and waits until `/healthz` answers.
    pub async fn start(binary: &Path, config_dir: &Path, port: u16) -> Result<Daemon> {
        let log = config_dir.join("astreinte.log");
        let mut cmd = Command::new(binary);
        cmd.arg("--config")
            .arg(config_dir)
            .args(["--log-format", "json", "run", "--listen"])
            .arg(format!("127.0.0.1:{port}"));
        let proc = Proc::spawn("astreinte", cmd, &log)?;
        let base = format!("http://127.0.0.1:{port}");
        crate::app::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Other(format!("cannot build an HTTP client: {e}")))?;
        let healthz = format!("{base}/healthz");
        wait_for(&healthz, Duration::from_secs(20), || async {
            let r = client.get(&healthz).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await?;
        Ok(Daemon { proc, base, log })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}
