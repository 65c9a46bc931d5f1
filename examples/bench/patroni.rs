//! Benchmark 3b: a Patroni leader crash against the real cluster (`testbed::PatroniCluster`:
//! 3 members, PostgreSQL 15, etcd, `ttl = 10`, `loop_wait = 2`). One `patroni` probe (I = 2 s,
//! U = 1 s, `enter_after = 2`); at T0 the driver SIGKILLs the leader's Patroni and postgres
//! (`PatroniCluster::crash`, as `tests/patroni.rs` does) and polls `/status` every 5 ms. Every
//! run the daemon reports there carries its start (`at`) and duration (`latency_ms`), so the
//! driver knows when each run started and ended, what it said, and when `/status` showed it.

use std::time::{Duration, SystemTime};

use astreinte::testbed::PatroniCluster;

use crate::Settings;
use crate::daemon::{self, BoxError, Daemon};

const INTERVAL: Duration = Duration::from_secs(2);
const UNHEALTHY: Duration = Duration::from_secs(1);
const PROBE: &str = "pg";

pub struct Trial {
    pub leader: String,
    /// T0 → the first run after the crash started (the wait for the probe's next tick).
    pub tick_wait: f64,
    /// That run's duration.
    pub run_ms: f64,
    /// T0 → the end of the first `no_leader` run (what the daemon can know at the earliest).
    pub no_leader_run_end: Option<f64>,
    /// T0 → `/status` shows `no_leader`.
    pub no_leader_seen: Option<f64>,
    /// T0 → `/status` shows a level other than ok, and the minimum for it: the end of the
    /// second `no_leader` run (U after the first).
    pub level_seen: Option<f64>,
    pub level_minimum: Option<f64>,
    /// T0 → the first run that no longer says `no_leader` (Patroni promoted a replica), and
    /// what it said.
    pub recovered: Option<(f64, String)>,
}

/// One probe run as `/status` showed it.
#[derive(Clone, Debug)]
struct Run {
    at: SystemTime,
    latency: Duration,
    reason: String,
    level: String,
    seen: SystemTime,
}

