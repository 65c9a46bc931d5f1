//! `astreinte incidents`, `incidents show`, `incidents postmortem` and `explain` as processes
//! against the real daemon, and the error when no daemon runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::scenario::{BIN, Scenario};

#[tokio::test]
async fn the_cli_reads_incidents_timelines_postmortems_and_decisions() {
    let s = Scenario::start().await;
    let url = s.daemon.base.clone();

    // No --url: server.listen (0.0.0.0:PORT) of the configuration, reached on loopback.
    let (code, table, stderr) = s.cli(&["incidents"]).await;
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID")
            && lines[0].contains("LEVEL/PEAK")
            && lines[0].contains("BREACHED"),
        "{table}"
    );
    // The open incident first, then the resolved one.
    assert!(lines[1].starts_with(&s.open_id), "{table}");
    assert!(
        lines[1].contains("P1/P1") && lines[1].contains("connection_refused"),
        "{table}"
    );
    assert!(lines[1].contains("open"), "{table}");
    assert!(lines[2].starts_with(&s.resolved_id), "{table}");
    assert!(!lines[2].contains(" open "), "{table}");
    assert_eq!(lines.len(), 3, "{table}");

    let (code, json, _) = s
        .cli(&["incidents", "--url", &url, "--output", "json"])
        .await;
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["open"][0]["id"], s.open_id.as_str(), "{json}");
    assert_eq!(v["recent"][0]["id"], s.resolved_id.as_str(), "{json}");

    let (code, timeline, stderr) = s
        .cli(&["incidents", "show", &s.open_id, "--url", &url])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        timeline.starts_with(&format!("incident {}: api connection refused", s.open_id)),
        "{timeline}"
    );
    assert!(
        timeline.contains("TIME") && timeline.contains("WHAT HAPPENED"),
        "{timeline}"
    );
    let detected = timeline
        .lines()
        .find(|l| l.contains("P1 detected: connection_refused"))
        .unwrap_or_else(|| panic!("no detection entry in:\n{timeline}"));
    // Times in the policy time zone.
    assert!(
        detected.contains(" CET ") || detected.contains(" CEST "),
        "{detected}"
    );
    assert!(detected.contains("detected"), "{detected}");
    assert!(
        timeline.contains("dry-run: would http (rule restart-api)"),
        "{timeline}"
    );

    let (code, md, stderr) = s
        .cli(&["incidents", "postmortem", &s.resolved_id, "--url", &url])
        .await;
    assert_eq!(code, 0, "{stderr}");
    assert!(
        md.starts_with(&format!("# Post-Mortem Incident #{}", s.resolved_id)),
        "{md}"
    );
    assert!(md.contains("## Timeline"), "{md}");

    let (code, _, stderr) = s
        .cli(&["incidents", "postmortem", &s.open_id, "--url", &url])
        .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("is still open"), "{stderr}");
    let (code, _, stderr) = s
        .cli(&["incidents", "show", "99-nope", "--url", &url])
        .await;
    assert_eq!(code, 1);
    assert!(stderr.contains("no incident `99-nope`"), "{stderr}");

    let (code, explain, stderr) = s.cli(&["explain", "--url", &url]).await;
    assert_eq!(code, 0, "{stderr}");
    let decisions = s.json("/decisions").await.unwrap();
    let line = decisions[0]["line"].as_str().unwrap();
    let row = explain
        .lines()
        .find(|l| l.starts_with("restart-api"))
        .unwrap_or_else(|| panic!("no row for restart-api in:\n{explain}"));
    assert!(explain.starts_with("RULE"), "{explain}");
    assert!(row.ends_with(line), "{row}\n{line}");
    assert!(row.contains(&s.open_id), "{row}");
}

#[test]
fn without_a_daemon_the_cli_says_so_and_exits_1() {
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [vec!["incidents"], vec!["explain"]] {
        let out = std::process::Command::new(BIN)
            .args(&args)
            .args(["--url", &url])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!(
                "astreinte: cannot reach astreinte at {url}: connection refused; is `astreinte run` running?"
            ),
            "{args:?}"
        );
        assert!(out.stdout.is_empty());
    }
}
