//! The http, tcp and disk probes against real local servers and file systems.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use astreinte::config::{Config, load_dir};
use astreinte::probes::{Outcome, Prober};
use support::http_target::HttpTarget;

fn config_with(probes: &str) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    (dir, config)
}

async fn observe(probe_toml: &str) -> astreinte::probes::Observation {
    astreinte::app::install_crypto();
    let (_dir, config) = config_with(probe_toml);
    let prober = Prober::new().unwrap();
    prober.observe(&config, &config.probes[0]).await
}

fn http(url: &str, extra: &str) -> String {
    format!(
        "[[probe]]\nid = \"t\"\nkind = \"http\"\nurl = \"{url}\"\ninterval = \"10s\"\ntimeout = \"1s\"\n{extra}\n"
    )
}

#[tokio::test]
async fn http_200_is_healthy() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/ok"), "body_regex = \"^ok\"")).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert_eq!(o.detail, "HTTP 200");
}

#[tokio::test]
async fn http_500_fails_with_bad_status() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/fail"), "")).await;
    assert_eq!(o.outcome, Outcome::failed("bad_status"));
    assert_eq!(o.detail, "HTTP 500");
}

#[tokio::test]
async fn http_expected_status_set_is_honoured() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/fail"), "expect_status = [500, 503]")).await;
    assert_eq!(o.outcome, Outcome::Healthy);
}

#[tokio::test]
async fn http_wrong_body_fails_with_body_mismatch() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/ok"), "body_regex = \"degraded\"")).await;
    assert_eq!(o.outcome, Outcome::failed("body_mismatch"));
}

#[tokio::test]
async fn http_hung_handler_times_out_on_time() {
    let server = HttpTarget::start().await;
    let started = Instant::now();
    let o = observe(&http(&server.url("/hang"), "")).await;
    assert_eq!(o.outcome, Outcome::failed("timeout"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test]
async fn http_100_mb_body_is_capped() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/big"), "max_body_bytes = 1048576")).await;
    assert_eq!(o.outcome, Outcome::failed("body_too_large"));
    // The probe stopped reading at the cap: its peak memory stays far below 100 MB.
    let rss_kb = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("VmHWM:")
                .map(|v| v.trim().trim_end_matches(" kB").parse::<u64>().unwrap())
        })
        .unwrap();
    assert!(rss_kb < 80 * 1024, "peak RSS {rss_kb} kB");
}

#[tokio::test]
async fn http_connection_refused_is_named() {
    let port = support::free_port();
    let o = observe(&http(&format!("http://127.0.0.1:{port}/"), "")).await;
    assert_eq!(
        o.outcome,
        Outcome::failed("connection_refused"),
        "{}",
        o.detail
    );
}

#[tokio::test]
async fn http_unresolvable_host_is_a_dns_error() {
    let o = observe(&http("http://astreinte-no-such-host.invalid/", "")).await;
    assert_eq!(o.outcome, Outcome::failed("dns_error"), "{}", o.detail);
}

#[tokio::test]
async fn http_redirects_are_not_followed_by_default() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/redirect"), "")).await;
    assert_eq!(o.outcome, Outcome::failed("bad_status"));
    let o = observe(&http(&server.url("/redirect"), "follow_redirects = true")).await;
    assert_eq!(o.outcome, Outcome::Healthy);
}

#[tokio::test]
async fn http_slower_than_the_slo_is_degraded_by_the_percentage() {
    let server = HttpTarget::start().await;
    let o = observe(&http(&server.url("/slow"), "slo_latency = \"100ms\"")).await;
    match o.outcome {
        Outcome::Degraded { value, ref reason } => {
            assert_eq!(reason, "slow");
            assert!(
                value >= 150.0,
                "300 ms against 100 ms is ≥ 200 % over, got {value}"
            );
        }
        other => panic!("expected degraded, got {other:?}"),
    }
}

#[tokio::test]
async fn http_bearer_token_from_a_file_is_sent_and_never_shown() {
    let server = HttpTarget::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let with = format!("bearer_token = {{ file = \"{}\" }}", token.display());
    let o = observe(&http(&server.url("/auth"), &with)).await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    let o = observe(&http(&server.url("/auth"), "")).await;
    assert_eq!(o.outcome, Outcome::failed("bad_status"));
    assert!(!format!("{o:?}").contains("s3cret"));
    // A missing secret is Unknown, never a false failure of the target.
    let o = observe(&http(
        "http://127.0.0.1:1/",
        "bearer_token = { env = \"ASTREINTE_TEST_TOKEN_THAT_IS_NOT_SET\" }",
    ))
    .await;
    assert_eq!(o.outcome, Outcome::unknown("secret_unavailable"));
    assert!(o.detail.contains("ASTREINTE_TEST_TOKEN_THAT_IS_NOT_SET"));
}

#[tokio::test]
async fn tcp_connects_or_is_refused() {
    let server = HttpTarget::start().await;
    let ok = format!(
        "[[probe]]\nid = \"t\"\nkind = \"tcp\"\naddress = \"{}\"\ninterval = \"10s\"\ntimeout = \"1s\"\n",
        server.addr
    );
    assert_eq!(observe(&ok).await.outcome, Outcome::Healthy);
    let port = support::free_port();
    let refused = format!(
        "[[probe]]\nid = \"t\"\nkind = \"tcp\"\naddress = \"127.0.0.1:{port}\"\ninterval = \"10s\"\ntimeout = \"1s\"\n"
    );
    assert_eq!(
        observe(&refused).await.outcome,
        Outcome::failed("connection_refused")
    );
}

#[tokio::test]
async fn disk_reports_a_real_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[probe]]\nid = \"d\"\nkind = \"disk\"\npath = \"{}\"\ninterval = \"10s\"\ntimeout = \"1s\"\ndegraded_ratio = 0.0001\nfailed_ratio = 0.99999\n",
        dir.path().display()
    );
    let o = observe(&toml).await;
    // Any real file system has used more than 0.01 %: degraded by the low threshold.
    assert!(
        matches!(o.outcome, Outcome::Degraded { ref reason, .. } if reason == "disk_usage_high" || reason == "inodes_high"),
        "{:?}",
        o.outcome
    );
    let _ = Arc::new(());
}