fn secs(a: SystemTime, b: SystemTime) -> f64 {
    match a.duration_since(b) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

pub async fn run(s: &Settings) -> Result<Vec<Trial>, BoxError> {
    eprintln!("patroni: starting a 3-member cluster");
    let mut cluster = PatroniCluster::start(&["pg1", "pg2", "pg3"]).await?;
    let members = cluster.members_toml();
    let d = Daemon::start(&s.bin, None, |port, dir| {
        let mut probes = daemon::head(port, dir, "10s");
        probes.push_str(&format!(
            "[[probe]]\nid = \"{PROBE}\"\nkind = \"patroni\"\nmembers = {members}\n\
             interval = \"{}s\"\nunhealthy_interval = \"{}s\"\ntimeout = \"800ms\"\n\
             damping = {{ enter_after = 2 }}\n",
            INTERVAL.as_secs(),
            UNHEALTHY.as_secs()
        ));
        vec![
            ("probes.toml", probes),
            ("remediations.toml", String::new()),
        ]
    })
    .await?;
    let mut trials = vec![];
    for i in 0..s.trials {
        let leader = cluster.wait_healthy(Duration::from_secs(90)).await?;
        wait_ok(&d).await?;
        // Unaligned with the probe's grid, differently for each trial.
        tokio::time::sleep(Duration::from_millis(737 + 411 * i as u64)).await;
        eprintln!("patroni: trial {i}: crashing the leader {leader}");
        let t0 = SystemTime::now();
        cluster.crash(&leader)?;
        let runs = watch(&d, t0).await?;
        trials.push(summarize(leader.clone(), t0, &runs));
        cluster.start_member(&leader)?;
    }
    Ok(trials)
}

/// Waits until the probe's last result is ok and its level back to ok.
async fn wait_ok(d: &Daemon) -> Result<(), BoxError> {
    let deadline = SystemTime::now() + Duration::from_secs(60);
    while SystemTime::now() < deadline {
        if let Some(r) = last_run(d, SystemTime::now()).await?
            && r.reason == "ok"
            && r.level == "ok"
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err("the patroni probe did not get back to ok within 60 s".into())
}

async fn last_run(d: &Daemon, seen: SystemTime) -> Result<Option<Run>, BoxError> {
    let page = d.json("/status").await?;
    let Some(p) = page["probes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["probe"] == PROBE))
    else {
        return Ok(None);
    };
    let at: jiff::Timestamp = p["at"].as_str().ok_or("no `at` in /status")?.parse()?;
    Ok(Some(Run {
        at: SystemTime::from(at),
        latency: Duration::from_secs_f64(p["latency_ms"].as_f64().unwrap_or(0.0) / 1000.0),
        reason: p["reason"].as_str().unwrap_or_default().to_owned(),
        level: p["level"].as_str().unwrap_or_default().to_owned(),
        seen,
    }))
}

/// Every run the daemon showed from the last one before T0 until one after `no_leader` is
/// over (a replica promoted), or 40 s.
async fn watch(d: &Daemon, t0: SystemTime) -> Result<Vec<Run>, BoxError> {
    let deadline = t0 + Duration::from_secs(40);
    let mut runs: Vec<Run> = vec![];
    while SystemTime::now() < deadline {
        if let Some(r) = last_run(d, SystemTime::now()).await? {
            let new = runs.last().is_none_or(|l| l.at != r.at);
            // A level change can show after its run was first seen (same `at`).
            if let Some(l) = runs
                .last_mut()
                .filter(|l| l.at == r.at && l.level != r.level)
            {
                l.level = r.level.clone();
                l.seen = r.seen;
            }
            if new {
                runs.push(r);
            }
        }
        let after: Vec<&Run> = runs.iter().filter(|r| r.at > t0).collect();
        let leaderless = after.iter().position(|r| r.reason == "no_leader");
        if leaderless.is_some_and(|i| after[i..].iter().any(|r| r.reason != "no_leader")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(runs)
}

fn summarize(leader: String, t0: SystemTime, runs: &[Run]) -> Trial {
    let after: Vec<&Run> = runs.iter().filter(|r| r.at > t0).collect();
    let first = after.first();
    let no_leader: Vec<&&Run> = after.iter().filter(|r| r.reason == "no_leader").collect();
    let end = |r: &Run| secs(r.at + r.latency, t0);
    let first_nl = no_leader.first();
    let level = after.iter().find(|r| r.level != "ok");
    let recovered = first_nl.and_then(|f| {
        after
            .iter()
            .find(|r| r.at > f.at && r.reason != "no_leader")
            .map(|r| (end(r), r.reason.clone()))
    });
    Trial {
        leader,
        tick_wait: first.map_or(f64::NAN, |r| secs(r.at, t0)),
        run_ms: first.map_or(f64::NAN, |r| r.latency.as_secs_f64() * 1000.0),
        no_leader_run_end: first_nl.map(|r| end(r)),
        no_leader_seen: first_nl.map(|r| secs(r.seen, t0)),
        level_seen: level.map(|r| secs(r.seen, t0)),
        level_minimum: no_leader.get(1).map(|r| end(r)),
        recovered,
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |s| format!("{:.1}", s * 1000.0))
}

pub fn table(trials: &[Trial]) -> String {
    let mut out = String::from(
        "| trial (crashed leader) | T0 → next run starts (ms) | its duration (ms) | T0 → end of 1st `no_leader` run (ms) | T0 → `/status` says `no_leader` (ms) | T0 → end of 2nd `no_leader` run = level minimum (ms) | T0 → `/status` level change (ms) | T0 → end of 1st run past `no_leader` (ms): its reason |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for t in trials {
        let recovered = t
            .recovered
            .as_ref()
            .map_or("-".to_owned(), |(s, r)| format!("{}: `{r}`", ms(Some(*s))));
        out.push_str(&format!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} |\n",
            t.leader,
            ms(Some(t.tick_wait)),
            t.run_ms,
            ms(t.no_leader_run_end),
            ms(t.no_leader_seen),
            ms(t.level_minimum),
            ms(t.level_seen),
            recovered
        ));
    }
    out
}
