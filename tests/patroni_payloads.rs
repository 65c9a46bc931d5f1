//! The `patroni` probe's IO against stand-in members that answer with captured Patroni 3.0.2
//! payloads, then misbehave: HTML, a huge body, malformed JSON, a dropped `/cluster`, silence
//! before the headers (a member down) against a body that stalls or is cut off after them (an
//! answer that cannot be read).
//! The real-cluster behaviour is in `tests/patroni.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use astreinte::actuators::patroni::gate;
use astreinte::config::{Config, ProbeSpec, load_dir};
use astreinte::metrics::GaugeName;
use astreinte::probes::patroni::PatroniView;
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

fn config(members: &[FakePatroni], timeout: &str) -> (tempfile::TempDir, Config) {
    let urls: Vec<String> = members.iter().map(|m| format!("\"{}\"", m.url())).collect();
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[[probe]]\nid = \"lab\"\nkind = \"patroni\"\ninterval = \"10s\"\ntimeout = \"{timeout}\"\nmembers = [{}]\n",
        urls.join(", ")
    );
    std::fs::write(dir.path().join("probes.toml"), toml).unwrap();
    std::fs::write(dir.path().join("remediations.toml"), "").unwrap();
    let config = load_dir(dir.path()).unwrap();
    (dir, config)
}

async fn observe(prober: &Prober, members: &[FakePatroni], timeout: &str) -> Observation {
    let (_dir, config) = config(members, timeout);
    prober.observe(&config, &config.probes[0]).await
}

/// The view the Patroni actions read, and the code each action holds on (`None`: it may go).
async fn action_holds(
    prober: &Prober,
    members: &[FakePatroni],
) -> (PatroniView, Option<String>, Option<String>) {
    let (_dir, config) = config(members, "2s");
    let ProbeSpec::Patroni(spec) = &config.probes[0].spec else {
        panic!("not a patroni probe");
    };
    let view = prober
        .patroni_view("lab", spec, Duration::from_secs(2))
        .await;
    // Long enough without a leader: only the view's own preconditions can hold.
    let failover = gate::failover_allowed(&view, Some(Duration::from_secs(3600)), Duration::ZERO)
        .err()
        .map(|h| h.code().to_owned());
    let reinitialize = gate::reinitialize_target(&view)
        .err()
        .map(|h| h.code().to_owned());
    (view, failover, reinitialize)
}

