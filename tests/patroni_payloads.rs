//! The `patroni` probe's IO against stand-in members that answer with captured Patroni 3.0.2
//! payloads, then misbehave: HTML, a huge body, malformed JSON, a dropped `/cluster`, a hang.
//! The real-cluster behaviour is in `tests/patroni.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::{Duration, Instant};

use astreinte::config::load_dir;
use astreinte::metrics::GaugeName;
use astreinte::probes::{Observation, Outcome, Prober};
use support::fake_patroni::{FakePatroni, Reply};

fn fixture(name: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/patroni");
    std::fs::read_to_string(dir.join(name)).unwrap()
}

/// Three stand-ins serving the captured healthy cluster, with `/cluster`'s `api_url`s
/// pointing at them (so names are learnt from it, as from a real cluster).
async fn healthy_members() -> Vec<FakePatroni> {
    let members = vec![
        FakePatroni::start().await,
        FakePatroni::start().await,
        FakePatroni::start().await,
    ];
    let mut cluster = fixture("healthy.leader.GET_cluster.200.json");
    for (i, m) in members.iter().enumerate() {
        cluster = cluster.replace(&format!("http://127.0.0.1:{}", 28008 + i), &m.url());
    }
    members[0].set(
        "/patroni",
        Reply::json(fixture("healthy.leader.GET_patroni.200.json")),
    );
    for m in &members[1..] {
        m.set(
            "/patroni",
            Reply::json(fixture("healthy.replica.GET_patroni.200.json")),
        );
    }
    for m in &members {
        m.set("/cluster", Reply::json(cluster.clone()));
    }
    members
}

async fn observe(prober: &Prober, members: &[FakePatroni], timeout: &str) -> Observation {
    let urls: Vec<String> = members.iter().map(|m| format!("\"{}\"", m.url())).collect();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[probe]]\nid = \"lab\"\nkind = \"patroni\"\ninterval = \"10s\"\ntimeout = \"{timeout}\"\nmembers = [{}]\n",
        urls.join(", ")
    );
    std::fs::write(dir.path().join("probes.toml"), toml).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    prober.observe(&config, &config.probes[0]).await
}

fn prober() -> Prober {
    astreinte::app::install_crypto();
    Prober::new().unwrap()
}

#[tokio::test]
async fn captured_healthy_cluster_is_healthy_with_learnt_names() {
    let members = healthy_members().await;
    let o = observe(&prober(), &members, "2s").await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    assert!(
        o.detail
            .starts_with("leader pg1; pg1 leader running, timeline 1"),
        "{}",
        o.detail
    );
    let up: Vec<&str> = o
        .measurements
        .iter()
        .filter(|m| m.gauge == GaugeName::PatroniMemberUp)
        .map(|m| m.labels[1].1.as_str())
        .collect();
    assert_eq!(up, ["pg1", "pg2", "pg3"]);
}

#[tokio::test]
async fn unmatched_urls_fall_back_to_host_port_labels() {
    let members = healthy_members().await;
    // /cluster names other servers: no configured URL matches an api_url.
    for m in &members {
        m.set(
            "/cluster",
            Reply::json(fixture("healthy.leader.GET_cluster.200.json")),
        );
    }
    // The roles still come from each member, but lag (from /cluster, by name) is unknown:
    // no replica can be shown to be a failover candidate. Setting `name` fixes it.
    let o = observe(&prober(), &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::degraded(0.0, "failover_not_ready"),
        "{}",
        o.detail
    );
    let leader = members[0].addr.to_string();
    assert!(
        o.detail.starts_with(&format!("leader {leader}, ")),
        "{}",
        o.detail
    );
    assert!(!o.detail.contains("not streaming"), "{}", o.detail);
}

