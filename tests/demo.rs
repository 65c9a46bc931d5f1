//! `astreinte demo` end to end, as a process: the real stack comes up and every probe of it is
//! healthy; `demo fault break-api` opens a P1 incident that the enforced rule repairs
//! (decision, action, verification on the timeline); `kill-leader` shows no leader, then a new
//! one; `redis-replica-down` and `slow-api` degrade their probes; `heal` turns everything green;
//! SIGINT stops the demo with exit 0, and not one process it started (etcd, Patroni,
//! PostgreSQL, Redis) is left. A signal halfway through the start, or a daemon that cannot
//! listen, stops what was started.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use astreinte::testbed::procfs;
use astreinte::testbed::{free_port, wait_for};
use procfs::started_by;
use rustix::process::Signal;
use serde_json::Value;
use support::demo_process::{all_green, client, fault, get_json, logs, start_demo, wait_probe};

/// The `rag-api` incident whose timeline shows the enforced rule acting and verifying.
fn repaired(incidents: &Value) -> Option<Value> {
    let all = incidents["open"]
        .as_array()?
        .iter()
        .chain(incidents["recent"].as_array()?.iter());
    all.filter(|i| i["key"] == "rag-api" && i["reason"] == "bad_status")
        .find(|i| {
            let timeline = i["timeline"].as_array().cloned().unwrap_or_default();
            let has = |kind: &str, text: &str| {
                timeline
                    .iter()
                    .any(|e| e["kind"] == kind && e["text"].as_str().unwrap_or("").contains(text))
            };
            has("decision", "act: http (rule api-restart)")
                && has("action", "/admin/restart: HTTP 200")
                && has("verification", "ok")
        })
        .cloned()
}