fn member_up(o: &Observation, member: &str) -> Option<f64> {
    o.measurements
        .iter()
        .find(|m| m.gauge == GaugeName::PatroniMemberUp && m.labels[1].1 == member)
        .map(|m| m.value)
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
        o.detail.contains(
            "pg3 unreadable (GET /patroni: answer is not JSON (it looks like an HTML page))"
        ),
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
            .contains("pg2 unreadable (GET /patroni: answer larger than 1048576 bytes)"),
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
        o.detail
            .contains("pg1 unreadable (GET /patroni: malformed JSON"),
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
            .contains("pg1 unreadable (GET /patroni: unexpected JSON: role: invalid type"),
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
    // The DCS (their /cluster) still names pg1 leader: it is unreachable, not simply gone.
    assert_eq!(
        o.outcome,
        Outcome::failed("leader_unreachable"),
        "{}",
        o.detail
    );
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

/// Silence before the status line (accepted, nothing sent: a SIGSTOPped Patroni) is a member
/// down, unlike a body that stalls after the headers (below).
#[tokio::test]
async fn hung_members_are_down_within_the_timeout() {
    let members = healthy_members().await;
    for m in &members {
        m.set("/patroni", Reply::HangBeforeHeaders);
        m.set("/cluster", Reply::HangBeforeHeaders);
    }
    let o = observe(&prober(), &members, "1s").await;
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

/// Every member sends its status line and headers, then stalls the body: every member is
/// alive and unreadable, so `Unknown`, not `all_members_down`, and within the timeout.
#[tokio::test]
async fn members_hung_after_the_headers_are_unknown_within_the_timeout() {
    let members = healthy_members().await;
    let prober = prober();
    observe(&prober, &members, "2s").await; // learn the names
    let cluster = fixture("healthy.leader.GET_cluster.200.json").into_bytes();
    for m in &members {
        m.set(
            "/patroni",
            Reply::HangAfterHeaders(fixture("healthy.replica.GET_patroni.200.json").into_bytes()),
        );
        m.set("/cluster", Reply::HangAfterHeaders(cluster.clone()));
    }
    let o = observe(&prober, &members, "1s").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("unreadable_answer"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains(
            "pg1 unreadable (GET /patroni: HTTP 200, then the body stalled after the headers)"
        ),
        "{}",
        o.detail
    );
    assert!(!o.detail.contains(" down ("), "{}", o.detail);
    assert_eq!(member_up(&o, "pg1"), None);
}

/// The leader stalls mid-body while both replicas answer well: the leader may be fine, so the
/// probe is `Unknown` (not `no_leader`, which a failover rule acts on) and both actions hold.
#[tokio::test]
async fn a_leader_hung_after_the_headers_is_unknown_and_holds_failover() {
    let members = healthy_members().await;
    let prober = prober();
    observe(&prober, &members, "2s").await; // learn the names
    members[0].set(
        "/patroni",
        Reply::HangAfterHeaders(fixture("healthy.leader.GET_patroni.200.json").into_bytes()),
    );
    let o = observe(&prober, &members, "1s").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("unreadable_answer"),
        "{}",
        o.detail
    );
    assert!(
        o.detail
            .contains("pg1 unreadable (GET /patroni: HTTP 200, then the body stalled"),
        "{}",
        o.detail
    );
    assert_eq!(member_up(&o, "pg1"), None);
    assert_eq!(member_up(&o, "pg2"), Some(1.0));

    let (view, failover, reinitialize) = action_holds(&prober, &members).await;
    assert!(view.leader().is_none(), "{}", view.summary());
    assert_eq!(failover.as_deref(), Some("unreadable_answer"));
    assert_eq!(reinitialize.as_deref(), Some("unreadable_answer"));

    // Whole answers again: judged normally, and the actions' own gates speak.
    members[0].set(
        "/patroni",
        Reply::json(fixture("healthy.leader.GET_patroni.200.json")),
    );
    let o = observe(&prober, &members, "1s").await;
    assert_eq!(o.outcome, Outcome::Healthy, "{}", o.detail);
    let (_, failover, _) = action_holds(&prober, &members).await;
    assert_eq!(failover.as_deref(), Some("patroni_handling_it"));
}

/// One replica's answer is cut mid-body (connection closed before `Content-Length` bytes)
/// while the leader answers well. The choice (see `assess`): the whole probe is `Unknown`,
/// because that replica's role is unknown (it could be a second primary) and it may be the
/// only failover candidate; but it is not called down (no `member_down`, no `member_up` 0)
/// nor lagging, and the rest of the cluster is still shown. Actions hold.
#[tokio::test]
async fn a_replica_cut_mid_body_is_unreadable_not_down() {
    let members = healthy_members().await;
    let prober = prober();
    observe(&prober, &members, "2s").await; // learn the names
    members[2].set(
        "/patroni",
        Reply::CutMidBody(fixture("healthy.replica.GET_patroni.200.json").into_bytes()),
    );
    let o = observe(&prober, &members, "2s").await;
    assert_eq!(
        o.outcome,
        Outcome::unknown("unreadable_answer"),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains(
            "pg3 unreadable (GET /patroni: HTTP 200, then the body was cut short (connection closed))"
        ),
        "{}",
        o.detail
    );
    assert!(
        o.detail.contains("pg1 leader running, timeline 1"),
        "{}",
        o.detail
    );
    assert!(
        !o.detail.contains("pg3 down") && !o.detail.contains("behind by"),
        "{}",
        o.detail
    );
    assert_eq!(member_up(&o, "pg3"), None);
    assert_eq!(member_up(&o, "pg1"), Some(1.0));
    assert_eq!(member_up(&o, "pg2"), Some(1.0));

    let (view, failover, reinitialize) = action_holds(&prober, &members).await;
    assert!(view.members[2].is_unreadable(), "{}", view.summary());
    assert!(view.members_down().is_empty(), "{}", view.summary());
    assert!(view.lagging().is_empty(), "{}", view.summary());
    assert_eq!(failover.as_deref(), Some("unreadable_answer"));
    assert_eq!(reinitialize.as_deref(), Some("unreadable_answer"));

    // A `/cluster` cut short is unreadable too (not the DCS lost).
    members[2].set(
        "/patroni",
        Reply::json(fixture("healthy.replica.GET_patroni.200.json")),
    );
    members[2].set(
        "/cluster",
        Reply::CutMidBody(fixture("healthy.leader.GET_cluster.200.json").into_bytes()),
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
            .contains("pg3 (GET /cluster: HTTP 200, then the body was cut short"),
        "{}",
        o.detail
    );
}
