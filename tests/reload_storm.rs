//! Fault matrix, config reload storm: the real daemon against the Kubernetes API test server,
//! 100 edits of the policy ConfigMap in 10 s, every other one invalid (TOML syntax, unknown
//! field, bad duration, semantic errors from `validate()`), the last one invalid and the one
//! before it valid. Every invalid version also points the probes at a failing URL, so that
//! applying any part of it would show (a probe of `/fail`, then an action). And outside
//! Kubernetes: SIGHUP re-reads the configuration directory, with the same rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use astreinte::testbed::Proc;
use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::json;
use support::kube_api::{KubeApi, objects};
use support::{free_port, serve_local, wait_for};

/// The probe ids of the valid versions, by how many probes they have.
const IDS: [&str; 3] = ["api", "api-b", "api-c"];

/// The local target: `/ok`, `/fail` (counted: no valid version probes it) and `/reboot`
/// (counted: the rule's action).
struct Target {
    addr: std::net::SocketAddr,
    fail_hits: Arc<AtomicUsize>,
    reboots: Arc<AtomicUsize>,
    _stop: tokio_util::sync::CancellationToken,
}

async fn target() -> Target {
    let fail_hits = Arc::new(AtomicUsize::new(0));
    let reboots = Arc::new(AtomicUsize::new(0));
    let (f, r) = (fail_hits.clone(), reboots.clone());
    let app = Router::new()
        .route("/ok", get(|| async { "ok\n" }))
        .route(
            "/fail",
            get(move || {
                f.fetch_add(1, Ordering::SeqCst);
                async { (StatusCode::INTERNAL_SERVER_ERROR, "down\n") }
            }),
        )
        .route(
            "/reboot",
            post(move || {
                r.fetch_add(1, Ordering::SeqCst);
                async { "rebooting\n" }
            }),
        );
    let (addr, stop) = serve_local(app).await;
    Target {
        addr,
        fail_hits,
        reboots,
        _stop: stop,
    }
}

/// How many probes valid version `k` has (1 to 3).
fn probe_count(k: usize) -> usize {
    1 + k % 3
}

fn probe(id: &str, target: &str, url: &str, extra: &str) -> String {
    format!(
        "[[probe]]\nid = \"{id}\"\nkind = \"http\"\ntarget = \"{target}\"\nurl = \"{url}\"\n\
         interval = \"1s\"\ntimeout = \"500ms\"\n{extra}\n"
    )
}

/// A rule that would act as soon as `api` fails: enforce, no `for`.
fn remediations(addr: std::net::SocketAddr) -> String {
    format!(
        "[policy]\nmode = \"enforce\"\n\n[[rule]]\nid = \"reboot\"\n\
         trigger = {{ probe = \"api\", min_level = \"P2\" }}\n\
         action = {{ kind = \"http\", method = \"POST\", url = \"http://{addr}/reboot\" }}\n\
         budget = {{ max = 1, per = \"1h\" }}\n"
    )
}

/// Valid version `k`: `probe_count(k)` healthy probes whose target names the version.
fn valid(addr: std::net::SocketAddr, k: usize) -> (String, String) {
    let probes: String = IDS[..probe_count(k)]
        .iter()
        .map(|id| probe(id, &format!("v{k}"), &format!("http://{addr}/ok"), ""))
        .collect();
    (probes, remediations(addr))
}

/// The ways an edit goes wrong: (ConfigMap key, what its problem names, the edit).
type Breakage = (
    &'static str,
    &'static str,
    fn(&str, &str) -> (String, String),
);

const BREAKAGES: [Breakage; 5] = [
    ("remediations.toml", "line 1, column", |p, r| {
        (p.to_owned(), format!("[policy\n{r}"))
    }),
    ("probes.toml", "found `colour`", |p, r| {
        (format!("{p}colour = \"red\"\n"), r.to_owned())
    }),
    ("probes.toml", "probe \"api\": field `interval`", |p, r| {
        (
            p.replace("interval = \"1s\"", "interval = \"soon\""),
            r.to_owned(),
        )
    }),
    ("probes.toml", "field `timeout`", |p, r| {
        (
            p.replace("timeout = \"500ms\"", "timeout = \"2s\""),
            r.to_owned(),
        )
    }),
    ("remediations.toml", "field `trigger.probe`", |p, r| {
        (
            p.to_owned(),
            r.replace("probe = \"api\"", "probe = \"nope\""),
        )
    }),
];

