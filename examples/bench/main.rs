//! The benchmark driver behind `bench/run`: runs the real release `astreinte` binary (and the
//! Prometheus blackbox_exporter) against a local axum target on 127.0.0.1, measures them
//! through `/proc`, `/metrics`, `/status` and `/incidents`, and prints Markdown tables for
//! `docs/BENCHMARKS.md`. Everything it starts is a `testbed::Proc` (killed with its process
//! group on drop) or a task of this process; every phase is bounded in time.
//!
//! `cargo run --release --example bench -- --astreinte target/release/astreinte [--quick]
//!  [--only cpu,scale,detect,patroni,decide,idle] [--rates 200,1000,3000] [--scale 1000,10000]`

mod blackbox;
mod cpu;
mod daemon;
mod detect;
mod idle;
mod patroni;
mod procfs;
mod scale;
mod target;

use std::path::PathBuf;
use std::time::Duration;

use daemon::BoxError;

/// What to run and for how long.
#[derive(Clone)]
pub struct Settings {
    pub bin: PathBuf,
    /// Another build whose decision path is measured too (e.g. before a change).
    pub baseline: Option<PathBuf>,
    pub repo: PathBuf,
    pub only: Vec<String>,
    pub rates: Vec<u32>,
    pub scale: Vec<usize>,
    /// The probe interval of the scale benchmark (10 s; longer isolates the static cost).
    pub scale_interval: u64,
    pub warmup: Duration,
    pub window: Duration,
    pub scale_window: Duration,
    pub idle_window: Duration,
    pub trials: usize,
    pub ports: usize,
}

fn list<T: std::str::FromStr>(v: &str) -> Result<Vec<T>, BoxError> {
    v.split(',')
        .map(|x| {
            x.trim()
                .parse()
                .map_err(|_| format!("bad list item {x:?}").into())
        })
        .collect()
}

fn settings() -> Result<Settings, BoxError> {
    let mut s = Settings {
        bin: PathBuf::from("target/release/astreinte"),
        baseline: None,
        repo: std::env::current_dir()?,
        only: vec![],
        rates: vec![200, 1000, 3000],
        scale: vec![1000, 10_000, 20_000, 50_000],
        scale_interval: 10,
        warmup: Duration::from_secs(5),
        window: Duration::from_secs(20),
        scale_window: Duration::from_secs(60),
        idle_window: Duration::from_secs(60),
        trials: 3,
        ports: 16,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        match a.as_str() {
            "--astreinte" => s.bin = PathBuf::from(value()?),
            "--repo" => s.repo = PathBuf::from(value()?),
            "--baseline" => s.baseline = Some(PathBuf::from(value()?)),
            "--only" => s.only = list(&value()?)?,
            "--rates" => s.rates = list(&value()?)?,
            "--scale" => s.scale = list(&value()?)?,
            "--scale-interval" => s.scale_interval = value()?.parse()?,
            "--quick" => {
                s.window = Duration::from_secs(8);
                s.scale_window = Duration::from_secs(15);
                s.idle_window = Duration::from_secs(10);
                s.trials = 2;
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    Ok(s)
}

impl Settings {
    fn wants(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == section)
    }
}

/// A section that failed is reported (on stdout too, so the report shows it) and skipped.
fn report<T>(section: &str, result: Result<T, BoxError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("{section}: {e}");
            println!("**Section {section} failed:** {e}\n");
            None
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let s = settings()?;
    // reqwest is built without a default crypto provider; the daemon installs ring too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    if !s.bin.exists() {
        return Err(format!(
            "{} is missing: build it with cargo build --release",
            s.bin.display()
        )
        .into());
    }
    let target = target::Target::start(s.ports).await?;
    println!(
        "Run {} UTC on {}; load average before: {}.\n",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M"),
        procfs::machine(),
        procfs::load()
    );
    if s.wants("cpu")
        && let Some(rows) = report("cpu", cpu::run(&s, &target).await)
    {
        println!(
            "### 1. CPU per HTTP probe (1 s interval; window {:?} after {:?} warm-up)\n",
            s.window, s.warmup
        );
        println!("{}", cpu::table(&rows));
        println!("load average after: {}\n", procfs::load());
    }
    if s.wants("scale")
        && let Some(rows) = report("scale", scale::run(&s, &target).await)
    {
        println!(
            "### 2. Scale (window {:?}; lateness quantiles interpolated inside the histogram bucket, bucket bounds in parentheses)\n",
            s.scale_window
        );
        println!("{}", scale::table(&rows));
        println!("load average after: {}\n", procfs::load());
    }
    if s.wants("detect")
        && let Some(trials) = report("detect", detect::run(&s, &target, 0, true).await)
    {
        println!("### 3. Detection latency (I = 2 s, U = 1 s, enter_after = 2; alone)\n");
        println!("{}", detect::table(&trials));
    }
    if s.wants("patroni")
        && let Some(trials) = report("patroni", patroni::run(&s).await)
    {
        println!(
            "### 3b. Patroni leader crash (3 members, ttl = 10 s, loop_wait = 2 s; I = 2 s, U = 1 s, enter_after = 2)\n"
        );
        println!("{}", patroni::table(&trials));
        println!("load average after: {}\n", procfs::load());
    }
    if s.wants("decide")
        && let Some(trials) = report("decide", detect::run(&s, &target, 1000, false).await)
    {
        println!("### 4. Decision path under 1,000 other probes (10 s interval)\n");
        println!("{}", detect::table(&trials));
        if let Some(bin) = &s.baseline {
            let base = Settings {
                bin: bin.clone(),
                ..s.clone()
            };
            if let Some(trials) = report("decide", detect::run(&base, &target, 1000, false).await) {
                println!("Baseline `{}`:\n", bin.display());
                println!("{}", detect::table(&trials));
            }
        }
        println!("load average after: {}\n", procfs::load());
    }
    if s.wants("idle")
        && let Some(rows) = report("idle", idle::run(&s).await)
    {
        println!("### 5. Idle cost (window {:?})\n", s.idle_window);
        println!("{}", idle::table(&rows));
        println!("load average after: {}\n", procfs::load());
    }
    Ok(())
}
