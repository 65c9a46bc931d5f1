//! The monitoring in deploy/, checked with the real tools: the PrometheusRule passes
//! `promtool check rules` and `promtool test rules` (deploy/tests/prometheusrule.test.yaml
//! fires every alert), and every metric the dashboard and the alerts read is exported by the
//! real binary (scraped live) or, for families this run does not drive, registered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::deploy::{exprs, repo, run_ok, yaml};
use support::exposition::{populated, promql_metric_names, sample_names};

#[test]
fn alert_rules_pass_promtool_and_each_alert_fires_in_its_unit_test() {
    support::require("/usr/bin/promtool", "prometheus");
    let rule = yaml("deploy/base/prometheusrule.yaml");
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.json");
    std::fs::write(&full, rule["spec"].to_string()).unwrap();
    let mut cmd = Command::new("/usr/bin/promtool");
    cmd.args(["check", "rules"]).arg(&full);
    run_ok(cmd, "promtool check rules");

    // promtool compares annotations verbatim; the unit tests are about when alerts fire.
    let mut bare = rule["spec"].clone();
    for group in bare["groups"].as_array_mut().unwrap() {
        for r in group["rules"].as_array_mut().unwrap() {
            r.as_object_mut().unwrap().remove("annotations");
        }
    }
    std::fs::write(dir.path().join("rules.json"), bare.to_string()).unwrap();
    let test_file = dir.path().join("prometheusrule.test.yaml");
    std::fs::copy(
        repo().join("deploy/tests/prometheusrule.test.yaml"),
        &test_file,
    )
    .unwrap();
    let mut cmd = Command::new("/usr/bin/promtool");
    cmd.args(["test", "rules"]).arg(&test_file);
    run_ok(cmd, "promtool test rules");

    let alerts: BTreeSet<String> = rule["spec"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap().iter())
        .map(|r| r["alert"].as_str().unwrap().to_owned())
        .collect();
    let tests = yaml("deploy/tests/prometheusrule.test.yaml");
    let fired: BTreeSet<String> = tests["tests"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["alert_rule_test"].as_array().unwrap().iter())
        .filter(|case| case["exp_alerts"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|case| case["alertname"].as_str().unwrap().to_owned())
        .collect();
    let never: Vec<_> = alerts.difference(&fired).collect();
    assert!(never.is_empty(), "alerts no unit test fires: {never:?}");
    for required in [
        "AstreinteNoLeader",
        "AstreinteProbesNotRunning",
        "AstreinteConfigReloadFailing",
        "AstreinteBudgetExhausted",
        "AstreinteP1IncidentOpen",
        "AstreinteJournalWriteErrors",
        "AstreinteClockSkew",
        "AstreinteConfigRestartPending",
    ] {
        assert!(alerts.contains(required), "missing alert {required}");
    }
}

#[test]
fn promql_metric_names_are_found() {
    let names = |e: &str| promql_metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_bucket{job=~"$job", x="y{z}"}[$__rate_interval])))"#
        ),
        ["a_bucket"]
    );
    assert_eq!(
        names(
            "sum without (result) (rate(b_total[5m])) == 0 or absent(c) unless on (i) d offset 5m"
        ),
        ["b_total", "c", "d"]
    );
    assert_eq!(names("max(x) > 1e3 and bool 2"), ["x"]);
}

/// The dashboard's queries (and its `label_values` variables) and the alert expressions.
fn queried_metric_names() -> BTreeSet<String> {
    let mut queries = Vec::new();
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/dashboards/astreinte.json")).unwrap(),
    )
    .unwrap();
    let mut ids = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        assert!(
            ids.insert(panel["id"].as_u64().unwrap()),
            "duplicate panel id"
        );
        if panel["type"] != "row" {
            assert_eq!(
                panel["datasource"]["uid"], "${DS_PROMETHEUS}",
                "{}: the datasource is the DS_PROMETHEUS variable",
                panel["title"]
            );
            assert!(!panel["targets"].as_array().unwrap().is_empty());
        }
    }
    exprs(&dashboard, &mut queries);
    exprs(&yaml("deploy/base/prometheusrule.yaml"), &mut queries);
    let mut names: BTreeSet<String> = queries
        .iter()
        .flat_map(|q| promql_metric_names(q))
        .collect();
    let label_values = regex::Regex::new(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)").unwrap();
    for v in dashboard["templating"]["list"].as_array().unwrap() {
        if let Some(q) = v["query"]["query"].as_str() {
            names.extend(label_values.captures_iter(q).map(|c| c[1].to_owned()));
        }
    }
    names
}

#[tokio::test]
async fn dashboard_and_alerts_read_only_exported_metrics() {
    let queried = queried_metric_names();
    assert!(
        queried.len() >= 15,
        "too few metric names found: {queried:?}"
    );

    // The real daemon, driven so that most families get a sample: a failing TCP probe (an
    // incident, a dry-run decision, a budget), an HTTP probe of its own /healthz, a disk probe, a Redis probe of a closed port.
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
             [[probe]]\nid = \"closed\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n\
             damping = {{ enter_after = 1 }}\n\n\
             [[probe]]\nid = \"self\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/healthz\"\n\n\
             [[probe]]\nid = \"disk\"\nkind = \"disk\"\npath = \"{}\"\n\n\
             [[probe]]\nid = \"cache\"\nkind = \"redis\"\ninstances = [\"127.0.0.1:1\"]\n",
            dir.path().display()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("remediations.toml"),
        "[policy]\nmode = \"dry-run\"\n\n[[rule]]\nid = \"r\"\n\
         trigger = { probe = \"closed\", min_level = \"P4\" }\n\
         action = { kind = \"http\", method = \"POST\", url = \"http://127.0.0.1:1/x\" }\n\
         budget = { max = 2, per = \"1h\" }\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
    cmd.args(["run", "--config"])
        .arg(dir.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("ASTREINTE_JOURNAL__PATH", dir.path().join("journal.json"));
    let mut daemon =
        astreinte::testbed::Proc::spawn("astreinte", cmd, &dir.path().join("astreinte.log"))
            .unwrap();
    astreinte::app::install_crypto();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let live = support::wait_for(
        "a rehearsed action and the per-kind gauges on /metrics",
        Duration::from_secs(20),
        || async {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            let ready = [
                "astreinte_remediation_budget_remaining",
                "astreinte_remediation_actions",
                "astreinte_http_status_code",
                "astreinte_redis_up",
            ]
            .iter()
            .all(|m| text.contains(&format!("# TYPE {m} ")));
            ready.then_some(text)
        },
    )
    .await;
    daemon.stop(Duration::from_secs(5));

    let live_names = sample_names(&live);
    let registered = sample_names(&populated().encode());
    let mut missing = Vec::new();
    let mut registered_only = Vec::new();
    for name in &queried {
        if live_names.contains(name) {
            continue;
        }
        if registered.contains(name) {
            registered_only.push(name.clone());
        } else {
            missing.push(name.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "queried but never exported: {missing:?}"
    );
    // Families this run did not drive (config reloads, notices, Redis, PromQL) are checked
    // against the registry; the rest came from the live daemon.
    eprintln!("checked against the registry only (no sample in this run): {registered_only:?}");
    assert!(
        registered_only.len() * 2 < queried.len(),
        "most queried names must be seen live: {registered_only:?}"
    );
}
