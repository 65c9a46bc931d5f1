//! Supervision with the real binary: a panic injected in each long-lived task (the test-only
//! knob `ASTREINTE_TEST_PANIC=<task>`) ends the daemon with a non-zero exit code and a log line
//! naming the task; after the leader task died, no action is taken. The time from the
//! supervisor's log line to the exit is measured and printed (not asserted: a loaded machine
//! must not fail the suite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use astreinte::testbed::Proc;
use support::kube_api::{KubeApi, objects};

const BIN: &str = env!("CARGO_BIN_EXE_astreinte");

/// A probe that fails at once (nothing listens on port 1), so the engine sees observations.
const TCP_PROBE: &str = "[[probe]]\nid = \"down\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ninterval = \"500ms\"\ntimeout = \"400ms\"\n";

fn command(dir: &Path, port: u16, task: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config")
        .arg(dir)
        .args(["--log-format", "json", "run", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("ASTREINTE_TEST_PANIC", task)
        .env("HOSTNAME", "astreinte-0")
        .env_remove("KUBECONFIG")
        .stdout(Stdio::null());
    cmd
}

/// Waits (generously) for the exit; returns the code and when the exit was seen.
async fn exit_of(daemon: &mut Proc) -> (Option<i32>, jiff::Timestamp) {
    // Polled every 10 ms so that the measured time is close; the 30 s only fails the test.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(code) = daemon.try_exit_code() {
            return (code, jiff::Timestamp::now());
        }
        assert!(Instant::now() < deadline, "still running 30 s after start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The JSON log line of the supervisor, and the time from it to the exit.
fn supervisor_line(log: &Path, exited: jiff::Timestamp) -> (serde_json::Value, Duration) {
    let text = std::fs::read_to_string(log).unwrap();
    let line = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "supervised task ended: stopping the daemon")
        .unwrap_or_else(|| panic!("no supervisor line in the log:\n{text}"));
    let at: jiff::Timestamp = line["timestamp"].as_str().unwrap().parse().unwrap();
    let took = Duration::try_from(exited.duration_since(at)).unwrap_or_default();
    (line, took)
}

async fn panics_and_exits(dir: &Path, task: &str) -> Duration {
    let log = dir.join(format!("{task}.log"));
    let started = Instant::now();
    let mut daemon =
        Proc::spawn("astreinte", command(dir, support::free_port(), task), &log).unwrap();
    let (code, exited) = exit_of(&mut daemon).await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        matches!(code, Some(c) if c != 0),
        "{task}: exit code {code:?}\n{text}"
    );
    let (line, took) = supervisor_line(&log, exited);
    assert_eq!(line["task"], task, "{line}");
    assert!(line["error"].as_str().unwrap().contains("panic"), "{line}");
    assert!(text.contains("astreinte stopped"), "{text}");
    eprintln!(
        "{task}: panic to exit {} ms (start to exit {} ms)",
        took.as_millis(),
        started.elapsed().as_millis()
    );
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_any_local_task_ends_the_daemon_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("probes.toml"), TCP_PROBE).unwrap();
    // A receiver, so that the notifier task exists (nothing listens there: it never sends).
    std::fs::write(
        dir.path().join("remediations.toml"),
        "[[notify]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/hook\"\n",
    )
    .unwrap();
    let mut times = vec![];
    for task in [
        "engine",
        "scheduler",
        "server",
        "reloader",
        "sighup",
        "clock-skew",
        "notifier",
    ] {
        times.push((task, panics_and_exits(dir.path(), task).await));
    }
    eprintln!("panic to exit: {times:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_cluster_task_ends_the_daemon_and_the_dead_leader_never_acts() {
    astreinte::app::install_crypto();
    let api = KubeApi::start().await;
    api.put(objects::node("node-a", true));
    // A Deployment with nothing available: the rule below would restart it once it held
    // for 2 s, if this replica still led.
    api.put(objects::deployment("shop", "api", 2, 0));
    api.put(objects::configmap(
        "astreinte",
        "astreinte-policy",
        serde_json::json!({ "probes.toml": "", "remediations.toml": "" }),
    ));
    let dir = tempfile::tempdir().unwrap();
    let probes = format!(
        "[kubernetes]\nkubeconfig = \"{}\"\npolicy_configmap = \"astreinte-policy\"\n\
         [kubernetes.lease]\nduration = \"2s\"\nrenew = \"200ms\"\n\n\
         [[probe]]\nid = \"api\"\nkind = \"workload\"\nnamespace = \"shop\"\ndeployment = \"api\"\n\
         interval = \"500ms\"\ntimeout = \"400ms\"\n",
        api.kubeconfig().display()
    );
    std::fs::write(dir.path().join("probes.toml"), probes).unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"restart\"\n\
         trigger = { probe = \"api\", min_level = \"P3\", for = \"2s\" }\n\
         action = { kind = \"rollout_restart\", namespace = \"shop\", deployment = \"api\" }\n",
    )
    .unwrap();
    let leader = panics_and_exits(dir.path(), "leader").await;
    // It took the Lease (the fault point is after a successful round)…
    let lease = api
        .get(
            "coordination.k8s.io/v1",
            "leases",
            "astreinte",
            "astreinte-leader",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "astreinte-0", "{lease}");
    // …and, with its leader task dead, never acted: the daemon is gone, and the Deployment
    // was never patched.
    let patches = api.requests_to("patch", "/deployments/api");
    assert!(patches.is_empty(), "{patches:?}");
    let watch = panics_and_exits(dir.path(), "policy-watch").await;
    eprintln!("panic to exit: leader {leader:?}, policy-watch {watch:?}");
}
