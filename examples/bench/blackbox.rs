//! The Prometheus blackbox_exporter (Debian `prometheus-blackbox-exporter`), started on a free
//! 127.0.0.1 port with an `http_2xx` module, and a load generator that calls
//! `GET /probe?target=…&module=http_2xx` at a fixed rate, the way Prometheus scrapes it
//! (one keep-alive client, many concurrent scrape loops).

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use astreinte::testbed::{self, Proc, free_port};
use tokio_util::sync::CancellationToken;

use crate::daemon::BoxError;

pub const BINARY: &str = "/usr/bin/prometheus-blackbox-exporter";

const CONFIG: &str = "modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n    http:\n      preferred_ip_protocol: ip4\n";

pub struct Blackbox {
    pub proc: Proc,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Blackbox {
    pub async fn start() -> Result<Blackbox, BoxError> {
        testbed::require(BINARY, "prometheus-blackbox-exporter")?;
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("blackbox.yml");
        std::fs::write(&config, CONFIG)?;
        let port = free_port()?;
        let mut cmd = Command::new(BINARY);
        cmd.arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"));
        let proc = Proc::spawn("blackbox_exporter", cmd, &dir.path().join("blackbox.log"))?;
        let url = format!("http://127.0.0.1:{port}/metrics");
        testbed::wait_for(
            "blackbox_exporter /metrics",
            Duration::from_secs(20),
            || {
                let url = url.clone();
                async move {
                    let r = reqwest::get(&url).await.ok()?;
                    r.status().is_success().then_some(())
                }
            },
        )
        .await?;
        Ok(Blackbox {
            proc,
            port,
            _dir: dir,
        })
    }
}

/// Counters of the load generator.
#[derive(Default)]
pub struct Load {
    pub sent: AtomicU64,
    pub success: AtomicU64,
    pub failed: AtomicU64,
}

/// Scrapes `/probe` for each of `targets` (round robin) at `rate` per second until `stop`.
/// Scrape loops tick every 10 ms; each tick's request runs in its own task, so a slow probe
/// does not lower the rate (at most 4,096 in flight).
pub fn drive(
    port: u16,
    targets: Vec<String>,
    rate: u32,
    stop: CancellationToken,
) -> Result<Arc<Load>, BoxError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let load = Arc::new(Load::default());
    let loops = rate.div_ceil(100).max(1);
    let period = Duration::from_secs_f64(f64::from(loops) / f64::from(rate));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(4096));
    let targets = Arc::new(targets);
    for l in 0..loops {
        let (client, load, stop, in_flight, targets) = (
            client.clone(),
            load.clone(),
            stop.clone(),
            in_flight.clone(),
            targets.clone(),
        );
        tokio::spawn(async move {
            // Spread the loops across the period.
            tokio::time::sleep(period * l / loops).await;
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut n = l as usize;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                    continue;
                };
                let url = format!(
                    "http://127.0.0.1:{port}/probe?target={}&module=http_2xx",
                    targets[n % targets.len()]
                );
                n += loops as usize;
                let (client, load) = (client.clone(), load.clone());
                tokio::spawn(async move {
                    load.sent.fetch_add(1, Ordering::Relaxed);
                    let ok = match client.get(&url).send().await {
                        Ok(r) => r.text().await.is_ok_and(|t| t.contains("probe_success 1")),
                        Err(_) => false,
                    };
                    let c = if ok { &load.success } else { &load.failed };
                    c.fetch_add(1, Ordering::Relaxed);
                    drop(permit);
                });
            }
        });
    }
    Ok(load)
}
