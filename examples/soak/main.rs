//! The soak driver behind `bench/soak`: runs the real demo stack (`astreinte demo`: Patroni +
//! etcd + PostgreSQL x3, a Redis pair, an HTTP service, the daemon in-process) for a long
//! time, injects the demo's faults on a fixed seeded schedule, samples the daemon's RSS and
//! open file descriptors from `/proc`, and prints a Markdown report: growth over time, actions
//! taken vs what the demo's policy should do, journal vs `/metrics`, incidents. Samples go to
//! `<out>/samples.csv`. Ctrl-C (or SIGTERM) stops the faults, reports what was seen, and stops
//! every process the demo started.
//!
//! `soak --astreinte target/release/astreinte [--duration 1h] [--every 3m] [--hold 60s]
//!  [--sample 15s] [--seed 1] [--warmup 10m] [--out target/soak] [--dir /tmp/astreinte-soak-X]`

mod demo;
mod report;
mod sample;
mod schedule;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use astreinte::demo::Fault;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use demo::{BoxError, Demo};
use report::SlotRun;
use sample::{Csv, IncidentLog, Sample};
use schedule::{RuleModel, fault_name};

#[path = "../bench/procfs.rs"]
#[allow(dead_code)]
mod procfs;

struct Settings {
    bin: PathBuf,
    duration: Duration,
    every: Duration,
    hold: Duration,
    sample: Duration,
    seed: u64,
    warmup: Option<Duration>,
    out: PathBuf,
    dir: PathBuf,
    settle: Duration,
}

fn settings() -> Result<Settings, BoxError> {
    let mut s = Settings {
        bin: PathBuf::from("target/release/astreinte"),
        duration: Duration::from_secs(3600),
        every: Duration::from_secs(180),
        hold: Duration::from_secs(60),
        sample: Duration::from_secs(15),
        seed: 1,
        warmup: None,
        out: PathBuf::from("target/soak"),
        dir: std::env::temp_dir().join(format!("astreinte-soak-{}", std::process::id())),
        settle: Duration::from_secs(120),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{a} needs a value"));
        let mut time =
            || -> Result<Duration, BoxError> { Ok(humantime::parse_duration(&value()?)?) };
        match a.as_str() {
            "--astreinte" => s.bin = PathBuf::from(value()?),
            "--duration" => s.duration = time()?,
            "--every" => s.every = time()?,
            "--hold" => s.hold = time()?,
            "--sample" => s.sample = time()?,
            "--warmup" => s.warmup = Some(time()?),
            "--settle" => s.settle = time()?,
            "--seed" => s.seed = value()?.parse()?,
            "--out" => s.out = PathBuf::from(value()?),
            "--dir" => s.dir = PathBuf::from(value()?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if s.hold + Duration::from_secs(60) > s.every {
        return Err("--every must leave at least 60 s after --hold for the recovery".into());
    }
    Ok(s)
}

/// Seconds since `start`, as `+MM:SS`.
fn stamp(start: Instant) -> String {
    let s = start.elapsed().as_secs();
    format!("+{:02}:{:02}", s / 60, s % 60)
}

/// Sleeps until `at`; false if cancelled first.
async fn sleep_until(at: Instant, cancel: &CancellationToken) -> bool {
    tokio::select! {
        _ = cancel.cancelled() => false,
        _ = tokio::time::sleep_until(at) => true,
    }
}

/// Polls `check` every second until it holds or `until`; the seconds it took from `from`.
async fn wait_until<F, Fut>(
    from: Instant,
    until: Instant,
    cancel: &CancellationToken,
    mut check: F,
) -> Option<f64>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if check().await {
            return Some(from.elapsed().as_secs_f64());
        }
        let next = Instant::now() + Duration::from_secs(1);
        if next >= until || !sleep_until(next, cancel).await {
            return None;
        }
    }
}

/// What the sampler reads, shared with the fault loop.
struct Shared {
    samples: Mutex<Vec<Sample>>,
    phase: Mutex<String>,
    incidents: Mutex<IncidentLog>,
}

fn set_phase(shared: &Shared, phase: &str) {
    if let Ok(mut p) = shared.phase.lock() {
        *p = phase.to_owned();
    }
}

/// One sample now.
async fn take_sample(demo: &Demo, shared: &Shared, start: Instant) -> Option<Sample> {
    let pid = demo.pid();
    let (rss_kib, hwm_kib, threads) = sample::status(pid)?;
    let fds = sample::fds(pid)?;
    let cpu_s = procfs::cpu_seconds(pid).unwrap_or_default();
    let mut s = Sample {
        t: start.elapsed().as_secs_f64(),
        utc: jiff::Timestamp::now().strftime("%H:%M:%S").to_string(),
        rss_kib,
        hwm_kib,
        threads,
        fds,
        cpu_s,
        phase: shared.phase.lock().map(|p| p.clone()).unwrap_or_default(),
        ..Sample::default()
    };
    if let Some(doc) = demo.journal() {
        (s.journal_real, s.journal_rehearsed) = sample::journal_actions(&doc);
        s.incidents_open = doc.incidents.open.len() as u64;
        if let Ok(mut log) = shared.incidents.lock() {
            log.add(&doc);
        }
    }
    if let Some(page) = demo.text("/metrics").await {
        (s.metric_real, s.metric_rehearsed) = sample::metric_actions(&page);
    }
    Some(s)
}

/// Samples every `every` until `stop`, into `shared` and the CSV.
async fn sampler(
    demo: Arc<Demo>,
    shared: Arc<Shared>,
    mut csv: Csv,
    every: Duration,
    start: Instant,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(s) = take_sample(&demo, &shared, start).await else {
            eprintln!("{} sampler: the demo process is gone", stamp(start));
            return;
        };
        if let Err(e) = csv.write(&s) {
            eprintln!("sampler: cannot write the CSV: {e}");
        }
        if let Ok(mut v) = shared.samples.lock() {
            v.push(s);
        }
    }
}

