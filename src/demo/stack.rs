//! The servers of the demo, from the same testbed code the tests use: a 3-member Patroni
//! cluster on PostgreSQL 15 with etcd, and a Redis master with one replica, all on 127.0.0.1
//! with free ports, under the demo directory. Dropping the stack kills every one of them.

use std::path::Path;
use std::time::Duration;

use crate::testbed::procfs::ProcInfo;
use crate::testbed::redis::RedisPair;
use crate::testbed::{self, PatroniCluster};

use super::Result;

/// The Patroni member names.
pub const MEMBERS: [&str; 3] = ["pg1", "pg2", "pg3"];

/// The running stack. Fields drop in order: Patroni (members, then etcd), then Redis.
pub struct Stack {
    pub patroni: PatroniCluster,
    pub redis: RedisPair,
    /// The dead port the Redis replica was pointed at, while it is.
    replica_broken: Option<u16>,
}

impl Stack {
    /// Starts Redis, then etcd and Patroni, and waits until every replica streams.
    pub async fn start(dir: &Path) -> Result<Stack> {
        let redis = RedisPair::start(dir, None).await?;
        let patroni = PatroniCluster::start_in(dir, &MEMBERS).await?;
        Ok(Stack {
            patroni,
            redis,
            replica_broken: None,
        })
    }

    /// The member that leads now, by its own `/patroni`.
    pub async fn leader(&self) -> Option<String> {
        self.patroni.leaders().await?.into_iter().next()
    }

    /// A node crash of the leader (Patroni and postgres SIGKILLed); returns its name.
    pub async fn kill_leader(&mut self) -> Result<String> {
        let leader = self
            .leader()
            .await
            .ok_or_else(|| testbed::Error::Other("no member leads right now".into()))?;
        self.patroni.crash(&leader)?;
        Ok(leader)
    }

    /// Starts the Patroni of every member that is not running (a rebooted node rejoins as a
    /// replica); returns their names.
    pub fn restart_stopped_members(&mut self) -> Result<Vec<String>> {
        let mut started = Vec::new();
        for name in MEMBERS {
            let member = self.patroni.member_mut(name)?;
            if !member.is_patroni_running() {
                member.start()?;
                started.push(name.to_owned());
            }
        }
        Ok(started)
    }

    /// Points the Redis replica at a dead port (`master_link_status:down`); returns the port.
    pub async fn break_replica(&mut self) -> Result<u16> {
        let port = self.redis.point_replica_at_dead_port().await?;
        self.replica_broken = Some(port);
        Ok(port)
    }

    /// Points the replica back at its master, if it was broken; waits for the link.
    pub async fn restore_replica(&mut self) -> Result<bool> {
        if self.replica_broken.take().is_none() {
            return Ok(false);
        }
        self.redis.restore_replica().await?;
        Ok(true)
    }

    /// Waits until the Patroni cluster is healthy again (one leader, replicas streaming).
    pub async fn wait_patroni_healthy(&self, timeout: Duration) -> Result<String> {
        Ok(self.patroni.wait_healthy(timeout).await?)
    }

    /// Every process of the Patroni side now (etcd, Patroni, postmasters and children).
    pub fn processes(&self) -> Vec<ProcInfo> {
        self.patroni.processes()
    }
}