/// An answer that cannot be read (HTML, too large, malformed, wrong types) is not a member
/// down: the probe says `Unknown unreadable_answer`, which no rule acts on (issue #10's
/// fault matrix). A 502 from a proxy is a member down.
#[tokio::test]
async fn html_huge_and_malformed_answers_are_unknown_and_named() {
    let members = healthy_members().await;
    let prober = prober();
    observe(&prober, &members, "2s").await; // learn the names
    members[2].set(
        "/patroni",
        Reply::html(200, &fixture("switchover.bad-json.400.txt")),
    );
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("unreadable_answer"),
        "{}",
        o.detail
    );
    assert!(
        o.detail
            .contains("pg3 down (GET /patroni: answer is not JSON (it looks like an HTML page))"),
        "{}",
        o.detail
    );

    members[1].set("/patroni", Reply::Huge(8 * 1024 * 1024));
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("unreadable_answer"),
        "{}",
        o.detail
    );
    assert!(
        o.detail
            .contains("pg2 down (GET /patroni: answer larger than 1048576 bytes)"),
        "{}",
        o.detail
    );

    members[0].set(
        "/patroni",
        Reply::json(r#"{"state": "running", "role": "master", "timeline": "#),
    );
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("unreadable_answer"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("pg1 down (GET /patroni: malformed JSON"),
        "{}",
        o.detail
    );

    members[0].set(
        "/patroni",
        Reply::json(r#"{"state": "running", "role": 1}"#),
    );
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(o.outcome, Outcome::unknown("unreadable_answer"));
    assert!(
        o.detail
            .contains("pg1 down (GET /patroni: unexpected JSON: role: invalid type"),
        "{}",
        o.detail
    );

    // Only pg1 answers 502; pg2 and pg3 answer properly again: members down, not unknown.
    members[0].set("/patroni", Reply::html(502, "<html>Bad Gateway</html>"));
    for m in &members[1..] {
        m.set(
            "/patroni",
            Reply::json(fixture("healthy.replica.GET_patroni.200.json")),
        );
    }
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(o.outcome, Outcome::failed("no_leader"), "{}", o.detail);
    assert!(
        o.detail.contains("pg1 down (GET /patroni: HTTP 502)"),
        "{}",
        o.detail
    );
}

#[tokio::test]
async fn dropped_cluster_answers_are_the_dcs_not_the_leader() {
    let members = healthy_members().await;
    let prober = prober();
    for m in &members {
        m.set("/cluster", Reply::Close);
    }
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::failed("dcs_unreachable"),
        "{}",
        o.detail
    );
    assert!(
        o.detail
            .contains("DCS unreachable (GET /cluster: connection closed without an answer)"),
        "{}",
        o.detail
    );
    assert!(o.detail.contains("failover not ready"), "{}", o.detail);

    // The etcd-down capture: every member demoted, /cluster silent.
    for m in &members {
        m.set(
            "/patroni",
            Reply::json(fixture("etcd-down.old-leader.GET_patroni.200.json")),
        );
    }
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::failed("dcs_unreachable"),
        "{}",
        o.detail
    );
}

#[tokio::test]
async fn hung_members_are_down_within_the_timeout() {
    let members = healthy_members().await;
    for m in &members {
        m.set("/patroni", Reply::Hang);
        m.set("/cluster", Reply::Hang);
    }
    let started = Instant::now();
    let o = observe(&prober(), &members, "1s").await;
    let took = started.elapsed();
    assert_eq!(
        o.outcome,
        Outcome::failed("all_members_down"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("no answer before the timeout"),
        "{}",
        o.detail
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn nobody_listening_is_all_members_down() {
    let ports: Vec<u16> = (0..2).map(|_| support::free_port()).collect();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[probe]]\nid = \"lab\"\nkind = \"patroni\"\ninterval = \"10s\"\ntimeout = \"1s\"\nmembers = [\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"]\n",
        ports[0], ports[1]
    );
    std::fs::write(dir.path().join("probes.toml"), toml).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    let o = prober().observe(&config, &config.probes[0]).await;
    assert_eq!(
        o.outcome,
        Outcome::failed("all_members_down"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains(&format!(
            "127.0.0.1:{} down (GET /patroni: connection refused)",
            ports[0]
        )),
        "{}",
        o.detail
    );
}