/// Runs the faults of the schedule; returns what happened in each slot.
async fn run_faults(
    demo: &Demo,
    shared: &Shared,
    slots: &[schedule::Slot],
    s: &Settings,
    start: Instant,
    cancel: &CancellationToken,
) -> Vec<SlotRun> {
    let mut runs = Vec::new();
    for slot in slots {
        if !sleep_until(start + slot.at, cancel).await {
            break;
        }
        if sample::status(demo.pid()).is_none() {
            eprintln!("{} the demo process is gone: no more faults", stamp(start));
            break;
        }
        let slot_end = start + slot.at + s.every - Duration::from_secs(1);
        let name = fault_name(slot.fault);
        set_phase(shared, name);
        let fault_at = Instant::now();
        let applied = demo.fault(slot.fault).await.map_err(|e| e.to_string());
        eprintln!(
            "{} slot {} {name}: {}",
            stamp(start),
            slot.index,
            match &applied {
                Ok(t) => t.clone(),
                Err(e) => format!("FAILED: {e}"),
            }
        );
        let mut run = SlotRun {
            index: slot.index,
            fault: slot.fault,
            started: jiff::Timestamp::now()
                - jiff::SignedDuration::try_from(fault_at.elapsed()).unwrap_or_default(),
            t: slot.at.as_secs_f64(),
            applied,
            patroni_back: None,
            green_after: None,
        };
        if slot.fault == Fault::KillLeader {
            // The crashed node reboots by itself: once the daemon has seen the crash, wait for
            // a healthy cluster (before the heal).
            let pg_healthy =
                || async { demo.outcome("pg-cluster").await.as_deref() == Some("healthy") };
            let seen = fault_at + Duration::from_secs(30);
            let _ = wait_until(fault_at, seen, cancel, || async { !pg_healthy().await }).await;
            let until = slot_end - Duration::from_secs(30);
            run.patroni_back = wait_until(fault_at, until, cancel, pg_healthy).await;
        }
        if !sleep_until(fault_at + s.hold, cancel).await {
            runs.push(run);
            break;
        }
        if let Err(e) = demo.fault(Fault::Heal).await {
            eprintln!("{} heal FAILED: {e}", stamp(start));
        }
        set_phase(shared, &format!("{name}-healed"));
        let healed = Instant::now();
        run.green_after = wait_until(healed, slot_end, cancel, || demo.green()).await;
        eprintln!(
            "{} slot {} {name}: healed, green after {}",
            stamp(start),
            slot.index,
            run.green_after
                .map_or("(not green before the next slot)".into(), |g| format!(
                    "{g:.0} s"
                ))
        );
        set_phase(shared, "quiet");
        runs.push(run);
    }
    runs
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let s = settings()?;
    astreinte::app::install_crypto();
    if !s.bin.exists() {
        return Err(format!("{} is missing: cargo build --release", s.bin.display()).into());
    }
    let cancel = CancellationToken::new();
    astreinte::shutdown::on_signal(cancel.clone())?;
    std::fs::create_dir_all(&s.out)?;
    let load_before = procfs::load();
    let started_utc = jiff::Timestamp::now();
    eprintln!(
        "soak: starting the demo stack under {} (logs in {})",
        s.dir.display(),
        s.out.display()
    );
    let started = tokio::select! {
        d = Demo::start(&s.bin, &s.dir, &s.out) => d,
        _ = cancel.cancelled() => Err("interrupted while the demo started (it was stopped)".into()),
    };
    let demo = match started {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&s.dir);
            return Err(e);
        }
    };
    let demo = Arc::new(demo);
    let config = demo.config()?;
    let rules = RuleModel::from_config(&config);
    let global = config.policy.global_budget.as_ref().map(|b| (b.max, b.per));
    let slots = schedule::schedule(s.seed, s.duration, s.every);
    let expected = schedule::expect(&slots, &rules, global, s.hold);
    eprintln!(
        "soak: daemon pid {} at {}; {} slots every {:?}: {}",
        demo.pid(),
        demo.daemon,
        slots.len(),
        s.every,
        slots
            .iter()
            .map(|x| fault_name(x.fault))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let shared = Arc::new(Shared {
        samples: Mutex::new(Vec::new()),
        phase: Mutex::new("quiet".into()),
        incidents: Mutex::new(IncidentLog::default()),
    });
    let start = Instant::now();
    let stop_sampler = CancellationToken::new();
    let csv = Csv::create(&s.out.join("samples.csv"))?;
    let sampler = tokio::spawn(sampler(
        demo.clone(),
        shared.clone(),
        csv,
        s.sample,
        start,
        stop_sampler.clone(),
    ));
    let runs = run_faults(&demo, &shared, &slots, &s, start, &cancel).await;
    // Let the last incidents resolve (green period) before the final count.
    let settle_from = Instant::now();
    let settled = wait_until(settle_from, settle_from + s.settle, &cancel, || async {
        // The root disk of a build machine may be over its threshold for good.
        demo.green().await
            && demo
                .journal()
                .is_some_and(|d| d.incidents.open.keys().all(|k| k == "root-disk"))
    })
    .await;
    // Two samples apart so the last journal write is also in /metrics.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop_sampler.cancel();
    let _ = sampler.await;
    if let Some(last) = take_sample(&demo, &shared, start).await
        && let Ok(mut v) = shared.samples.lock()
    {
        v.push(last);
    }
    let page = demo.text("/metrics").await.unwrap_or_default();
    let doc = demo.journal().unwrap_or_default();
    if let Ok(mut log) = shared.incidents.lock() {
        log.add(&doc);
    }
    let _ = std::fs::write(
        s.out.join("journal.json"),
        serde_json::to_string_pretty(&doc)?,
    );
    let _ = std::fs::write(s.out.join("metrics.txt"), &page);
    let ran = start.elapsed();
    let interrupted = cancel.is_cancelled();

    // Stop the demo and check that nothing it started runs.
    let before = demo.processes();
    let Ok(mut demo) = Arc::try_unwrap(demo) else {
        return Err("the demo is still shared".into());
    };
    let clean = demo.stop();
    let dir = s.dir.to_string_lossy().into_owned();
    let left = procfs_left(&before, &dir);
    let _ = std::fs::remove_dir_all(&s.dir);

    let samples = shared.samples.lock().map(|v| v.clone()).unwrap_or_default();
    let warmup = s
        .warmup
        .unwrap_or_else(|| (s.duration / 6).min(Duration::from_secs(600)))
        .as_secs_f64();
    let (series, growing) = report::series(&samples, warmup);
    let (actions, actions_ok) = report::actions(&rules, &expected, &doc, &page);
    let incidents = shared
        .incidents
        .lock()
        .map(|log| report::incidents(&log, &doc, &runs))
        .unwrap_or_default();
    println!(
        "Run {} UTC on {}; load average before: {load_before}, after: {}.\n",
        started_utc.strftime("%Y-%m-%d %H:%M"),
        procfs::machine(),
        procfs::load()
    );
    println!(
        "Ran {:.1} min{} (faults every {:?}, each held {:?}, seed {}, samples every {:?}); \
         {} slots of {} planned. Daemon = the `astreinte demo` process (the daemon runs \
         in-process with the demo's HTTP service and control endpoint; the stack's servers are \
         other processes).\n",
        ran.as_secs_f64() / 60.0,
        if interrupted { ", **interrupted**" } else { "" },
        s.every,
        s.hold,
        s.seed,
        s.sample,
        runs.len(),
        slots.len()
    );
    println!("#### Daemon memory and file descriptors\n\n{series}");
    println!("#### Remediation: taken vs expected\n\n{actions}");
    println!(
        "Expected = the demo's own remediations.toml replayed over the schedule: break-api → \
         api-restart (enforced: POST to the demo service's /admin/restart), held by its budget \
         → the API stays broken and api-scale-up (dry-run) rehearses after 15 s; slow-api → \
         api-scale-up; redis-replica-down → redis-page (dry-run); kill-leader → nothing \
         (Patroni elects a leader before pg-failover's 20 s).\n"
    );
    println!("#### Incidents\n\n{incidents}");
    println!("#### Slots\n\n{}", report::slots(&runs, &doc));
    let settled_text = settled.map_or("not settled within the settle time".into(), |t| {
        format!(
            "every probe green and no incident open (root-disk aside) {t:.0} s after the last slot"
        )
    });
    println!(
        "Stop: {} {} processes of the stack seen before the stop; {}.\n",
        if clean {
            "the demo stopped by itself on SIGINT;"
        } else {
            "**the demo had to be killed**;"
        },
        before.len(),
        if left.is_empty() {
            "none left after (checked in /proc by pid and by the demo directory)".to_owned()
        } else {
            format!(
                "**{} left**: {}",
                left.len(),
                left.iter()
                    .map(|p| format!("{} {}", p.pid, p.cmdline))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    );
    let ok = !growing && actions_ok && left.is_empty() && !interrupted;
    println!(
        "**Verdict: {}** (memory/FDs {}; actions {}; {settled_text}).",
        if ok { "pass" } else { "fail" },
        if growing { "growing" } else { "flat" },
        if actions_ok {
            "as expected, journal = /metrics"
        } else {
            "NOT as expected"
        }
    );
    if ok { Ok(()) } else { std::process::exit(1) }
}

/// What still runs of `before`, or of anything naming the demo directory.
fn procfs_left(
    before: &[astreinte::testbed::procfs::ProcInfo],
    dir: &str,
) -> Vec<astreinte::testbed::procfs::ProcInfo> {
    let mut left = astreinte::testbed::procfs::still_running(before);
    for p in astreinte::testbed::procfs::started_by(0, dir) {
        if !left.iter().any(|l| l.pid == p.pid) {
            left.push(p);
        }
    }
    left
}
