//! Micro benchmarks of the pure paths every probe run goes through (`cargo bench`): scoring
//! one observation, a policy decision for one rule, decoding a Patroni `/cluster` and a Redis
//! `INFO replication` (captured from the real servers, `tests/fixtures/`), and the metrics:
//! recording one observation and encoding `/metrics` with 1,000 probes. Under `cargo test`
//! divan runs each benchmark once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use astreinte::config::{Config, load_dir};
use astreinte::journal::{ActionRecord, ActionResult};
use astreinte::level::Level;
use astreinte::metrics::{GaugeName, Metrics};
use astreinte::policy::{Facts, TriggerState, decide};
use astreinte::probes::patroni::{decode_cluster, decode_status};
use astreinte::probes::redis::info::parse_replication;
use astreinte::probes::{Measurement, Observation, Outcome, ProbeKind};
use astreinte::score::Scorer;
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

const CLUSTER: &[u8] =
    include_bytes!("../tests/fixtures/patroni/healthy.leader.GET_cluster.200.json");
const PATRONI: &[u8] =
    include_bytes!("../tests/fixtures/patroni/healthy.replica.GET_patroni.200.json");
const REDIS_INFO: &[u8] = include_bytes!("../tests/fixtures/redis/master.healthy.txt");

/// A configuration from the two files' text, as the daemon loads it.
fn config(probes: &str, remediations: &str) -> Config {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), remediations).unwrap();
    load_dir(dir.path()).unwrap()
}

fn http_probes(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("[[probe]]\nid = \"p{i}\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\n")
        })
        .collect()
}

/// What the http probe reports for one run.
fn observation(id: &str, outcome: Outcome) -> Observation {
    Observation {
        probe: Arc::from(id),
        kind: ProbeKind::Http,
        target: Arc::from(id),
        outcome,
        detail: "HTTP 200 in 1.2 ms".into(),
        latency: Duration::from_micros(1200),
        at: jiff::Timestamp::now(),
        measurements: vec![Measurement::new(
            GaugeName::HttpStatusCode,
            &[("probe", id)],
            200.0,
        )],
    }
}

/// One observation through the scorer of a probe with a full history (latency baseline
/// learned): the steady state, healthy or failing.
#[divan::bench(args = ["healthy", "failed"])]
fn score_one_observation(bencher: Bencher, outcome: &str) {
    let config = config(&http_probes(1), "");
    let probe = &config.probes[0];
    let damping = config.damping(probe);
    let outcome = match outcome {
        "healthy" => Outcome::Healthy,
        _ => Outcome::failed("connection_refused"),
    };
    let obs = observation("p0", outcome);
    let interval = config.interval(probe);
    let mut scorer = Scorer::default();
    for _ in 0..50 {
        scorer.step(probe, &damping, interval, &obs);
    }
    bencher.bench_local(|| scorer.step(probe, &damping, interval, black_box(&obs)));
}

/// One rule through every policy gate, with 20 earlier actions in the journal (budget,
/// cooldown and already-tried look at them), ending in `Act`.
#[divan::bench]
fn policy_decide_one_rule(bencher: Bencher) {
    let config = config(
        "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n",
        "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"api-restart\"\n\
         trigger = { probe = \"api\", min_level = \"P2\", for = \"2m\" }\n\
         action = { kind = \"rollout_restart\", namespace = \"rag\", deployment = \"api\" }\n\
         budget = { max = 30, per = \"1d\" }\ncooldown = \"10m\"\n",
    );
    let now = jiff::Timestamp::now();
    let ago = |minutes: i64| now - jiff::SignedDuration::from_mins(minutes);
    let actions: Vec<ActionRecord> = (0..20)
        .map(|i| ActionRecord {
            id: i,
            rule: "api-restart".into(),
            action: "rollout_restart".into(),
            target: "rag/deployment/api".into(),
            key: "api".into(),
            incident: Some(format!("{i}-api")),
            started_at: ago(60 + 30 * i as i64),
            ended_at: Some(ago(59 + 30 * i as i64)),
            result: ActionResult::Succeeded,
            detail: String::new(),
            undo: None,
            undone: false,
            verified: Some(true),
            by: None,
            deadline: None,
            interrupted_by: None,
            undo_run: None,
        })
        .collect();
    let facts = Facts {
        now,
        wall: now,
        trigger: TriggerState {
            level: Level::P1,
            reason: "bad_status".into(),
            since: Some(ago(5)),
            leader_lost_since: None,
            unknown_since: None,
            stale_evidence: None,
        },
        escalated: false,
        is_leader: true,
        failing: 1,
        total: 10,
        failing_dependencies: vec![],
        journal_problem: None,
        actions: &actions,
        incident: Some("21-api"),
        precondition: Ok(()),
    };
    let rule = &config.rules[0];
    let decision = decide(&config, rule, &facts);
    assert!(
        matches!(decision, astreinte::policy::Decision::Act { .. }),
        "{decision:?}"
    );
    bencher.bench_local(|| decide(&config, rule, black_box(&facts)));
}

/// A 3-member Patroni 3.0.2 `GET /cluster` (captured).
#[divan::bench]
fn patroni_cluster_decode() -> usize {
    decode_cluster(black_box(CLUSTER)).unwrap().members.len()
}

/// A replica's `GET /patroni` (captured).
#[divan::bench]
fn patroni_status_decode() -> bool {
    decode_status(black_box(PATRONI)).unwrap().pause
}

/// Redis 7 `INFO replication` of a master with one replica (captured).
#[divan::bench]
fn redis_info_replication_parse() {
    parse_replication(black_box(REDIS_INFO)).unwrap();
}

/// One observation into the metrics (three probe series and the status-code gauge), once
/// every series exists, among 1,000 probes.
#[divan::bench]
fn metrics_observe(bencher: Bencher) {
    let metrics = Metrics::new();
    let observations: Vec<Observation> = (0..1000)
        .map(|i| observation(&format!("p{i}"), Outcome::Healthy))
        .collect();
    for o in &observations {
        metrics.observe(o);
    }
    let one = &observations[500];
    bencher.bench_local(|| metrics.observe(black_box(one)));
}

/// The whole `/metrics` page with 1,000 http probes (about 4,000 series).
#[divan::bench(sample_count = 20)]
fn metrics_encode_1000_probes(bencher: Bencher) {
    let metrics = Metrics::new();
    for i in 0..1000 {
        metrics.observe(&observation(&format!("p{i}"), Outcome::Healthy));
    }
    let page = metrics.encode();
    assert!(page.contains("\nprobe_success{probe=\"p999\"} 1\n"));
    bencher.bench_local(|| metrics.encode().len());
}
