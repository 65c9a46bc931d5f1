//! One member of a test Patroni cluster: its YAML config, its Patroni process (run as the
//! `postgres` user) and the postmaster Patroni starts in a session of its own, which is why
//! stopping a member kills two process groups.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::Signal;

use super::pg_user::{command_as_postgres, make_postgres_dir, write_postgres_file};
use super::procfs::{self, ProcInfo};
use super::{Error, Proc, Result, free_port, wait_for};

pub const PATRONI: &str = "/usr/bin/patroni";
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// User names and passwords shared by every member (made up per cluster; test-only).
#[derive(Debug, Clone)]
pub struct Credentials {
    pub superuser: (String, String),
    pub replication: (String, String),
    /// Basic auth for the REST API's unsafe endpoints (POST /switchover…).
    pub rest: (String, String),
}

/// What every member's config shares.
#[derive(Debug, Clone)]
pub(super) struct Shared {
    pub scope: String,
    pub etcd: String,
    pub credentials: Credentials,
    pub maximum_lag_on_failover: u64,
}

/// A member: its ports, directory and Patroni process (None while killed).
pub struct Member {
    pub name: String,
    pub rest_port: u16,
    pub pg_port: u16,
    dir: PathBuf,
    patroni: Option<Proc>,
}

impl Member {
    /// Creates the member's directory and config; does not start it.
    pub(super) fn prepare(root: &Path, name: &str, shared: &Shared) -> Result<Member> {
        let dir = root.join(name);
        make_postgres_dir(&dir, 0o700)?;
        let member = Member {
            name: name.to_owned(),
            rest_port: free_port()?,
            pg_port: free_port()?,
            dir,
            patroni: None,
        };
        write_postgres_file(&member.config_path(), &member.yaml(shared), 0o600)?;
        Ok(member)
    }

    pub fn rest_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rest_port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("patroni.log")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.join("patroni.yml")
    }

    /// Starts (or restarts) Patroni; it starts, bootstraps or rejoins postgres by itself.
    pub fn start(&mut self) -> Result<()> {
        if self.patroni.as_mut().is_some_and(Proc::is_running) {
            return Ok(());
        }
        let mut cmd = command_as_postgres(PATRONI)?;
        cmd.arg(self.config_path())
            .env("HOME", &self.dir)
            .env("LC_ALL", "C.UTF-8");
        self.patroni = Some(Proc::spawn(
            &format!("patroni {}", self.name),
            cmd,
            &self.log_path(),
        )?);
        Ok(())
    }

    pub fn is_patroni_running(&mut self) -> bool {
        self.patroni.as_mut().is_some_and(Proc::is_running)
    }

    /// The postmaster, if one runs on this member's data directory.
    pub fn postmaster(&self) -> Option<ProcInfo> {
        procfs::postmaster(&self.data_dir())
    }

    /// SIGKILL Patroni only: its postgres keeps running (and stays primary if it was).
    pub fn kill_patroni(&mut self) {
        if let Some(mut p) = self.patroni.take() {
            p.kill();
        }
    }

    /// SIGKILL the postmaster and every child of it (see [`procfs::kill_postmaster`]).
    pub fn kill_postgres(&self) {
        if let Some(pm) = self.postmaster() {
            procfs::kill_postmaster(&pm);
        }
    }

    /// A node crash: Patroni and postgres die at once, without a word to the DCS.
    pub fn crash(&mut self) {
        self.kill_patroni();
        self.kill_postgres();
    }

    /// Every process this member runs right now: Patroni's group, the postmaster and its
    /// children.
    pub fn processes(&self) -> Vec<ProcInfo> {
        let mut all: Vec<ProcInfo> = match &self.patroni {
            Some(p) => procfs::processes_in_groups(&[p.pid()]),
            None => Vec::new(),
        };
        if let Some(pm) = self.postmaster() {
            all.extend(procfs::children_matching(pm.pid, ""));
            all.push(pm);
        }
        all
    }

    /// Freezes this replica's walreceiver (SIGSTOP) and returns its pid; waits up to 10 s for
    /// one to exist.
    pub async fn freeze_walreceiver(&self) -> Result<u32> {
        let pid = wait_for(
            &format!("the walreceiver of {}", self.name),
            Duration::from_secs(10),
            || async {
                let pm = self.postmaster()?;
                procfs::children_matching(pm.pid, "walreceiver")
                    .first()
                    .map(|p| p.pid)
            },
        )
        .await?;
        if procfs::signal(pid, Signal::STOP) {
            Ok(pid)
        } else {
            Err(Error::Other(format!("cannot SIGSTOP walreceiver {pid}")))
        }
    }

    /// The member's Patroni config: short timings, etcd v3, REST auth, local postgres.
    fn yaml(&self, shared: &Shared) -> String {
        let dir = self.dir.display();
        let Credentials {
            superuser: (su_user, su_pass),
            replication: (rep_user, rep_pass),
            rest: (rest_user, rest_pass),
        } = &shared.credentials;
        format!(
            r#"scope: {scope}
name: {name}
log:
  level: INFO
restapi:
  listen: 127.0.0.1:{rest}
  connect_address: 127.0.0.1:{rest}
  authentication:
    username: {rest_user}
    password: {rest_pass}
etcd3:
  hosts: {etcd}
bootstrap:
  dcs:
    ttl: 10
    loop_wait: 2
    retry_timeout: 3
    maximum_lag_on_failover: {max_lag}
    postgresql:
      use_pg_rewind: true
      remove_data_directory_on_rewind_failure: true
      remove_data_directory_on_diverged_timelines: true
      parameters:
        wal_level: replica
        hot_standby: "on"
        wal_log_hints: "on"
        max_connections: 40
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
        shared_buffers: 16MB
        fsync: "off"
  initdb:
    - encoding: UTF8
    - locale: C.UTF-8
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {dir}/data
  bin_dir: {bin}
  pgpass: {dir}/pgpass
  authentication:
    superuser:
      username: {su_user}
      password: {su_pass}
    replication:
      username: {rep_user}
      password: {rep_pass}
  parameters:
    unix_socket_directories: {dir}
  pg_hba:
    - local all all trust
    - host all all 127.0.0.1/32 scram-sha-256
    - host replication {rep_user} 127.0.0.1/32 scram-sha-256
"#,
            scope = shared.scope,
            name = self.name,
            rest = self.rest_port,
            etcd = shared.etcd,
            max_lag = shared.maximum_lag_on_failover,
            pg = self.pg_port,
            bin = PG_BIN,
        )
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        // Patroni first, so that it cannot start postgres again behind our back.
        self.crash();
    }
}
