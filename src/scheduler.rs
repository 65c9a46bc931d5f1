//! The scheduler: one task per probe, ticking at the probe's interval from a deterministic
//! offset (so 1,000 probes with one interval do not fire in the same millisecond), skipping
//! missed ticks instead of bunching them, switching to the faster `unhealthy_interval` while
//! the last result was not healthy, and recording how late each tick fired.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ProbeConfig};
use crate::metrics::Metrics;
use crate::probes::{Observation, Prober};

/// Runs one probe once. The real one is [`Prober`]; tests use a fake with paused time.
pub trait RunProbe: Clone + Send + Sync + 'static {
    fn run(&self, config: &Config, probe: &ProbeConfig)
    -> impl Future<Output = Observation> + Send;
}

impl RunProbe for Prober {
    fn run(
        &self,
        config: &Config,
        probe: &ProbeConfig,
    ) -> impl Future<Output = Observation> + Send {
        self.observe(config, probe)
    }
}

/// Where a probe's first tick falls inside its interval: a stable hash of its id (FNV-1a),
/// so the spread is the same on every start and every replica.
pub fn initial_offset(id: &str, interval: Duration) -> Duration {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let nanos = interval.as_nanos().max(1);
    // The remainder is below `interval`, which fits in u64 nanoseconds for any sane interval.
    Duration::from_nanos((u128::from(hash) % nanos) as u64)
}

/// The next scheduled instant after `scheduled`, skipping every tick already missed.
pub fn next_tick(scheduled: Instant, period: Duration, now: Instant) -> Instant {
    let next = scheduled + period;
    if next > now {
        return next;
    }
    let behind = now.duration_since(next).as_nanos();
    let missed = behind / period.as_nanos().max(1) + 1;
    // More than 2^32 missed periods saturates rather than panics.
    next + period.saturating_mul(u32::try_from(missed).unwrap_or(u32::MAX))
}

/// Starts one task per enabled probe on `tracker`; they stop when `cancel` fires or the sink
/// closes.
pub fn spawn_all<R: RunProbe>(
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    config: Arc<Config>,
    runner: R,
    sink: mpsc::Sender<Observation>,
    metrics: Arc<Metrics>,
) -> usize {
    let start = Instant::now();
    let mut count = 0;
    for (index, probe) in config.probes.iter().enumerate() {
        if !probe.enabled {
            continue;
        }
        count += 1;
        let task = ProbeTask {
            _alive: Alive::new(&metrics),
            config: config.clone(),
            index,
            runner: runner.clone(),
            sink: sink.clone(),
            metrics: metrics.clone(),
            cancel: cancel.clone(),
        };
        tracker.spawn(task.run(start));
    }
    count
}

/// Counts a probe task in `astreinte_probe_tasks` from its spawn to its end (or to its drop
/// unpolled, when cancelled at once).
struct Alive(prometheus_client::metrics::gauge::Gauge);

