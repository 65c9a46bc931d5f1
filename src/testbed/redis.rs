//! A Redis master and one replica (redis-server 7 from Debian) on free ports, and the faults
//! the probe tests inject: a replica pointed at a dead port, a killed master, a restart.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use redis::{AsyncConnectionConfig, ConnectionAddr, IntoConnectionInfo};

use super::{Error, Proc, Result, free_port, require, wait_for};

const BINARY: &str = "/usr/bin/redis-server";
const PACKAGE: &str = "redis-server";
/// How long a server may take to answer PING, or a replica to link.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A master and a replica. Both servers are killed when it drops.
pub struct RedisPair {
    dir: PathBuf,
    password: Option<String>,
    pub master_port: u16,
    pub replica_port: u16,
    master: Proc,
    replica: Proc,
}

impl RedisPair {
    /// Starts a master and a replica under `dir` (one sub-directory each) and waits until the
    /// replica reports `master_link_status:up`. With `password`, both require it
    /// (`--requirepass`) and the replica uses it to reach the master (`--masterauth`).
    pub async fn start(dir: &Path, password: Option<&str>) -> Result<RedisPair> {
        require(BINARY, PACKAGE)?;
        let master_port = free_port()?;
        let replica_port = free_port()?;
        let password = password.map(str::to_owned);
        let master = spawn(dir, "master", master_port, None, password.as_deref())?;
        let replica = spawn(
            dir,
            "replica",
            replica_port,
            Some(master_port),
            password.as_deref(),
        )?;
        let pair = RedisPair {
            dir: dir.to_path_buf(),
            password,
            master_port,
            replica_port,
            master,
            replica,
        };
        pair.wait_linked().await?;
        Ok(pair)
    }

    pub fn master_addr(&self) -> String {
        format!("127.0.0.1:{}", self.master_port)
    }

    pub fn replica_addr(&self) -> String {
        format!("127.0.0.1:{}", self.replica_port)
    }

    /// Waits until the replica's link to the master is up.
    pub async fn wait_linked(&self) -> Result<()> {
        let what = format!("redis replica :{} linked to its master", self.replica_port);
        wait_for(&what, START_TIMEOUT, || async {
            let info = self.info(self.replica_port, "replication").await.ok()?;
            info.contains("master_link_status:up").then_some(())
        })
        .await
    }

    /// `REPLICAOF 127.0.0.1 <dead port>` on the replica; returns the dead port.
    pub async fn point_replica_at_dead_port(&self) -> Result<u16> {
        let dead = free_port()?;
        self.replicaof(dead).await?;
        Ok(dead)
    }

    /// `REPLICAOF` the master again, and waits for the link.
    pub async fn restore_replica(&self) -> Result<()> {
        self.replicaof(self.master_port).await?;
        self.wait_linked().await
    }

    /// SIGKILL the master (a crash).
    pub fn kill_master(&mut self) {
        self.master.kill();
    }

    /// Starts the master again on its port (empty: it has no persistence) and waits until the
    /// replica has linked to it again.
    pub async fn restart_master(&mut self) -> Result<()> {
        self.master.kill();
        self.master = spawn(
            &self.dir,
            "master",
            self.master_port,
            None,
            self.password.as_deref(),
        )?;
        self.wait_linked().await
    }

    /// SIGKILL the replica.
    pub fn kill_replica(&mut self) {
        self.replica.kill();
    }

    /// Starts the replica again and waits until it has linked to the master.
    pub async fn restart_replica(&mut self) -> Result<()> {
        self.replica.kill();
        self.replica = spawn(
            &self.dir,
            "replica",
            self.replica_port,
            Some(self.master_port),
            self.password.as_deref(),
        )?;
        self.wait_linked().await
    }

    /// Runs one command on the instance at `port` over a fresh connection.
    pub async fn command(&self, port: u16, args: &[&str]) -> Result<redis::Value> {
        let mut con = connect(port, self.password.as_deref()).await?;
        let mut cmd = redis::Cmd::new();
        for a in args {
            cmd.arg(*a);
        }
        cmd.query_async(&mut con)
            .await
            .map_err(|e| Error::Other(format!("redis :{port} {}: {e}", args.join(" "))))
    }

    /// `INFO <section>` of the instance at `port`.
    pub async fn info(&self, port: u16, section: &str) -> Result<String> {
        match self.command(port, &["INFO", section]).await? {
            redis::Value::BulkString(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            redis::Value::VerbatimString { text, .. } => Ok(text),
            other => Err(Error::Other(format!("INFO answered {other:?}"))),
        }
    }

    async fn replicaof(&self, port: u16) -> Result<()> {
        let port = port.to_string();
        self.command(self.replica_port, &["REPLICAOF", "127.0.0.1", &port])
            .await
            .map(drop)
    }
}

fn spawn(
    dir: &Path,
    name: &str,
    port: u16,
    master: Option<u16>,
    password: Option<&str>,
) -> Result<Proc> {
    let data = dir.join(format!("redis-{name}"));
    std::fs::create_dir_all(&data).map_err(|source| Error::Io {
        what: format!("create {}", data.display()),
        source,
    })?;
    let mut cmd = Command::new(BINARY);
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--repl-diskless-sync-delay", "0", "--daemonize", "no"])
        .arg("--dir")
        .arg(&data);
    if let Some(m) = master {
        cmd.args(["--replicaof", "127.0.0.1", &m.to_string()]);
    }
    if let Some(p) = password {
        cmd.args(["--requirepass", p, "--masterauth", p]);
    }
    let log = dir.join(format!("redis-{name}.log"));
    Proc::spawn(&format!("redis-{name}"), cmd, &log)
}

/// A fresh connection to `127.0.0.1:port`, retried until the server answers.
async fn connect(port: u16, password: Option<&str>) -> Result<redis::aio::MultiplexedConnection> {
    let mut settings = redis::RedisConnectionInfo::default().set_skip_set_lib_name();
    if let Some(p) = password {
        settings = settings.set_password(p);
    }
    let info = ConnectionAddr::Tcp("127.0.0.1".into(), port)
        .into_connection_info()
        .map_err(|e| Error::Other(format!("redis address: {e}")))?
        .set_redis_settings(settings);
    let client = redis::Client::open(info).map_err(|e| Error::Other(format!("redis: {e}")))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    let what = format!("redis-server on :{port}");
    wait_for(&what, START_TIMEOUT, || async {
        client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .ok()
    })
    .await
}
