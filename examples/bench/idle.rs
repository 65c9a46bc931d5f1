//! Benchmark 5: what the daemon costs while nothing happens: the embedded local example
//! (`examples/local`, every probe healthy) and the shipped configs (`--config .`, whose
//! cluster targets are unreachable here, so they fail or are unknown).

use crate::Settings;
use crate::daemon::{BoxError, Daemon};
use crate::procfs::{self, CpuMark};

pub struct Row {
    pub config: &'static str,
    pub probes: usize,
    pub seconds: f64,
    pub cpu_percent: f64,
    pub rss_mib: f64,
    pub hwm_mib: f64,
}

pub async fn run(s: &Settings) -> Result<Vec<Row>, BoxError> {
    let local = s.repo.join("examples/local");
    let mut rows = vec![];
    eprintln!("idle: examples/local");
    let d = Daemon::start(&s.bin, None, |port, _| {
        let read = |f: &str| {
            std::fs::read_to_string(local.join(f))
                .unwrap_or_default()
                .replace("127.0.0.1:9464", &format!("127.0.0.1:{port}"))
        };
        vec![
            ("probes.toml", read("probes.toml")),
            ("remediations.toml", read("remediations.toml")),
        ]
    })
    .await?;
    let probes = count_probes(&local.join("probes.toml"));
    rows.push(measure(s, &d, "examples/local (healthy)", probes).await?);
    drop(d);
    eprintln!("idle: shipped config");
    let d = Daemon::start(&s.bin, Some(&s.repo), |_, _| vec![]).await?;
    let probes = count_probes(&s.repo.join("probes.toml"));
    rows.push(measure(s, &d, "shipped `--config .` (targets unreachable)", probes).await?);
    Ok(rows)
}

/// The `[[probe]]` entries of a probes file.
fn count_probes(file: &std::path::Path) -> usize {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.trim() == "[[probe]]")
        .count()
}

async fn measure(
    s: &Settings,
    d: &Daemon,
    config: &'static str,
    probes: usize,
) -> Result<Row, BoxError> {
    // Past the local example's 10 s interval: every probe has run once.
    tokio::time::sleep(s.warmup.max(std::time::Duration::from_secs(12))).await;
    let c0 = CpuMark::take(d.pid()).ok_or("astreinte exited")?;
    tokio::time::sleep(s.idle_window).await;
    let c1 = CpuMark::take(d.pid()).ok_or("astreinte exited")?;
    let (rss_mib, hwm_mib) = procfs::memory_mib(d.pid()).unwrap_or((0.0, 0.0));
    let (cpu, wall) = c0.since(c1);
    Ok(Row {
        config,
        probes,
        seconds: wall.as_secs_f64(),
        cpu_percent: cpu / wall.as_secs_f64() * 100.0,
        rss_mib,
        hwm_mib,
    })
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| config | probes | window (s) | CPU % of one core | CPU ms per minute | VmRSS (MiB) | VmHWM (MiB) |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.1} | {:.2} | {:.0} | {:.1} | {:.1} |\n",
            r.config,
            r.probes,
            r.seconds,
            r.cpu_percent,
            r.cpu_percent * 600.0,
            r.rss_mib,
            r.hwm_mib
        ));
    }
    out
}
