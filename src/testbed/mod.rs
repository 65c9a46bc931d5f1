//! Testbed: real servers from Debian packages (etcd, Patroni, PostgreSQL, Redis, Prometheus,
//! Alertmanager) started on 127.0.0.1 with free ports, for the integration tests and for
//! `astreinte demo`, and a headless Chromium to look at the status page.
//! Each server is a [`Proc`] in its own process group, killed with its group when dropped, so
//! exactly the processes started here are stopped, even when a test panics.

pub mod alertmanager;
pub mod chromium;
pub mod daemon;
pub mod etcd;
pub mod patroni;
mod patroni_member;
pub mod pg_user;
pub mod postgres;
mod process;
pub mod procfs;
pub mod prometheus;
pub mod redis;

use std::future::Future;
use std::net::TcpListener;
use std::time::{Duration, Instant};

pub use etcd::Etcd;
pub use patroni::PatroniCluster;
pub use patroni_member::{Credentials, Member};
pub use postgres::PgServer;
pub use process::Proc;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{binary} is missing: run `apt-get install -y {package}`")]
    Missing {
        binary: &'static str,
        package: &'static str,
    },
    #[error("cannot start {name}: {source}")]
    Spawn {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|source| Error::Io {
            what: "find a free port on 127.0.0.1".into(),
            source,
        })
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `timeout`.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.into(),
                after: timeout,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Fails with the install command when a binary is missing: tests never skip silently.
pub fn require(binary: &'static str, package: &'static str) -> Result<()> {
    if std::path::Path::new(binary).exists() {
        Ok(())
    } else {
        Err(Error::Missing { binary, package })
    }
}
