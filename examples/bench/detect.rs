//! Benchmarks 3 and 4: detection latency and the decision path. A few `det*` probes hit
//! switchable paths of the target; the driver flips one to 503 at T0 and records, against the
//! target's own log of the requests it served: the first and second failing probe runs, when
//! `/status` shows the level change, when `/incidents` shows the incident open, and when the
//! rule's `http` action POST reaches the target's hook.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use crate::Settings;
use crate::daemon::{self, BoxError, Daemon};
use crate::target::Target;

/// Probe interval I and unhealthy interval U of the `det*` probes; damping enters after 2.
pub const INTERVAL: Duration = Duration::from_secs(2);
pub const UNHEALTHY: Duration = Duration::from_secs(1);

pub struct Trial {
    pub probe: String,
    /// T0 → first failing run, and its distance from the expected tick (last healthy + I).
    pub first_fail: Option<f64>,
    pub tick_error: Option<f64>,
    /// First → second failing run (expected U).
    pub second_after_first: Option<f64>,
    /// After the second failing run (the one that crosses enter_after = 2).
    pub status_after: Option<f64>,
    pub incident_after: Option<f64>,
    pub hook_after: Option<f64>,
    /// The theoretical minimum from T0: next tick + U.
    pub minimum: Option<f64>,
    pub from_t0_incident: Option<f64>,
}

fn secs(a: SystemTime, b: SystemTime) -> f64 {
    match a.duration_since(b) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

pub async fn run(
    s: &Settings,
    target: &Target,
    background: usize,
    poll_status: bool,
) -> Result<Vec<Trial>, BoxError> {
    // Unique per run: the target keeps each path's log for the whole benchmark.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, Ordering::Relaxed);
    let names: Vec<String> = (0..s.trials)
        .map(|i| format!("det{run}-{background}-{i}"))
        .collect();
    eprintln!(
        "detect: {} trials with {background} background probes",
        names.len()
    );
    for n in &names {
        target.shared.set_failing(n, false);
    }
    let hook_base = target.url(0, "/hook/");
    let d = Daemon::start(&s.bin, None, |port, dir| {
        let mut probes = daemon::head(port, dir, "10s");
        for i in 0..background {
            probes.push_str(&daemon::http_probe(&format!("p{i}"), &target.url(i, "/a"), ""));
        }
        let mut rules = String::from("[policy]\nmode = \"enforce\"\n\n");
        for (i, n) in names.iter().enumerate() {
            let extra = format!(
                "interval = \"{}s\"\nunhealthy_interval = \"{}s\"\ntimeout = \"500ms\"\ndamping = {{ enter_after = 2 }}\n",
                INTERVAL.as_secs(),
                UNHEALTHY.as_secs()
            );
            probes.push_str(&daemon::http_probe(n, &target.url(i, &format!("/sw/{n}")), &extra));
            rules.push_str(&format!(
                "[[rule]]\nid = \"act-{n}\"\ntrigger = {{ probe = \"{n}\", min_level = \"P2\" }}\n\
                 action = {{ kind = \"http\", method = \"POST\", url = \"{hook_base}{n}\" }}\n\
                 budget = {{ max = 1, per = \"1h\" }}\n\n"
            ));
        }
        vec![("probes.toml", probes), ("remediations.toml", rules)]
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(12)).await;
    let mut trials = vec![];
    for n in &names {
        trials.push(trial(&d, target, n, poll_status).await?);
    }
    Ok(trials)
}

async fn trial(
    d: &Daemon,
    target: &Target,
    name: &str,
    poll_status: bool,
) -> Result<Trial, BoxError> {
    // Flip at a point that is not aligned with anything the daemon knows.
    tokio::time::sleep(Duration::from_millis(737)).await;
    let t0 = SystemTime::now();
    target.shared.set_failing(name, true);
    let deadline = t0 + Duration::from_secs(20);
    let (mut status_seen, mut incident_seen) = (None, None);
    while SystemTime::now() < deadline {
        if poll_status && status_seen.is_none() {
            let page = d.json("/status").await?;
            let level = page["probes"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["probe"] == name))
                .and_then(|p| p["level"].as_str().map(str::to_owned));
            if level.is_some_and(|l| l != "ok") {
                status_seen = Some(SystemTime::now());
            }
        }
        if incident_seen.is_none() {
            let page = d.json("/incidents").await?;
            let open = page["open"]
                .as_array()
                .is_some_and(|is| is.iter().any(|i| i["key"] == name));
            if open {
                incident_seen = Some(SystemTime::now());
            }
        }
        let hooked = !target.shared.hook(name).is_empty();
        if hooked && incident_seen.is_some() && (status_seen.is_some() || !poll_status) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let sw = target.shared.switch(name);
    let last_healthy = sw
        .hits
        .iter()
        .rev()
        .find(|(t, f)| !f && *t < t0)
        .map(|(t, _)| *t);
    let fails: Vec<SystemTime> = sw
        .hits
        .iter()
        .filter(|(_, f)| *f)
        .map(|(t, _)| *t)
        .collect();
    let hook = target.shared.hook(name).first().copied();
    let expected_first = last_healthy.map(|h| {
        let mut t = h + INTERVAL;
        while t < t0 {
            t += INTERVAL;
        }
        t
    });
    let first = fails.first().copied();
    let second = fails.get(1).copied();
    let after_second = |t: Option<SystemTime>| Some(secs(t?, second?));
    Ok(Trial {
        probe: name.to_owned(),
        first_fail: first.map(|f| secs(f, t0)),
        tick_error: first.zip(expected_first).map(|(f, e)| secs(f, e)),
        second_after_first: first.zip(second).map(|(a, b)| secs(b, a)),
        status_after: after_second(status_seen),
        incident_after: after_second(incident_seen),
        hook_after: after_second(hook),
        minimum: expected_first.map(|e| secs(e, t0) + UNHEALTHY.as_secs_f64()),
        from_t0_incident: incident_seen.map(|i| secs(i, t0)),
    })
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_owned(), |s| format!("{:.1}", s * 1000.0))
}

pub fn table(trials: &[Trial]) -> String {
    let mut out = String::from(
        "| trial | T0 → 1st failing run (ms) | 1st run vs its tick (ms) | 1st → 2nd failing run (ms, U = 1000) | 2nd run → `/status` level (ms) | 2nd run → `/incidents` open (ms) | 2nd run → action POST (ms) | T0 → incident: measured / minimum (ms) |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for t in trials {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
            t.probe,
            ms(t.first_fail),
            ms(t.tick_error),
            ms(t.second_after_first),
            ms(t.status_after),
            ms(t.incident_after),
            ms(t.hook_after),
            ms(t.from_t0_incident),
            ms(t.minimum)
        ));
    }
    out
}
