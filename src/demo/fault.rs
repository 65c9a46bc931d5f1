//! The faults a newcomer can inject into a running demo from a second terminal
//! (`astreinte demo fault <name>`), what each one does to the stack, and what astreinte then
//! reports: the text printed after each one says where to look next.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::ValueEnum;
use tokio::sync::{MappedMutexGuard, MutexGuard};

use super::control::{ControlFile, Running};
use super::service::{Health, SLOW_LATENCY};
use super::stack::Stack;
use super::{Error, Result};

/// How long after `kill-leader` the crashed node "reboots" and its member rejoins.
pub const REBOOT_AFTER: Duration = Duration::from_secs(25);

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Fault {
    /// A node crash of the Patroni leader (Patroni and PostgreSQL killed); it reboots later.
    KillLeader,
    /// The demo service's /health answers 500 (the enforced rule restarts it).
    BreakApi,
    /// The Redis replica follows a dead port (master_link_down).
    RedisReplicaDown,
    /// The demo service answers over its latency objective.
    SlowApi,
    /// Restore everything: service healthy, Redis replica back, stopped members started.
    Heal,
}

/// Applies `fault` to the running demo; returns what to tell the user.
pub async fn apply(running: &Arc<Running>, fault: Fault) -> Result<String> {
    let d = &running.daemon;
    let look = format!(
        "look at: {d}/ (status page), `astreinte incidents --url {d}`, `astreinte explain --url {d}`"
    );
    match fault {
        Fault::BreakApi => {
            running.service.set(Health::Broken);
            Ok(format!(
                "broke the demo service: /health answers 500.\n\
                 expect: rag-api-health fails (bad_status) → a P1 incident on `rag-api` → the \
                 enforced rule `api-restart` POSTs /admin/restart → verified green → resolved \
                 after 30 s green.\n{look}\n"
            ))
        }
        Fault::SlowApi => {
            running.service.set(Health::Slow);
            Ok(format!(
                "slowed the demo service: /health takes {} ms (objective 300 ms).\n\
                 expect: rag-api-health degraded (slow, ~40 % over) → a P2 incident on `rag-api`; \
                 the dry-run rule `api-scale-up` says after 15 s what it would do. \
                 `astreinte demo fault heal` restores it.\n{look}\n",
                SLOW_LATENCY.as_millis()
            ))
        }
        Fault::RedisReplicaDown => {
            let port = stack(running).await?.break_replica().await?;
            Ok(format!(
                "pointed the Redis replica at a dead port (REPLICAOF 127.0.0.1 {port}).\n\
                 expect: redis degraded (master_link_down) → a P3 incident on `redis`; the dry-run \
                 rule `redis-page` says it would page. `astreinte demo fault heal` restores \
                 it.\n{look}\n"
            ))
        }
        Fault::KillLeader => {
            let leader = stack(running).await?.kill_leader().await?;
            spawn_reboot(running.clone(), leader.clone());
            Ok(format!(
                "crashed the Patroni leader {leader} (Patroni and PostgreSQL SIGKILLed, like a \
                 node crash). Its node \"reboots\" in {} s and rejoins as a replica.\n\
                 expect: pg-cluster leader_unreachable (the DCS still names the dead leader) → a P2 incident on `postgres`, Patroni elects a new \
                 leader by itself within ~10 s (member_down until the reboot), and the dry-run \
                 rule `pg-failover` tells why it holds or what it would do; resolved after 30 s \
                 green.\n{look}\n",
                REBOOT_AFTER.as_secs()
            ))
        }
        Fault::Heal => {
            running.service.set(Health::Healthy);
            let (restarted, replica) = {
                let mut stack = stack(running).await?;
                (
                    stack.restart_stopped_members()?,
                    stack.restore_replica().await?,
                )
            };
            let members = if restarted.is_empty() {
                "every Patroni member runs".to_owned()
            } else {
                format!("restarted Patroni on {}", restarted.join(", "))
            };
            let redis = if replica {
                "the Redis replica follows its master again"
            } else {
                "the Redis replica was fine"
            };
            Ok(format!(
                "healed: the demo service answers 200; {members}; {redis}.\n\
                 expect: probes green again, open incidents resolve after 30 s green, each with \
                 a post-mortem draft (`astreinte incidents postmortem <id> --url {d}`).\n{look}\n"
            ))
        }
    }
}

/// The stack, locked, unless the demo is stopping.
async fn stack(running: &Running) -> Result<MappedMutexGuard<'_, Stack>> {
    let guard = running.stack.lock().await;
    MutexGuard::try_map(guard, Option::as_mut)
        .map_err(|_| Error::Other("the demo is stopping".into()))
}

/// The crashed node "reboots" after [`REBOOT_AFTER`]: its Patroni starts again and rejoins.
fn spawn_reboot(running: Arc<Running>, name: String) {
    tokio::spawn(async move {
        tokio::select! {
            _ = running.cancel.cancelled() => return,
            _ = tokio::time::sleep(REBOOT_AFTER) => {}
        }
        let restarted = match stack(&running).await {
            Ok(mut s) => s.restart_stopped_members(),
            Err(e) => Err(e),
        };
        match restarted {
            Ok(names) if !names.is_empty() => {
                tracing::info!(member = %name, "demo: the crashed node rebooted, its Patroni rejoins");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "demo: cannot restart the crashed member"),
        }
    });
}

/// `astreinte demo fault <name>`: asks the demo in `dir` (default: the latest started) to
/// apply `fault`, and prints its answer.
pub async fn send(dir: Option<&Path>, fault: Fault) -> Result<String> {
    let control = ControlFile::locate(dir)?;
    let name = fault
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    crate::app::install_crypto();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::Other(format!("cannot build an HTTP client: {e}")))?;
    let response = client
        .post(format!("{}/fault/{name}", control.control))
        .send()
        .await
        .map_err(|e| {
            Error::Other(format!(
                "the demo in {} does not answer ({}): is it still running?",
                control.dir.display(),
                e.without_url()
            ))
        })?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| Error::Other(format!("reading the demo's answer: {}", e.without_url())))?;
    if status.is_success() {
        Ok(text)
    } else {
        Err(Error::Other(format!("{name}: {}", text.trim_end())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_the_name_the_readme_uses() {
        let names: Vec<String> = Fault::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_owned()))
            .collect();
        assert_eq!(
            names,
            [
                "kill-leader",
                "break-api",
                "redis-replica-down",
                "slow-api",
                "heal"
            ]
        );
        let readme = include_str!("../../README.md");
        for name in &names {
            assert!(
                readme.contains(&format!("scripts/demo fault {name}")),
                "{name}"
            );
        }
    }
}
