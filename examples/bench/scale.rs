//! Benchmark 2: many http probes at a 10 s interval for a fixed window: CPU, memory, schedule
//! lateness (from the `astreinte_schedule_lateness_seconds` histogram) and TIME_WAIT sockets.

use std::sync::atomic::Ordering;

use crate::Settings;
use crate::daemon::{self, BoxError, Daemon, Quantiles};
use crate::procfs::{self, CpuMark};
use crate::target::Target;

const LATENESS: &str = "astreinte_schedule_lateness_seconds";

pub struct Row {
    pub probes: usize,
    pub interval: f64,
    pub runs: u64,
    pub failed: f64,
    pub seconds: f64,
    pub cpu_percent: f64,
    pub rss_mib: f64,
    pub hwm_mib: f64,
    pub lateness: Quantiles,
    pub time_wait: u64,
    /// TIME_WAIT sockets dropped because the table was full, during the window.
    pub tw_overflows: u64,
    /// Reasons of the failed runs, from the daemon's log (first result change per probe).
    pub reasons: String,
}

pub async fn run(s: &Settings, target: &Target) -> Result<Vec<Row>, BoxError> {
    let mut rows = vec![];
    for &n in &s.scale {
        rows.push(one(s, target, n).await?);
    }
    Ok(rows)
}

async fn one(s: &Settings, target: &Target, n: usize) -> Result<Row, BoxError> {
    eprintln!("scale: {n} http probes at {} s", s.scale_interval);
    let d = Daemon::start(&s.bin, None, |port, dir| {
        let mut probes = daemon::head(port, dir, &format!("{}s", s.scale_interval));
        for i in 0..n {
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
    // Past the first interval, so every probe has run once and the first table is printed.
    tokio::time::sleep(s.warmup.max(std::time::Duration::from_secs(12))).await;
    let page0 = d.text("/metrics").await?;
    let n0 = target.shared.astreinte.load(Ordering::Relaxed);
    let overflows0 = procfs::time_wait_overflows().unwrap_or(0);
    let c0 = CpuMark::take(d.pid()).ok_or("astreinte exited")?;
    tokio::time::sleep(s.scale_window).await;
    let c1 = CpuMark::take(d.pid()).ok_or_else(|| format!("astreinte exited: {}", d.log_tail()))?;
    let n1 = target.shared.astreinte.load(Ordering::Relaxed);
    let time_wait = procfs::time_wait().unwrap_or(0);
    let tw_overflows = procfs::time_wait_overflows()
        .unwrap_or(0)
        .saturating_sub(overflows0);
    let (rss_mib, hwm_mib) = procfs::memory_mib(d.pid()).unwrap_or((0.0, 0.0));
    let page1 = d.text("/metrics").await?;
    let (cpu, wall) = c0.since(c1);
    let failed = |p: &str| {
        daemon::counter_sum(p, "astreinte_probe_runs_total", "result=\"failed\"")
            + daemon::counter_sum(p, "astreinte_probe_runs_total", "result=\"unknown\"")
    };
    let lateness = daemon::quantiles(
        &daemon::histogram(&page0, LATENESS),
        &daemon::histogram(&page1, LATENESS),
        &[0.5, 0.99],
    );
    Ok(Row {
        probes: n,
        interval: s.scale_interval as f64,
        runs: n1 - n0,
        failed: failed(&page1) - failed(&page0),
        seconds: wall.as_secs_f64(),
        cpu_percent: cpu / wall.as_secs_f64() * 100.0,
        rss_mib,
        hwm_mib,
        lateness,
        time_wait,
        tw_overflows,
        reasons: daemon::failure_reasons(&d)
            .iter()
            .map(|(r, n)| format!("{r} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn ms(s: f64) -> String {
    if s.is_finite() {
        format!("{:.1}", s * 1000.0)
    } else {
        "∞".into()
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| probes | runs in window (expected) | ticks in histogram | failed/unknown | window (s) | CPU % of one core | VmRSS (MiB) | VmHWM (MiB) | lateness p50 (ms) | lateness p99 (ms) | lateness max (ms) | TIME_WAIT at end (overflows in window) | failure reasons logged |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|---:|---|\n",
    );
    for r in rows {
        let expected = r.probes as f64 * r.seconds / r.interval;
        let q = |i: usize| {
            r.lateness
                .at
                .get(i)
                .map_or("-".to_owned(), |(_, lo, hi, x)| {
                    format!("{} ({}–{})", ms(*x), ms(*lo), ms(*hi))
                })
        };
        out.push_str(&format!(
            "| {} | {} ({:.0}) | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {}–{} | {} ({}) | {} |\n",
            r.probes,
            r.runs,
            expected,
            r.lateness.count,
            r.failed,
            r.seconds,
            r.cpu_percent,
            r.rss_mib,
            r.hwm_mib,
            q(0),
            q(1),
            ms(r.lateness.max.0),
            ms(r.lateness.max.1),
            r.time_wait,
            r.tw_overflows,
            r.reasons
        ));
    }
    out
}
