//! A real Patroni 3.0.2 cluster on PostgreSQL 15 with a one-node etcd, all on 127.0.0.1 with
//! free ports and data in a temp dir: start, wait until every replica streams, inject the
//! faults the probe tests need (node crash, Patroni-only kill, lost DCS, frozen walreceiver,
//! write load), restart members, and stop everything on drop.

use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use tempfile::TempDir;

use super::etcd::Etcd;
use super::patroni_member::{Credentials, Member, PATRONI, PG_BIN, Shared};
use super::pg_user::open_for_traversal;
use super::{Error, Result, procfs, require, wait_for};

/// The cluster. Fields drop in order: members (Patroni, then postgres), etcd, the directory.
pub struct PatroniCluster {
    members: Vec<Member>,
    etcd: Etcd,
    credentials: Credentials,
    scope: String,
    http: reqwest::Client,
    dir: TempDir,
}

impl PatroniCluster {
    /// Starts etcd and one Patroni member per name, and waits (60 s) until one leader runs
    /// and every replica streams from it.
    pub async fn start(names: &[&str]) -> Result<PatroniCluster> {
        Self::start_in(&std::env::temp_dir(), names).await
    }

    /// Like [`Self::start`], with the cluster's directory created inside `parent` (the demo
    /// keeps everything it starts under one directory).
    pub async fn start_in(parent: &Path, names: &[&str]) -> Result<PatroniCluster> {
        require(PATRONI, "patroni")?;
        crate::app::install_crypto();
        require("/usr/lib/postgresql/15/bin/postgres", "postgresql-15")?;
        let dir = tempfile::Builder::new()
            .prefix("astreinte-patroni-")
            .tempdir_in(parent)
            .map_err(|source| Error::Io {
                what: "create a temp dir".into(),
                source,
            })?;
        open_for_traversal(dir.path())?;
        let etcd = Etcd::start(dir.path()).await?;
        let stamp = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ std::process::id())
            .unwrap_or_default();
        let credentials = Credentials {
            superuser: ("postgres".into(), format!("su-{stamp:x}")),
            replication: ("replicator".into(), format!("rep-{stamp:x}")),
            rest: ("patroni".into(), format!("rest-{stamp:x}")),
        };
        let shared = Shared {
            scope: "astreinte-test".into(),
            etcd: etcd.client_address(),
            credentials: credentials.clone(),
            maximum_lag_on_failover: 1_048_576,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|e| Error::Other(format!("http client: {e}")))?;
        let mut cluster = PatroniCluster {
            members: Vec::new(),
            etcd,
            credentials,
            scope: shared.scope.clone(),
            http,
            dir,
        };
        for name in names {
            let member = Member::prepare(cluster.dir.path(), name, &shared)?;
            cluster.members.push(member);
        }
        // The first member bootstraps alone; the others then clone from it.
        cluster.members[0].start()?;
        let first = names.first().copied().unwrap_or_default();
        let wait_first = cluster
            .wait_until("the first member to lead", Duration::from_secs(40), |c| {
                c.leaders()
            })
            .await;
        if let Err(e) = wait_first {
            return Err(cluster.with_logs(e));
        }
        tracing::debug!(leader = first, "patroni bootstrapped");
        for m in cluster.members.iter_mut().skip(1) {
            m.start()?;
        }
        let ready = cluster.wait_healthy(Duration::from_secs(60)).await;
        ready.map_err(|e| cluster.with_logs(e))?;
        Ok(cluster)
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn pg_bin(&self) -> &'static str {
        PG_BIN
    }

    pub fn member_names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, name: &str) -> Result<&Member> {
        self.members
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::Other(format!("no member {name}")))
    }

    pub fn member_mut(&mut self, name: &str) -> Result<&mut Member> {
        self.members
            .iter_mut()
            .find(|m| m.name == name)
            .ok_or_else(|| Error::Other(format!("no member {name}")))
    }

    /// Every member's REST URL (`http://127.0.0.1:PORT`), in member order.
    /// The `members = [...]` value of a `patroni` probe for this cluster (name and
    /// postgres address given, so gauges and the split-brain SQL check need nothing learned).
    pub fn members_toml(&self) -> String {
        let members: Vec<String> = self
            .members()
            .iter()
            .map(|m| {
                format!(
                    "{{ url = \"{}\", name = \"{}\", postgres = \"127.0.0.1:{}\" }}",
                    m.rest_url(),
                    m.name,
                    m.pg_port
                )
            })
            .collect();
        format!("[{}]", members.join(", "))
    }

    pub fn rest_urls(&self) -> Vec<String> {
        self.members.iter().map(Member::rest_url).collect()
    }

    pub fn pg_port(&self, name: &str) -> Result<u16> {
        Ok(self.member(name)?.pg_port)
    }

    /// Superuser, replication and REST credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub fn etcd(&self) -> &Etcd {
        &self.etcd
    }

    /// A member's `GET /patroni` as JSON, if it answers.
    pub async fn status(&self, name: &str) -> Option<Value> {
        let url = format!("{}/patroni", self.member(name).ok()?.rest_url());
        self.http.get(url).send().await.ok()?.json().await.ok()
    }

    /// Names of the members whose own `/patroni` says running primary.
    pub async fn leaders(&self) -> Option<Vec<String>> {
        let mut leaders = Vec::new();
        for m in &self.members {
            if let Some(s) = self.status(&m.name).await
                && matches!(s["role"].as_str(), Some("master" | "primary"))
                && s["state"] == "running"
            {
                leaders.push(m.name.clone());
            }
        }
        (!leaders.is_empty()).then_some(leaders)
    }

    /// Waits until exactly one member leads, every other member runs on its timeline and
    /// streams from it (the leader's `replication` list names it), and `/cluster` answers.
    /// Returns the leader's name.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<String> {
        self.wait_until("a healthy, fully streaming cluster", timeout, |c| {
            c.healthy_leader()
        })
        .await
    }

    async fn healthy_leader(&self) -> Option<String> {
        let leaders = self.leaders().await?;
        let [leader] = leaders.as_slice() else {
            return None;
        };
        let status = self.status(leader).await?;
        let timeline = status["timeline"].as_u64()?;
        let replication = status["replication"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for m in self.members.iter().filter(|m| &m.name != leader) {
            let s = self.status(&m.name).await?;
            let streaming = replication.iter().any(|r| {
                r["application_name"].as_str() == Some(m.name.as_str()) && r["state"] == "streaming"
            });
            if s["state"] != "running" || s["timeline"].as_u64() != Some(timeline) || !streaming {
                return None;
            }
        }
        let url = format!("{}/cluster", self.member(leader).ok()?.rest_url());
        let cluster: Value = self.http.get(url).send().await.ok()?.json().await.ok()?;
        let listed = cluster["members"].as_array()?;
        let all_running = self.members.iter().all(|m| {
            listed
                .iter()
                .any(|l| l["name"].as_str() == Some(m.name.as_str()) && l["state"] == "running")
        });
        all_running.then(|| leader.clone())
    }

    async fn wait_until<'a, T, F, Fut>(
        &'a self,
        what: &str,
        timeout: Duration,
        check: F,
    ) -> Result<T>
    where
        F: Fn(&'a Self) -> Fut,
        Fut: std::future::Future<Output = Option<T>> + 'a,
    {
        wait_for(what, timeout, || check(self)).await
    }

    /// Appends the end of every member's log to an error, to see why it did not come up.
    fn with_logs(&self, e: Error) -> Error {
        let mut text = e.to_string();
        for m in &self.members {
            let log = std::fs::read_to_string(m.log_path()).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            text.push_str(&format!("\n--- {} log (last lines) ---\n", m.name));
            for line in tail.iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        Error::Other(text)
    }

    /// A node crash: SIGKILL the member's Patroni and its postgres.
    pub fn crash(&mut self, name: &str) -> Result<()> {
        self.member_mut(name)?.crash();
        Ok(())
    }

    /// SIGKILL only the member's Patroni; its postgres keeps running (a primary stays one).
    pub fn kill_patroni(&mut self, name: &str) -> Result<()> {
        self.member_mut(name)?.kill_patroni();
        Ok(())
    }

    /// Starts the member's Patroni again (it rejoins, rewinding or recloning as needed).
    pub fn start_member(&mut self, name: &str) -> Result<()> {
        self.member_mut(name)?.start()
    }

    /// Freezes etcd (SIGSTOP): the DCS stops answering.
    pub fn freeze_dcs(&self) {
        self.etcd.freeze();
    }

    pub fn thaw_dcs(&self) {
        self.etcd.thaw();
    }

    /// Freezes a replica's walreceiver (SIGSTOP); returns its pid for [`Self::thaw_process`].
    pub async fn freeze_walreceiver(&self, name: &str) -> Result<u32> {
        self.member(name)?.freeze_walreceiver().await
    }

    /// SIGCONT a process this cluster froze.
    pub fn thaw_process(&self, pid: u32) {
        procfs::signal(pid, rustix::process::Signal::CONT);
    }

    /// A superuser connection to a member's postgres.
    pub async fn connect(&self, name: &str) -> Result<tokio_postgres::Client> {
        let (user, password) = &self.credentials.superuser;
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.pg_port(name)?)
            .user(user)
            .password(password)
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(5));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| Error::Other(format!("connect to {name}'s postgres: {e}")))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// Writes about `rows` KiB of WAL on `leader` (a table of 1 KiB rows).
    pub async fn write_load(&self, leader: &str, rows: u32) -> Result<()> {
        let client = self.connect(leader).await?;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS astreinte_filler (id bigint, pad text);
             INSERT INTO astreinte_filler SELECT g, repeat('x', 1000) FROM generate_series(1, {rows}) g;"
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::Other(format!("write load on {leader}: {e}")))
    }

    /// Every process the cluster runs now (etcd, Patroni, postmasters and their children),
    /// to check with [`procfs::still_running`] after drop that none is left.
    pub fn processes(&self) -> Vec<procfs::ProcInfo> {
        let mut all = procfs::processes_in_groups(&[self.etcd.pid()]);
        for m in &self.members {
            all.extend(m.processes());
        }
        all
    }
}

impl Drop for PatroniCluster {
    fn drop(&mut self) {
        // A frozen etcd or walreceiver dies of SIGKILL as well; members go first.
        self.members.clear();
        self.etcd.kill();
    }
}