#[tokio::test]
async fn the_demo_runs_a_real_stack_repairs_the_api_and_leaves_nothing_behind() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let port = free_port().unwrap();
    let mut guard = start_demo(work.path(), &dir, port);
    let demo = &mut guard.0;
    let base = format!("http://127.0.0.1:{port}");
    let http = client();

    // Every probe of the stack healthy (the root disk of a build machine may be full-ish: it
    // only has to be probed).
    let healthy = wait_for("every demo probe healthy", Duration::from_secs(120), || {
        let (http, url) = (http.clone(), format!("{base}/status"));
        async move {
            let status = get_json(&http, &url).await?;
            let probes = status["probes"].as_array()?.clone();
            let ids: BTreeSet<&str> = probes.iter().filter_map(|p| p["probe"].as_str()).collect();
            let expected = [
                "rag-api-health",
                "pg-cluster",
                "pg-first-leader",
                "redis",
                "redis-master-port",
                "root-disk",
            ];
            let all_there = expected.iter().all(|e| ids.contains(e));
            (all_there && all_green(&probes)).then_some(probes)
        }
    })
    .await;
    if let Err(e) = healthy {
        panic!("{e}\n{}", logs(work.path()));
    }
    let control: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("control.json")).unwrap()).unwrap();
    assert_eq!(control["pid"], demo.pid());
    assert_eq!(control["daemon"], base);

    let dir_text = dir.canonicalize().unwrap().display().to_string();
    let started = started_by(demo.pid(), &dir_text);
    for binary in [
        "/usr/bin/etcd",
        "patroni",
        "postgresql/15/bin/postgres",
        "redis-server",
    ] {
        assert!(
            started.iter().any(|p| p.cmdline.contains(binary)),
            "no {binary} among the demo's processes: {started:#?}"
        );
    }

    // break-api: P1, the enforced rule restarts the service, and verifies it.
    let said = fault(&dir, "break-api").await;
    assert!(
        said.contains("500") && said.contains("api-restart"),
        "{said}"
    );
    let repaired = wait_for(
        "api-restart acted and verified",
        Duration::from_secs(60),
        || {
            let (http, url) = (http.clone(), format!("{base}/incidents"));
            async move { repaired(&get_json(&http, &url).await?) }
        },
    )
    .await;
    let incident = match repaired {
        Ok(i) => i,
        Err(e) => panic!(
            "{e}\nincidents: {:#}\n{}",
            get_json(&http, &format!("{base}/incidents"))
                .await
                .unwrap_or_default(),
            logs(work.path())
        ),
    };
    assert_eq!(incident["peak"], "P1", "{incident:#}");
    let decisions = get_json(&http, &format!("{base}/decisions")).await.unwrap();
    let rules: Vec<&str> = decisions
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["rule"].as_str())
        .collect();
    for rule in ["api-restart", "api-scale-up", "pg-failover", "redis-page"] {
        assert!(rules.contains(&rule), "{rule} missing from {decisions:#}");
    }
    let restart = decisions
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["rule"] == "api-restart")
        .unwrap();
    assert_eq!(restart["incident"], incident["id"], "{restart:#}");

    // kill-leader: no leader (P2 on `postgres`), then Patroni elects another one by itself.
    let said = fault(&dir, "kill-leader").await;
    let old_leader = said
        .strip_prefix("crashed the Patroni leader ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{said}"))
        .to_owned();
    // The DCS still names the crashed leader until its key expires (leader_unreachable),
    // then names none (no_leader) unless Patroni has elected a new one by then.
    wait_probe(&http, &base, "pg-cluster", "a leader loss", |p| {
        (p["reason"] == "leader_unreachable" || p["reason"] == "no_leader").then_some(())
    })
    .await;
    let new_leader = wait_probe(&http, &base, "pg-cluster", "a new Patroni leader", |p| {
        let detail = p["detail"].as_str()?;
        let leader = detail
            .strip_prefix("leader ")?
            .split(';')
            .next()?
            .to_owned();
        (leader != old_leader).then_some(leader)
    })
    .await;
    assert_ne!(new_leader, old_leader);
    let postgres = wait_for("a P2 incident on postgres", Duration::from_secs(30), || {
        let (http, url) = (http.clone(), format!("{base}/incidents"));
        async move {
            let all = get_json(&http, &url).await?;
            all["open"]
                .as_array()?
                .iter()
                .chain(all["recent"].as_array()?.iter())
                .find(|i| i["key"] == "postgres" && i["peak"] == "P2")
                .cloned()
        }
    })
    .await
    .unwrap();
    assert_eq!(postgres["level"], "P2", "{postgres:#}");

    // redis-replica-down and slow-api: degraded, each with its reason.
    fault(&dir, "redis-replica-down").await;
    wait_probe(&http, &base, "redis", "master_link_down", |p| {
        (p["reason"] == "master_link_down").then_some(())
    })
    .await;
    fault(&dir, "slow-api").await;
    wait_probe(&http, &base, "rag-api-health", "slow", |p| {
        (p["outcome"] == "degraded" && p["reason"] == "slow").then_some(())
    })
    .await;

    // heal: the crashed member rejoins, every probe is green again.
    let said = fault(&dir, "heal").await;
    assert!(said.starts_with("healed"), "{said}");
    let green =
        wait_for(
            "every probe green after heal",
            Duration::from_secs(90),
            || {
                let (http, url) = (http.clone(), format!("{base}/status"));
                async move {
                    all_green(get_json(&http, &url).await?["probes"].as_array()?).then_some(())
                }
            },
        )
        .await;
    if let Err(e) = green {
        panic!(
            "{e}
status: {:#}
{}",
            get_json(&http, &format!("{base}/status"))
                .await
                .unwrap_or_default(),
            logs(work.path())
        );
    }
    // The restarted member's processes count as started by the demo too.
    let mut started = started;
    started.extend(started_by(demo.pid(), &dir_text));

    // SIGINT: exit 0 within a bound, and nothing left behind.
    demo.signal(Signal::INT);
    let code = wait_for("the demo to exit", Duration::from_secs(40), || {
        let code = demo.try_exit_code();
        async move { code }
    })
    .await;
    let code = match code {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{}", logs(work.path())),
    };
    assert_eq!(code, Some(0), "{}", logs(work.path()));
    let left = procfs::still_running(&started);
    assert!(
        left.is_empty(),
        "still running after the demo stopped: {left:#?}"
    );
    // Nor anything else that names the directory or works in it.
    let inside = started_by(0, &dir_text);
    assert!(inside.is_empty(), "{inside:#?}");
    assert!(!dir.join("control.json").exists(), "control.json is left");
    let out = std::fs::read_to_string(work.path().join("demo.out")).unwrap();
    assert!(
        out.contains("stopped etcd, Patroni, PostgreSQL and Redis"),
        "{out}"
    );
}

