//! A standalone PostgreSQL 15 (no Patroni) on a free 127.0.0.1 port, run as the `postgres`
//! user with its data in a temp dir: a primary from `initdb`, and a streaming replica of it
//! from `pg_basebackup -R`. Password (scram) logins over TCP; stopped, children included,
//! on drop.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use tempfile::TempDir;

use super::patroni_member::PG_BIN;
use super::pg_user::{
    command_as_postgres, make_postgres_dir, open_for_traversal, write_postgres_file,
};
use super::{Error, Proc, Result, free_port, procfs, require, wait_for};

/// A running server; its whole process tree is killed on drop.
pub struct PgServer {
    postmaster: Option<Proc>,
    pub port: u16,
    user: String,
    password: String,
    data_dir: PathBuf,
    dir: TempDir,
}

impl PgServer {
    /// `initdb` and start a primary (superuser `postgres` with a made-up password).
    pub async fn primary() -> Result<PgServer> {
        require("/usr/lib/postgresql/15/bin/initdb", "postgresql-15")?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ std::process::id())
            .unwrap_or_default();
        let mut server = PgServer::prepare("postgres".into(), format!("pw-{stamp:x}"))?;
        let pwfile = server.dir.path().join("pwfile");
        write_postgres_file(&pwfile, &server.password, 0o600)?;
        let mut initdb = command_as_postgres(&format!("{PG_BIN}/initdb"))?;
        initdb
            .arg("-D")
            .arg(&server.data_dir)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .args(["--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()));
        run(initdb, "initdb", &server.dir.path().join("initdb.log"))?;
        server.start().await?;
        Ok(server)
    }

    /// A streaming replica of `primary` (`pg_basebackup -R`), started and accepting logins.
    pub async fn replica_of(primary: &PgServer) -> Result<PgServer> {
        let server = PgServer::prepare(primary.user.clone(), primary.password.clone())?;
        let mut backup = command_as_postgres(&format!("{PG_BIN}/pg_basebackup"))?;
        backup
            .arg("-D")
            .arg(&server.data_dir)
            .args(["-h", "127.0.0.1", "-p", &primary.port.to_string()])
            .args(["-U", &primary.user, "-R", "-X", "stream", "--no-sync"])
            .env("PGPASSWORD", &primary.password);
        run(
            backup,
            "pg_basebackup",
            &server.dir.path().join("basebackup.log"),
        )?;
        let mut server = server;
        server.start().await?;
        Ok(server)
    }

    fn prepare(user: String, password: String) -> Result<PgServer> {
        let dir = tempfile::Builder::new()
            .prefix("astreinte-pg-")
            .tempdir()
            .map_err(|source| Error::Io {
                what: "create a temp dir".into(),
                source,
            })?;
        open_for_traversal(dir.path())?;
        make_postgres_dir(&dir.path().join("sockets"), 0o700)?;
        make_postgres_dir(&dir.path().join("data"), 0o700)?;
        Ok(PgServer {
            postmaster: None,
            port: free_port()?,
            user,
            password,
            data_dir: dir.path().join("data"),
            dir,
        })
    }

    async fn start(&mut self) -> Result<()> {
        let mut cmd = command_as_postgres(&format!("{PG_BIN}/postgres"))?;
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path().join("sockets"))
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "max_connections=20", "-c", "shared_buffers=16MB"])
            .args(["-c", "fsync=off", "-c", "wal_level=replica"]);
        self.postmaster = Some(Proc::spawn(
            "postgres",
            cmd,
            &self.dir.path().join("postgres.log"),
        )?);
        let what = format!("postgres on port {} to accept logins", self.port);
        wait_for(&what, Duration::from_secs(30), || async {
            self.connect().await.ok().map(|_| ())
        })
        .await
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The superuser's password (test-only, made up per server).
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A superuser connection over TCP.
    pub async fn connect(&self) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(2));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::Other(format!("connect to postgres: {e}")))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The postmaster and its children, to check after drop that none is left.
    pub fn processes(&self) -> Vec<procfs::ProcInfo> {
        match procfs::postmaster(&self.data_dir) {
            Some(pm) => {
                let mut all = procfs::children_matching(pm.pid, "");
                all.push(pm);
                all
            }
            None => Vec::new(),
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if let Some(pm) = procfs::postmaster(&self.data_dir) {
            procfs::kill_postmaster(&pm);
        }
        if let Some(mut p) = self.postmaster.take() {
            p.kill();
        }
    }
}

/// Runs a setup command to completion, its output in `log`.
fn run(mut cmd: Command, name: &str, log: &Path) -> Result<()> {
    let io = |what: String| move |source| Error::Io { what, source };
    let out = std::fs::File::create(log).map_err(io(format!("create {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io(format!("clone {}", log.display())))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|source| Error::Spawn {
            name: name.to_owned(),
            source,
        })?;
    if status.success() {
        Ok(())
    } else {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        Err(Error::Other(format!(
            "{name} failed ({status}): {}",
            text.trim()
        )))
    }
}
