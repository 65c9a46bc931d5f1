//! The real `astreinte run` binary under test: a generated config directory, the process (a
//! `testbed::Proc`, killed with its group when dropped), and readers for `/metrics`,
//! `/status` and `/incidents`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use astreinte::testbed::{self, Proc, free_port};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub struct Daemon {
    pub proc: Proc,
    pub port: u16,
    pub dir: tempfile::TempDir,
    client: reqwest::Client,
}

/// The `[server]`, `[journal]` and `[defaults]` head of a generated `probes.toml`.
pub fn head(port: u16, dir: &Path, interval: &str) -> String {
    // The timeout must be shorter than the interval.
    let timeout = if interval == "1s" { "500ms" } else { "2s" };
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[journal]\npath = \"{}\"\n\n\
         [defaults]\ninterval = \"{interval}\"\ntimeout = \"{timeout}\"\n\n",
        dir.join("journal.json").display()
    )
}

/// One `http` probe entry.
pub fn http_probe(id: &str, url: &str, extra: &str) -> String {
    format!("[[probe]]\nid = \"{id}\"\nkind = \"http\"\nurl = \"{url}\"\n{extra}\n")
}

impl Daemon {
    /// Writes the files `files(port, dir)` returns (name, content) and starts
    /// `astreinte run --config dir`, with `cwd` as working directory (default: `dir`).
    pub async fn start(
        bin: &Path,
        config: Option<&Path>,
        files: impl FnOnce(u16, &Path) -> Vec<(&'static str, String)>,
    ) -> Result<Daemon, BoxError> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        for (name, content) in files(port, dir.path()) {
            std::fs::write(dir.path().join(name), content)?;
        }
        let config_dir: PathBuf = config.map_or_else(|| dir.path().to_owned(), Path::to_owned);
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir.path())
            .arg("run")
            .arg("--config")
            .arg(&config_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .env("ASTREINTE_LOG_FORMAT", "json");
        let proc = Proc::spawn("astreinte", cmd, &dir.path().join("astreinte.log"))?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        let daemon = Daemon {
            proc,
            port,
            dir,
            client,
        };
        let url = daemon.url("/healthz");
        let c = daemon.client.clone();
        testbed::wait_for("astreinte /healthz", Duration::from_secs(30), || {
            let (c, url) = (c.clone(), url.clone());
            async move {
                let r = c.get(&url).send().await.ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await
        .map_err(|e| format!("{e}; astreinte log:\n{}", daemon.log_tail()))?;
        Ok(daemon)
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn text(&self, path: &str) -> Result<String, BoxError> {
        Ok(self.client.get(self.url(path)).send().await?.text().await?)
    }

    pub async fn json(&self, path: &str) -> Result<serde_json::Value, BoxError> {
        Ok(self.client.get(self.url(path)).send().await?.json().await?)
    }

    /// The last lines of the daemon's log, for error reports.
    pub fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("astreinte.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

/// How many `probe not healthy` log lines name each reason, most frequent first.
pub fn failure_reasons(d: &Daemon) -> Vec<(String, usize)> {
    let log = std::fs::read_to_string(d.dir.path().join("astreinte.log")).unwrap_or_default();
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for line in log.lines().filter(|l| l.contains("probe not healthy")) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let reason = v["reason"].as_str().unwrap_or("?").to_owned();
        *counts.entry(reason).or_default() += 1;
    }
    let mut out: Vec<_> = counts.into_iter().collect();
    out.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    out
}

/// The cumulative buckets `(le, count)` of a histogram in a Prometheus text page.
pub fn histogram(page: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut out = vec![];
    for line in page.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let Some((le, value)) = rest.split_once("\"} ") else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        let count = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        out.push((le, count as u64));
    }
    out
}

/// Sum of every sample of a counter family whose labels contain `filter`.
pub fn counter_sum(page: &str, name: &str, filter: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with(name) && l.contains(filter))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Quantiles of the observations between two scrapes of one histogram.
pub struct Quantiles {
    pub count: u64,
    /// (q, lower bound, upper bound, linear interpolation) in seconds.
    pub at: Vec<(f64, f64, f64, f64)>,
    /// The bucket holding the largest observation.
    pub max: (f64, f64),
}

pub fn quantiles(before: &[(f64, u64)], after: &[(f64, u64)], qs: &[f64]) -> Quantiles {
    let delta: Vec<(f64, u64)> = after
        .iter()
        .map(|(le, n)| {
            let b = before.iter().find(|(l, _)| l == le).map_or(0, |(_, n)| *n);
            (*le, n.saturating_sub(b))
        })
        .collect();
    let count = delta.last().map_or(0, |(_, n)| *n);
    let mut at = vec![];
    for &q in qs {
        let rank = q * count as f64;
        let mut lower = 0.0;
        let mut below = 0u64;
        for &(le, cum) in &delta {
            if cum as f64 >= rank && cum > 0 {
                let inside = (cum - below) as f64;
                let frac = if inside > 0.0 {
                    (rank - below as f64) / inside
                } else {
                    1.0
                };
                let interp = if le.is_finite() {
                    lower + (le - lower) * frac
                } else {
                    lower
                };
                at.push((q, lower, le, interp));
                break;
            }
            lower = le;
            below = cum;
        }
    }
    let mut max = (0.0, 0.0);
    let mut lower = 0.0;
    let mut prev = 0;
    for &(le, cum) in &delta {
        if cum > prev {
            max = (lower, le);
        }
        lower = le;
        prev = cum;
    }
    Quantiles { count, at, max }
}