impl Alive {
    fn new(metrics: &Metrics) -> Self {
        metrics.probe_tasks.inc();
        Alive(metrics.probe_tasks.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.dec();
    }
}

struct ProbeTask<R> {
    /// Held for the task's life.
    _alive: Alive,
    config: Arc<Config>,
    index: usize,
    runner: R,
    sink: mpsc::Sender<Observation>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
}

impl<R: RunProbe> ProbeTask<R> {
    async fn run(self, start: Instant) {
        let probe = &self.config.probes[self.index];
        let interval = self.config.interval(probe);
        let fast = self.config.unhealthy_interval(probe).unwrap_or(interval);
        let mut scheduled = start + initial_offset(&probe.id, interval);
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep_until(scheduled) => {}
            }
            let lateness = Instant::now().saturating_duration_since(scheduled);
            self.metrics
                .schedule_lateness_seconds
                .observe(lateness.as_secs_f64());
            // Boxed: the run future of the largest probe kind is several KiB. Inline, every
            // waiting task would hold that much for ever (5.4 KiB × 10,000 probes,
            // docs/BENCHMARKS.md); boxed, the run and its hand-over to the engine exist only
            // while the probe runs.
            let step = Box::pin(self.run_once(probe, interval, fast));
            let period = tokio::select! {
                _ = self.cancel.cancelled() => return,
                p = step => match p {
                    Some(p) => p,
                    None => return,
                },
            };
            scheduled = next_tick(scheduled, period, Instant::now());
        }
    }

    /// Runs the probe once and hands the result to the engine; returns the period until the
    /// next run, or `None` once the engine is gone.
    async fn run_once(
        &self,
        probe: &ProbeConfig,
        interval: Duration,
        fast: Duration,
    ) -> Option<Duration> {
        let observation = self.runner.run(&self.config, probe).await;
        let period = if observation.outcome.is_healthy() {
            interval
        } else {
            fast
        };
        self.sink.send(observation).await.ok()?;
        Some(period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{Outcome, ProbeKind};
    use std::sync::Mutex;

    /// A probe runner that records when it ran and takes `cost` of (paused) time.
    #[derive(Clone)]
    struct Fake {
        runs: Arc<Mutex<Vec<(String, Instant)>>>,
        cost: Duration,
        outcome: Outcome,
    }

    impl Fake {
        fn new(cost: Duration, outcome: Outcome) -> Self {
            Fake {
                runs: Arc::default(),
                cost,
                outcome,
            }
        }
        fn times(&self, id: &str) -> Vec<Instant> {
            let runs = self.runs.lock().unwrap();
            runs.iter()
                .filter(|(p, _)| p == id)
                .map(|(_, t)| *t)
                .collect()
        }
    }

    impl RunProbe for Fake {
        async fn run(&self, _: &Config, probe: &ProbeConfig) -> Observation {
            self.runs
                .lock()
                .unwrap()
                .push((probe.id.clone(), Instant::now()));
            tokio::time::sleep(self.cost).await;
            Observation {
                probe: Arc::from(probe.id.as_str()),
                kind: ProbeKind::Tcp,
                target: Arc::from(probe.id.as_str()),
                outcome: self.outcome.clone(),
                detail: String::new(),
                latency: self.cost,
                at: jiff::Timestamp::UNIX_EPOCH,
                measurements: vec![],
            }
        }
    }

    fn config(n: usize, interval: &str, extra: &str) -> Arc<Config> {
        let mut probes = String::new();
        for i in 0..n {
            probes.push_str(&format!(
                "[[probe]]\nid = \"p{i}\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"{interval}\"\ntimeout = \"500ms\"\n{extra}\n"
            ));
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
        std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
        Arc::new(crate::config::load_dir(dir.path()).unwrap())
    }

    /// Runs the scheduler for `span` of paused time and returns the fake's record.
    async fn run_for(config: Arc<Config>, fake: Fake, span: Duration) -> (Fake, Arc<Metrics>) {
        let tracker = TaskTracker::new();
        let cancel = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel(16);
        let metrics = Arc::new(Metrics::new());
        spawn_all(&tracker, &cancel, config, fake.clone(), tx, metrics.clone());
        tracker.close();
        let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
        tokio::time::sleep(span).await;
        cancel.cancel();
        tokio::time::timeout(Duration::from_secs(1), tracker.wait())
            .await
            .expect("every task stops on cancellation");
        drain.await.unwrap();
        (fake, metrics)
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_at_the_interval_without_drift_over_1000_ticks() {
        let fake = Fake::new(Duration::from_millis(3), Outcome::Healthy);
        let start = Instant::now();
        let (fake, _) = run_for(config(1, "1s", ""), fake, Duration::from_secs(1000)).await;
        let times = fake.times("p0");
        assert_eq!(times.len(), 1000, "one run per second for 1000 s");
        let first = times[0];
        assert!(first >= start && first < start + Duration::from_secs(1));
        for (i, t) in times.iter().enumerate() {
            assert_eq!(
                *t - first,
                Duration::from_secs(i as u64),
                "tick {i} drifted"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn start_is_spread_across_the_interval() {
        let fake = Fake::new(Duration::from_millis(1), Outcome::Healthy);
        let start = Instant::now();
        let (fake, _) = run_for(config(1000, "10s", ""), fake, Duration::from_millis(10_005)).await;
        // Tokio timers have millisecond resolution, hence the extra 5 ms above.
        let mut buckets = [0usize; 10];
        let mut distinct = std::collections::BTreeSet::new();
        for i in 0..1000 {
            let t = fake.times(&format!("p{i}"))[0] - start;
            buckets[(t.as_secs() as usize).min(9)] += 1;
            distinct.insert(t.as_millis());
        }
        // Every second of the interval gets roughly a tenth of the probes.
        assert!(
            buckets.iter().all(|&b| (50..=150).contains(&b)),
            "{buckets:?}"
        );
        assert!(
            distinct.len() > 600,
            "only {} distinct start ms",
            distinct.len()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_probe_skips_missed_ticks_instead_of_piling_up() {
        // Takes 2.5 s per run with a 1 s interval: runs at 0, 3, 6, 9… (ticks at 1, 2 skipped).
        let fake = Fake::new(Duration::from_millis(2500), Outcome::Healthy);
        let (fake, _) = run_for(config(1, "1s", ""), fake, Duration::from_secs(30)).await;
        let times = fake.times("p0");
        assert!((9..=11).contains(&times.len()), "{} runs", times.len());
        for w in times.windows(2) {
            assert_eq!(w[1] - w[0], Duration::from_secs(3));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_probe_uses_the_faster_interval() {
        let fake = Fake::new(Duration::from_millis(1), Outcome::failed("x"));
        let cfg = config(1, "10s", "unhealthy_interval = \"2s\"");
        let (fake, _) = run_for(cfg, fake, Duration::from_secs(60)).await;
        let times = fake.times("p0");
        assert!(times.len() >= 25, "{} runs", times.len());
        assert_eq!(times[1] - times[0], Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn lateness_is_recorded_for_every_tick() {
        let fake = Fake::new(Duration::from_millis(1), Outcome::Healthy);
        let (_, metrics) = run_for(config(3, "1s", ""), fake, Duration::from_secs(10)).await;
        let text = metrics.encode();
        assert!(
            text.contains("astreinte_schedule_lateness_seconds_count 30"),
            "{}",
            text.lines()
                .filter(|l| l.contains("lateness_seconds_count"))
                .collect::<String>()
        );
    }

    #[tokio::test]
    async fn a_waiting_probe_task_is_small() {
        crate::app::install_crypto();
        // Every configured probe holds one of these for the daemon's lifetime.
        let config = config(1, "1s", "");
        let (sink, _rx) = mpsc::channel(1);
        let metrics = Arc::new(Metrics::new());
        let task = ProbeTask {
            _alive: Alive::new(&metrics),
            config,
            index: 0,
            runner: Prober::new().unwrap(),
            sink,
            metrics,
            cancel: CancellationToken::new(),
        };
        let future = task.run(Instant::now());
        let size = std::mem::size_of_val(&future);
        // Debug build: 5,432 bytes with the probe's run future inline, 496 with it boxed.
        assert!(size <= 640, "a waiting probe task's future is {size} bytes");
    }

    #[test]
    fn next_tick_skips_missed_ones() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(next_tick(t0, s, t0), t0 + s);
        assert_eq!(
            next_tick(t0, s, t0 + Duration::from_millis(2500)),
            t0 + 3 * s
        );
        assert_eq!(next_tick(t0, s, t0 + s), t0 + 2 * s);
    }

    #[test]
    fn offset_is_stable_and_inside_the_interval() {
        let i = Duration::from_secs(10);
        assert_eq!(initial_offset("api", i), initial_offset("api", i));
        assert!(initial_offset("api", i) < i);
        assert_ne!(initial_offset("api", i), initial_offset("apj", i));
    }
}