#[tokio::test]
async fn a_signal_halfway_through_the_start_stops_what_was_started() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    let port = free_port().unwrap();
    let mut guard = start_demo(work.path(), &dir, port);
    let demo = &mut guard.0;
    // Halfway: Redis and etcd run, a Patroni member is starting, the daemon is not up yet.
    let dir_text = wait_for("the demo directory", Duration::from_secs(10), || {
        let d = dir.canonicalize().ok();
        async move { d }
    })
    .await
    .unwrap()
    .display()
    .to_string();
    let demo_pid = demo.pid();
    let started = wait_for("a Patroni member starting", Duration::from_secs(60), || {
        let started = started_by(demo_pid, &dir_text);
        let patroni = started.iter().any(|p| p.cmdline.contains("bin/patroni"));
        async move { patroni.then_some(started) }
    })
    .await;
    let started = match started {
        Ok(s) => s,
        Err(e) => panic!("{e}\n{}", logs(work.path())),
    };
    assert!(
        started.iter().any(|p| p.cmdline.contains("redis-server")),
        "{started:#?}"
    );
    assert!(
        !dir.join("control.json").exists(),
        "the demo was already up"
    );

    demo.signal(Signal::INT);
    let code = wait_for("the demo to exit", Duration::from_secs(30), || {
        let code = demo.try_exit_code();
        async move { code }
    })
    .await;
    let code = match code {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{}", logs(work.path())),
    };
    assert_eq!(code, Some(1), "{}", logs(work.path()));
    let err = std::fs::read_to_string(work.path().join("demo.err")).unwrap();
    assert!(err.contains("stopped by a signal while starting"), "{err}");
    let left = procfs::still_running(&started);
    assert!(left.is_empty(), "still running: {left:#?}");
    // Nor anything else that names the directory or works in it.
    let inside = started_by(0, &dir_text);
    assert!(inside.is_empty(), "{inside:#?}");
}

#[tokio::test]
async fn a_daemon_that_cannot_listen_stops_the_stack_it_runs_on() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("demo");
    // The port is taken: the stack starts, then the daemon fails to listen.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut guard = start_demo(work.path(), &dir, port);
    let demo = &mut guard.0;
    let code = wait_for("the demo to fail", Duration::from_secs(120), || {
        let code = demo.try_exit_code();
        async move { code }
    })
    .await;
    let code = match code {
        Ok(c) => c,
        Err(e) => panic!("{e}\n{}", logs(work.path())),
    };
    assert_eq!(code, Some(1), "{}", logs(work.path()));
    let out = std::fs::read_to_string(work.path().join("demo.out")).unwrap();
    assert!(
        out.contains("astreinte demo is running"),
        "the stack never came up: {out}"
    );
    let err = std::fs::read_to_string(work.path().join("demo.err")).unwrap();
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
    let dir_text = dir.canonicalize().unwrap().display().to_string();
    let inside = started_by(0, &dir_text);
    assert!(inside.is_empty(), "left running: {inside:#?}");
    drop(taken);
}
