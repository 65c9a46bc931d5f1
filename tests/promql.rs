//! The promql probe against a real Prometheus 2.42 started by the testbed, scraping itself
//! (`job="prometheus"`, up) and a target on a dead port (`job="down"`, up == 0).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use astreinte::config::load_dir;
use astreinte::metrics::GaugeName;
use astreinte::probes::{Observation, Outcome, Prober};
use astreinte::testbed::prometheus::{Prometheus, ScrapeJob};

async fn observe(url: &str, query: &str, extra: &str) -> Observation {
    astreinte::app::install_crypto();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[probe]]\nid = \"q\"\nkind = \"promql\"\nurl = \"{url}\"\nquery = '{query}'\ninterval = \"10s\"\ntimeout = \"1s\"\n{extra}\n"
    );
    std::fs::write(dir.path().join("probes.toml"), toml).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    Prober::new()
        .unwrap()
        .observe(&config, &config.probes[0])
        .await
}

/// One Prometheus, every scenario in sequence, then Prometheus stopped.
#[tokio::test]
async fn promql_against_a_real_prometheus() {
    support::require("/usr/bin/prometheus", "prometheus");
    let dir = tempfile::tempdir().unwrap();
    let dead = format!("127.0.0.1:{}", support::free_port());
    let mut prometheus = Prometheus::start(dir.path(), &[ScrapeJob::new("down", &[dead])])
        .await
        .unwrap();
    let url = prometheus.url();
    prometheus
        .wait_up("prometheus", Duration::from_secs(30))
        .await
        .unwrap();

    // The job is scraped and up: healthy, and the value is exported.
    let o = observe(&url, r#"up{job="prometheus"}"#, "min = 1").await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert_eq!(o.detail, "1 series within >= 1, worst 1");
    let value = &o.measurements[0];
    assert_eq!(value.gauge, GaugeName::PromqlValue);
    assert_eq!(value.value, 1.0);

    // A job nobody scrapes: no data, a failure by default, or what the probe says.
    let o = observe(&url, r#"up{job="nope"}"#, "min = 1").await;
    assert_eq!(o.outcome, Outcome::failed("no_data"), "{}", o.detail);
    let o = observe(&url, r#"up{job="nope"}"#, "min = 1\nno_data = \"healthy\"").await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);

    // A scraped target that is down: up == 0 violates min = 1.
    let started = Instant::now();
    let o = loop {
        let o = observe(&url, r#"up{job="down"}"#, "min = 1").await;
        if o.outcome != Outcome::failed("no_data") || started.elapsed() > Duration::from_secs(15) {
            break o;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(o.outcome, Outcome::failed("threshold"), "{}", o.detail);
    assert!(o.detail.contains(r#"job="down""#), "{}", o.detail);
    assert!(
        o.detail.starts_with("1 of 1 series outside >= 1"),
        "{}",
        o.detail
    );
    assert_eq!(o.measurements[0].value, 0.0);

    // Both jobs, a max bound: the one at 1 is over.
    let o = observe(&url, "up", "max = 0.5").await;
    assert_eq!(o.outcome, Outcome::failed("threshold"), "{}", o.detail);
    assert!(o.detail.contains(r#"job="prometheus""#), "{}", o.detail);
    assert!(!o.detail.contains(r#"job="down""#), "{}", o.detail);

    // Prometheus refuses the query: query_error, an Unknown, with its own words.
    let o = observe(&url, "up{", "min = 1").await;
    assert_eq!(o.outcome, Outcome::unknown("query_error"), "{}", o.detail);
    assert!(o.detail.starts_with("HTTP 400, bad_data:"), "{}", o.detail);
    let o = observe(&url, "up[1m]", "min = 1").await;
    assert_eq!(o.outcome, Outcome::unknown("query_error"), "{}", o.detail);
    assert!(o.detail.contains("range vector"), "{}", o.detail);
    let o = observe(&format!("{url}/nowhere"), "up", "min = 1").await;
    assert_eq!(o.outcome, Outcome::unknown("query_error"), "{}", o.detail);
    let o = observe(&url, "up", "min = 1\nmax_body_bytes = 10").await;
    assert_eq!(o.outcome, Outcome::unknown("query_error"), "{}", o.detail);
    assert!(o.detail.contains("larger than 10 bytes"), "{}", o.detail);

    // A token that cannot be read: the probe could not see.
    let o = observe(
        &url,
        "up",
        "min = 1\nbearer_token = { env = \"ASTREINTE_TEST_PROM_TOKEN_NOT_SET\" }",
    )
    .await;
    assert_eq!(o.outcome, Outcome::unknown("secret_unavailable"));

    // Prometheus gone: the probe could not see, never a failure of the target.
    prometheus.stop();
    let o = observe(&url, r#"up{job="prometheus"}"#, "min = 1").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("prometheus_unreachable"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("connection_refused"), "{}", o.detail);
}

/// A Prometheus that accepts and never answers: `prometheus_unreachable` before the overall
/// timeout, not the runner's generic `timeout` failure.
#[tokio::test]
async fn hung_prometheus_is_unreachable_within_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let started = Instant::now();
    let o = observe(&format!("http://{addr}"), "up", "min = 1").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("prometheus_unreachable"),
        "{}",
        o.detail
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.abort();
}
