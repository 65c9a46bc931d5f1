//! A single-node etcd (v3 API, the Debian `etcd-server` package) on free 127.0.0.1 ports,
//! as the DCS of a test Patroni cluster. It can be frozen (SIGSTOP) to simulate a lost DCS.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rustix::process::Signal;

use super::{Proc, Result, free_port, require, wait_for};

pub const ETCD: &str = "/usr/bin/etcd";

/// A running etcd; stopped with its process group when dropped.
pub struct Etcd {
    proc: Proc,
    pub client_port: u16,
    pub peer_port: u16,
}

impl Etcd {
    /// Starts etcd with its data under `dir/etcd` and waits until `/health` says so (20 s).
    pub async fn start(dir: &Path) -> Result<Etcd> {
        require(ETCD, "etcd-server")?;
        crate::app::install_crypto();
        let client_port = free_port()?;
        let peer_port = free_port()?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = Command::new(ETCD);
        cmd.arg("--name")
            .arg("etcd0")
            .arg("--data-dir")
            .arg(dir.join("etcd"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("etcd0={peer}")])
            .args(["--initial-cluster-state", "new"])
            .args(["--log-level", "warn"])
            // The Debian unit sets this; without it etcd 3.4 warns on every start.
            .env("ETCD_UNSUPPORTED_ARCH", std::env::consts::ARCH);
        let proc = Proc::spawn("etcd", cmd, &dir.join("etcd.log"))?;
        let etcd = Etcd {
            proc,
            client_port,
            peer_port,
        };
        let health = format!("{client}/health");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .map_err(|e| super::Error::Other(format!("http client: {e}")))?;
        wait_for("etcd /health", Duration::from_secs(20), || {
            let http = http.clone();
            let health = health.clone();
            async move {
                let body = http.get(&health).send().await.ok()?.text().await.ok()?;
                body.contains("\"health\":\"true\"").then_some(())
            }
        })
        .await?;
        Ok(etcd)
    }

    /// `127.0.0.1:PORT`, as Patroni's `etcd3.hosts` wants it.
    pub fn client_address(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    /// Freezes etcd (SIGSTOP): connections are accepted by the kernel but never answered.
    pub fn freeze(&self) {
        self.proc.signal(Signal::STOP);
    }

    /// Thaws a frozen etcd (SIGCONT).
    pub fn thaw(&self) {
        self.proc.signal(Signal::CONT);
    }

    /// Kills etcd now (it is also killed on drop).
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}
