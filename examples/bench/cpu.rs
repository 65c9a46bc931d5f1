//! Benchmark 1: CPU per HTTP probe, astreinte against blackbox_exporter, at the same rates
//! against the same local target. Only the prober's own process is measured.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::blackbox::{self, Blackbox};
use crate::daemon::{self, BoxError, Daemon};
use crate::procfs::{self, CpuMark};
use crate::target::Target;

pub struct Row {
    pub rate: u32,
    pub tool: &'static str,
    pub probes: u64,
    pub failed: u64,
    pub seconds: f64,
    pub cpu: f64,
    pub rss_mib: f64,
}

impl Row {
    pub fn us_per_probe(&self) -> f64 {
        self.cpu * 1e6 / self.probes.max(1) as f64
    }
}

pub async fn run(s: &Settings, target: &Target) -> Result<Vec<Row>, BoxError> {
    let mut rows = vec![];
    for &rate in &s.rates {
        rows.push(astreinte(s, target, rate).await?);
        rows.push(blackbox(s, target, rate).await?);
    }
    Ok(rows)
}

/// `rate` http probes at a 1 s interval.
async fn astreinte(s: &Settings, target: &Target, rate: u32) -> Result<Row, BoxError> {
    eprintln!("cpu: astreinte at {rate} probes/s");
    let d = Daemon::start(&s.bin, None, |port, dir| {
        let mut probes = daemon::head(port, dir, "1s");
        for i in 0..rate as usize {
            probes.push_str(&daemon::http_probe(
                &format!("p{i}"),
                &target.url(i, "/a"),
                "",
            ));
        }
        vec![
            ("probes.toml", probes),
            ("remediations.toml", String::new()),
        ]
    })
    .await?;
    tokio::time::sleep(s.warmup).await;
    let failed0 = failed_runs(&d).await?;
    let n0 = target.shared.astreinte.load(Ordering::Relaxed);
    let c0 = CpuMark::take(d.pid()).ok_or("astreinte exited")?;
    tokio::time::sleep(s.window).await;
    let c1 = CpuMark::take(d.pid()).ok_or("astreinte exited")?;
    let n1 = target.shared.astreinte.load(Ordering::Relaxed);
    let failed1 = failed_runs(&d).await?;
    let (cpu, wall) = c0.since(c1);
    let rss_mib = procfs::memory_mib(d.pid()).map_or(0.0, |m| m.0);
    Ok(Row {
        rate,
        tool: "astreinte",
        probes: n1 - n0,
        failed: (failed1 - failed0) as u64,
        seconds: wall.as_secs_f64(),
        cpu,
        rss_mib,
    })
}

async fn failed_runs(d: &Daemon) -> Result<f64, BoxError> {
    let page = d.text("/metrics").await?;
    Ok(
        daemon::counter_sum(&page, "astreinte_probe_runs_total", "result=\"failed\"")
            + daemon::counter_sum(&page, "astreinte_probe_runs_total", "result=\"unknown\""),
    )
}

/// blackbox_exporter scraped `rate` times per second, one target per target port (round
/// robin); what a probe costs does not depend on how many distinct targets there are.
async fn blackbox(s: &Settings, target: &Target, rate: u32) -> Result<Row, BoxError> {
    eprintln!("cpu: blackbox_exporter at {rate} probes/s");
    let bb = Blackbox::start().await?;
    let targets = (0..target.addrs.len())
        .map(|i| target.url(i, "/b"))
        .collect();
    let stop = CancellationToken::new();
    let load = blackbox::drive(bb.port, targets, rate, stop.clone())?;
    tokio::time::sleep(s.warmup).await;
    let n0 = target.shared.blackbox.load(Ordering::Relaxed);
    let f0 = load.failed.load(Ordering::Relaxed);
    let c0 = CpuMark::take(bb.proc.pid()).ok_or("blackbox_exporter exited")?;
    tokio::time::sleep(s.window).await;
    let c1 = CpuMark::take(bb.proc.pid()).ok_or("blackbox_exporter exited")?;
    let n1 = target.shared.blackbox.load(Ordering::Relaxed);
    let f1 = load.failed.load(Ordering::Relaxed);
    let rss_mib = procfs::memory_mib(bb.proc.pid()).map_or(0.0, |m| m.0);
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (cpu, wall) = c0.since(c1);
    Ok(Row {
        rate,
        tool: "blackbox_exporter 0.23",
        probes: n1 - n0,
        failed: f1 - f0,
        seconds: wall.as_secs_f64(),
        cpu,
        rss_mib,
    })
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| rate (probes/s) | prober | probes in window | failed | window (s) | CPU (s) | CPU µs / probe | RSS (MiB) | ratio astreinte / blackbox |\n\
         |---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for pair in rows.chunks(2) {
        let ratio = match pair {
            [a, b] => format!("{:.2}×", a.us_per_probe() / b.us_per_probe().max(1e-9)),
            _ => String::new(),
        };
        for (i, r) in pair.iter().enumerate() {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {:.1} | {:.2} | {:.1} | {:.1} | {} |\n",
                r.rate,
                r.tool,
                r.probes,
                r.failed,
                r.seconds,
                r.cpu,
                r.us_per_probe(),
                r.rss_mib,
                if i == 0 { ratio.as_str() } else { "" }
            ));
        }
    }
    out
}