/// Invalid version `k`: the probe `api` on `/fail` (a "poison" that shows if applied), and
/// breakage `k % 5`.
fn invalid(addr: std::net::SocketAddr, k: usize) -> (String, String) {
    let probes = probe("api", &format!("v{k}"), &format!("http://{addr}/fail"), "");
    (BREAKAGES[k % BREAKAGES.len()].2)(&probes, &remediations(addr))
}

fn policy((probes, remediations): (String, String)) -> serde_json::Value {
    objects::configmap(
        "astreinte",
        "astreinte-policy",
        json!({ "probes.toml": probes, "remediations.toml": remediations }),
    )
}

async fn get_text(url: &str) -> Option<String> {
    let r = reqwest::get(url).await.ok()?;
    r.status().is_success().then_some(())?;
    r.text().await.ok()
}

/// The (probe, target) pairs on `/status`.
async fn status(base: &str) -> Option<Vec<(String, String)>> {
    let body = get_text(&format!("{base}/status")).await?;
    let v: serde_json::Value = serde_json::from_str(&body).ok()?;
    Some(
        v["probes"]
            .as_array()?
            .iter()
            .map(|p| {
                (
                    p["probe"].as_str().unwrap_or_default().to_owned(),
                    p["target"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    )
}

/// Waits until `/status` shows exactly the probes of valid version `k`, and as many probe
/// tasks run.
async fn wait_for_version(base: &str, k: usize) {
    let expected: Vec<(String, String)> = IDS[..probe_count(k)]
        .iter()
        .map(|id| ((*id).to_owned(), format!("v{k}")))
        .collect();
    wait_for(
        &format!("version {k} on /status"),
        Duration::from_secs(10),
        || async { status(base).await.filter(|s| *s == expected) },
    )
    .await;
    let tasks = format!("astreinte_probe_tasks {}\n", probe_count(k));
    wait_for(tasks.trim(), Duration::from_secs(10), || async {
        get_text(&format!("{base}/metrics"))
            .await
            .filter(|t| t.contains(&tasks))
    })
    .await;
}

fn start(dir: &Path, port: u16) -> Proc {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.arg("--config")
        .arg(dir)
        .args(["run", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("HOSTNAME", "astreinte-0")
        .env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_SERVICE_HOST");
    Proc::spawn("astreinte", cmd, &dir.join("astreinte.log")).unwrap()
}

async fn healthy(base: &str) {
    wait_for("/healthz", Duration::from_secs(20), || async {
        get_text(&format!("{base}/healthz")).await
    })
    .await;
}

fn write(dir: &Path, (probes, remediations): (String, String), head: &str) {
    std::fs::write(dir.join("probes.toml"), format!("{head}{probes}")).unwrap();
    std::fs::write(dir.join("remediations.toml"), remediations).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_configmap_edits_ends_on_the_last_good_one() {
    astreinte::app::install_crypto();
    let t = target().await;
    let api = KubeApi::start().await;
    api.put(policy(valid(t.addr, 0)));
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "[journal]\npath = \"{}\"\n\n[kubernetes]\nkubeconfig = \"{}\"\npolicy_configmap = \"astreinte-policy\"\n\
         [kubernetes.lease]\nduration = \"2s\"\nrenew = \"200ms\"\n\n",
        dir.path().join("journal.json").display(),
        api.kubeconfig().display()
    );
    write(dir.path(), valid(t.addr, 0), &head);
    let port = free_port();
    let mut daemon = start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    healthy(&base).await;
    wait_for_version(&base, 0).await;

    // 100 edits in 10 s: odd ones valid, even ones invalid; the last (100) invalid.
    const EDITS: usize = 100;
    for k in 1..=EDITS {
        let version = if k % 2 == 1 {
            valid(t.addr, k)
        } else {
            invalid(t.addr, k)
        };
        api.put(policy(version));
        tokio::time::sleep(Duration::from_millis(100)).await; // the storm's pace
    }

    // Every version judged (none skipped by the watch), and the daemon still up.
    let metrics = wait_for("every edit judged", Duration::from_secs(20), || async {
        get_text(&format!("{base}/metrics"))
            .await
            .filter(|t| t.contains("astreinte_config_reload_total{result=\"invalid\"} 50\n"))
    })
    .await;
    assert!(
        metrics.contains("astreinte_config_reload_total{result=\"applied\"} 51\n"),
        "the initial version and the 50 valid edits: {metrics}"
    );
    assert!(daemon.is_running(), "the daemon survived the storm");
    healthy(&base).await;

    // The last valid version (99) runs, with exactly its probe tasks.
    wait_for_version(&base, EDITS - 1).await;

    // Nothing of an invalid version was ever applied: no probe of `/fail`, no action.
    assert_eq!(
        t.fail_hits.load(Ordering::SeqCst),
        0,
        "a poisoned probe ran"
    );
    assert_eq!(t.reboots.load(Ordering::SeqCst), 0, "an action ran");
    let metrics = get_text(&format!("{base}/metrics")).await.unwrap();
    assert!(
        !metrics.contains("result=\"failed\""),
        "no failed probe run, no failed action: {metrics}"
    );

    // Each rejection is in the log, naming the ConfigMap key and the field.
    let log = std::fs::read_to_string(dir.path().join("astreinte.log")).unwrap();
    let rejected = log
        .lines()
        .filter(|l| l.contains("rejected, keeping the last good configuration"))
        .count();
    assert_eq!(rejected, 50, "{log}");
    for (key, field, _) in BREAKAGES {
        let named = log
            .lines()
            .filter(|l| {
                l.contains("invalid configuration origin=configmap astreinte/astreinte-policy")
            })
            .filter(|l| l.contains(&format!("key {key}")) && l.contains(field))
            .count();
        assert_eq!(named, 10, "{key} / {field}: {log}");
    }
    let events = api
        .events("astreinte")
        .into_iter()
        .filter(|e| e["reason"] == "AstreinteConfigInvalid")
        .count();
    assert!(events >= 1, "Warning Events on the ConfigMap");

    // The ConfigMap has none of the directory's `[journal]` and `[kubernetes]`: those keep
    // running as started (the watch goes on), each change is named, and a restart is pending.
    assert!(
        metrics.contains("astreinte_config_restart_pending 1\n"),
        "{metrics}"
    );
    for field in [
        "[journal].path",
        "[kubernetes].kubeconfig",
        "[kubernetes].lease",
        "[kubernetes].policy_configmap",
    ] {
        assert!(
            log.contains(&format!("`{field}` changed: restart to apply")),
            "{field}: {log}"
        );
    }
    daemon.stop(Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_directory_and_refuses_a_bad_edit() {
    astreinte::app::install_crypto();
    let t = target().await;
    let dir = tempfile::tempdir().unwrap();
    let head = format!(
        "[journal]\npath = \"{}\"\n\n",
        dir.path().join("journal.json").display()
    );
    write(dir.path(), valid(t.addr, 0), &head);
    let port = free_port();
    let mut daemon = start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    healthy(&base).await;
    wait_for_version(&base, 0).await;

    let reloads = |result: &'static str, n: usize| {
        let base = base.clone();
        async move {
            let line = format!("astreinte_config_reload_total{{result=\"{result}\"}} {n}\n");
            wait_for(&line.clone(), Duration::from_secs(10), || async {
                get_text(&format!("{base}/metrics"))
                    .await
                    .filter(|t| t.contains(&line))
            })
            .await;
        }
    };

    write(dir.path(), valid(t.addr, 2), &head);
    daemon.signal(rustix::process::Signal::HUP);
    reloads("applied", 1).await;
    wait_for_version(&base, 2).await;

    // A bad edit (an unknown field), with the probe on `/fail`: refused, nothing applied.
    write(dir.path(), invalid(t.addr, 1), &head);
    daemon.signal(rustix::process::Signal::HUP);
    reloads("invalid", 1).await;
    assert!(daemon.is_running(), "SIGHUP does not stop the daemon");
    healthy(&base).await;
    wait_for_version(&base, 2).await;
    assert_eq!(t.fail_hits.load(Ordering::SeqCst), 0);
    assert_eq!(t.reboots.load(Ordering::SeqCst), 0);
    let log = std::fs::read_to_string(dir.path().join("astreinte.log")).unwrap();
    let probes_file = dir.path().join("probes.toml").display().to_string();
    assert!(
        log.lines().any(|l| l.contains("invalid configuration")
            && l.contains(&probes_file)
            && l.contains("colour")),
        "{log}"
    );
    daemon.stop(Duration::from_secs(5));
}

/// `/incidents` as JSON.
async fn incidents(base: &str) -> Option<serde_json::Value> {
    serde_json::from_str(&get_text(&format!("{base}/incidents")).await?).ok()
}

/// Three probes (`api-c` failing, on its own target `t-c`) and a dry-run rule per probe.
fn three_probes(addr: std::net::SocketAddr) -> (String, String) {
    let probes = [
        ("api", "t-api", "ok"),
        ("api-b", "t-b", "ok"),
        ("api-c", "t-c", "fail"),
    ]
    .iter()
    .map(|(id, target, path)| probe(id, target, &format!("http://{addr}/{path}"), ""))
    .collect();
    (probes, dry_run_rules(addr, &["api", "api-b", "api-c"]))
}

/// A `dry-run` rule `reboot-<probe>` for each probe (decisions and rehearsed actions counted).
fn dry_run_rules(addr: std::net::SocketAddr, probes: &[&str]) -> String {
    let mut out = "[policy]\nmode = \"dry-run\"\n".to_owned();
    for p in probes {
        out.push_str(&format!(
            "\n[[rule]]\nid = \"reboot-{p}\"\n\
             trigger = {{ probe = \"{p}\", min_level = \"P2\" }}\n\
             action = {{ kind = \"http\", method = \"POST\", url = \"http://{addr}/reboot\" }}\n\
             budget = {{ max = 1, per = \"1h\" }}\n"
        ));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_to_fewer_probes_ends_the_removed_ones_everywhere() {
    astreinte::app::install_crypto();
    let t = target().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = |name: &str| {
        format!(
            "[journal]\npath = \"{}\"\n\n",
            dir.path().join(name).display()
        )
    };
    write(dir.path(), three_probes(t.addr), &journal("journal.json"));
    let port = free_port();
    let mut daemon = start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");
    healthy(&base).await;

    // `api-c` fails: an incident opens on `t-c`, its rule decides (dry run) and rehearses.
    let opened = wait_for("an incident on t-c", Duration::from_secs(20), || async {
        let v = incidents(&base).await?;
        v["open"]
            .as_array()?
            .iter()
            .find(|i| i["key"] == "t-c")
            .cloned()
    })
    .await;
    let id = opened["id"].as_str().unwrap().to_owned();
    let before = wait_for("every series of api-c", Duration::from_secs(20), || async {
        get_text(&format!("{base}/metrics")).await.filter(|m| {
            m.contains("probe_success{probe=\"api-c\"} 0")
                && m.contains("probe_success{probe=\"api-b\"} 1")
                && m.contains("astreinte_http_status_code{probe=\"api-c\"")
                && m.contains("astreinte_target_level{target=\"t-c\"}")
                && m.contains("astreinte_remediation_decisions_total{rule=\"reboot-api-c\"")
                && m.contains("astreinte_remediation_actions_total{rule=\"reboot-api-c\"")
        })
    })
    .await;
    assert!(
        before.contains("astreinte_config_restart_pending 0\n"),
        "{before}"
    );

    // Down to one probe, and the journal moved (a section only a restart applies).
    let one = (
        probe("api", "t-api", &format!("http://{}/ok", t.addr), ""),
        dry_run_rules(t.addr, &["api"]),
    );
    write(dir.path(), one.clone(), &journal("moved.json"));
    daemon.signal(rustix::process::Signal::HUP);
    let gone = [
        "\"api-b\"",
        "\"api-c\"",
        "\"t-b\"",
        "\"t-c\"",
        "reboot-api-b",
        "reboot-api-c",
    ];
    let after = wait_for(
        "no series of api-b, api-c",
        Duration::from_secs(10),
        || async {
            get_text(&format!("{base}/metrics"))
                .await
                .filter(|m| m.contains("astreinte_config_reload_total{result=\"applied\"} 1\n"))
                .filter(|m| !gone.iter().any(|g| m.contains(g)))
        },
    )
    .await;
    // Two probe rounds later, still gone (a late result of a removed probe is dropped).
    let runs = |m: &str| -> u64 {
        let line = "astreinte_probe_runs_total{probe=\"api\",result=\"healthy\"} ";
        m.lines()
            .find_map(|l| l.strip_prefix(line)?.parse().ok())
            .unwrap_or(0)
    };
    let at_reload = runs(&after);
    let later = wait_for("two more rounds", Duration::from_secs(10), || async {
        get_text(&format!("{base}/metrics"))
            .await
            .filter(|m| runs(m) >= at_reload + 2)
    })
    .await;
    for g in gone {
        assert!(!later.contains(g), "{g} is back: {later}");
    }
    for kept in [
        "probe_success{probe=\"api\"} 1",
        "astreinte_remediation_budget_remaining{rule=\"reboot-api\"} 1",
        "astreinte_config_restart_pending 1\n",
        "astreinte_incidents_open{level=\"P2\"} 0",
    ] {
        assert!(
            after.contains(kept) && later.contains(kept),
            "{kept}: {later}"
        );
    }
    assert_eq!(
        status(&base).await.unwrap(),
        [("api".to_owned(), "t-api".to_owned())]
    );
    let decisions = get_text(&format!("{base}/decisions")).await.unwrap();
    assert!(!decisions.contains("reboot-api-c"), "{decisions}");

    // The incident of t-c is resolved, and its timeline says why.
    let v = incidents(&base).await.unwrap();
    assert!(v["open"].as_array().unwrap().is_empty(), "{v}");
    let resolved = v["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap_or_else(|| panic!("{id} not among the resolved: {v}"));
    assert!(resolved["resolved_at"].is_string(), "{resolved}");
    let last = resolved["timeline"].as_array().unwrap().last().unwrap();
    assert_eq!(last["kind"], "resolved", "{resolved}");
    assert!(
        last["text"]
            .as_str()
            .unwrap()
            .ends_with("target removed from configuration"),
        "{resolved}"
    );

    // The journal stays where it runs; the log names the section to restart for.
    assert!(!dir.path().join("moved.json").exists());
    let log = std::fs::read_to_string(dir.path().join("astreinte.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("`[journal].path` changed: restart to apply")),
        "{log}"
    );

    // The journal path back as it runs: nothing pending anymore.
    write(dir.path(), one, &journal("journal.json"));
    daemon.signal(rustix::process::Signal::HUP);
    wait_for("no restart pending", Duration::from_secs(10), || async {
        get_text(&format!("{base}/metrics"))
            .await
            .filter(|m| m.contains("astreinte_config_reload_total{result=\"applied\"} 2\n"))
            .filter(|m| m.contains("astreinte_config_restart_pending 0\n"))
    })
    .await;
    assert_eq!(
        t.reboots.load(Ordering::SeqCst),
        0,
        "dry run: no action ran"
    );
    daemon.stop(Duration::from_secs(5));
}

/// A kubeconfig whose exec credential plugin (as `aws eks get-token` or
/// `gke-gcloud-auth-plugin` are) touches `marker`, takes 3 s and fails.
fn slow_kubeconfig(dir: &Path, marker: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let script = format!("touch '{}'; sleep 3; exit 1", marker.display());
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "c", "cluster": { "server": "https://127.0.0.1:1" } }],
        "users": [{ "name": "u", "user": { "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "/bin/sh",
            "args": ["-c", script],
        } } }],
        "contexts": [{ "name": "c", "context": { "cluster": "c", "user": "u" } }],
        "current-context": "c",
    });
    std::fs::write(&path, kubeconfig.to_string()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_during_a_slow_start_is_served_not_fatal() {
    astreinte::app::install_crypto();
    let t = target().await;
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("plugin-started");
    let head = format!(
        "[journal]\npath = \"{}\"\n\n[kubernetes]\nkubeconfig = \"{}\"\n\n",
        dir.path().join("journal.json").display(),
        slow_kubeconfig(dir.path(), &marker).display()
    );
    write(dir.path(), valid(t.addr, 0), &head);
    let port = free_port();
    let mut daemon = start(dir.path(), port);
    let base = format!("http://127.0.0.1:{port}");

    // The daemon is inside its Kubernetes connection: not listening, not ready.
    wait_for(
        "the exec plugin started",
        Duration::from_secs(10),
        || async { marker.exists().then_some(()) },
    )
    .await;
    assert!(
        get_text(&format!("{base}/readyz")).await.is_none(),
        "ready already: the start was not slow"
    );
    daemon.signal(rustix::process::Signal::HUP);

    healthy(&base).await;
    assert!(daemon.is_running(), "an early SIGHUP killed the daemon");
    wait_for("/readyz", Duration::from_secs(10), || async {
        get_text(&format!("{base}/readyz")).await
    })
    .await;
    // The held SIGHUP was served once the daemon knew where to reload from.
    wait_for(
        "the early SIGHUP served",
        Duration::from_secs(10),
        || async {
            get_text(&format!("{base}/metrics"))
                .await
                .filter(|m| m.contains("astreinte_config_reload_total{result=\"applied\"} 1\n"))
        },
    )
    .await;
    wait_for_version(&base, 0).await;
    let log = std::fs::read_to_string(dir.path().join("astreinte.log")).unwrap();
    assert!(
        log.contains("cannot build the kubernetes client"),
        "the plugin failed as planned: {log}"
    );
    daemon.stop(Duration::from_secs(5));
}
