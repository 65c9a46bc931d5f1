//! A real Alertmanager (Debian `prometheus-alertmanager`) on 127.0.0.1 with a free port, one
//! route to a receiver that sends nothing, and gossip disabled, for the notification tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::{Error, Proc, Result, free_port, require, wait_for};

pub const BINARY: &str = "/usr/bin/prometheus-alertmanager";
pub const PACKAGE: &str = "prometheus-alertmanager";

/// Every alert goes to the `null` receiver (no integration), grouped fast. `{RESOLVE}` is
/// how long an alert sent without `endsAt` stays active.
const CONFIG: &str = "\
global:
  resolve_timeout: {RESOLVE}
route:
  receiver: 'null'
  group_by: ['incident']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: 'null'
";

/// A running Alertmanager; dropping it kills it.
pub struct Alertmanager {
    pub proc: Proc,
    pub port: u16,
    pub log: PathBuf,
}

impl Alertmanager {
    /// Starts it with its config, data and log under `dir`, and waits for `/-/ready`.
    /// `resolve_timeout` is Alertmanager's (5 min in production; tests shorten it).
    pub async fn start(dir: &Path, resolve_timeout: Duration) -> Result<Alertmanager> {
        require(BINARY, PACKAGE)?;
        let io = |what: &str| {
            let what = what.to_owned();
            move |source| Error::Io { what, source }
        };
        let config = dir.join("alertmanager.yml");
        let resolve = format!("{}ms", resolve_timeout.as_millis().max(1));
        std::fs::write(&config, CONFIG.replace("{RESOLVE}", &resolve))
            .map_err(io("write alertmanager.yml"))?;
        let data = dir.join("alertmanager-data");
        std::fs::create_dir_all(&data).map_err(io("create the alertmanager data dir"))?;
        let log = dir.join("alertmanager.log");
        let port = free_port()?;
        let mut cmd = Command::new(BINARY);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn");
        let mut proc = Proc::spawn("alertmanager", cmd, &log)?;
        crate::app::install_crypto();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .map_err(|e| Error::Other(format!("cannot build an HTTP client: {e}")))?;
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        let exited = wait_for("alertmanager /-/ready", Duration::from_secs(20), || {
            let exited = proc.try_exit_code();
            let request = client.get(&ready).send();
            async move {
                if let Some(code) = exited {
                    return Some(Some(code));
                }
                match request.await {
                    Ok(r) if r.status().is_success() => Some(None),
                    _ => None,
                }
            }
        })
        .await?;
        if let Some(code) = exited {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let tail: String = tail.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            return Err(Error::Other(format!(
                "alertmanager exited ({code:?}) before it was ready: {tail}"
            )));
        }
        Ok(Alertmanager { proc, port, log })
    }

    /// `http://127.0.0.1:PORT`, what a receiver's `url` names.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
