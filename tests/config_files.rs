//! The configuration files: the shipped ones validate, mistakes are all reported at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use astreinte::config::load_dir;

fn write(dir: &Path, probes: &str, remediations: &str) {
    std::fs::write(dir.join("probes.toml"), probes).unwrap();
    std::fs::write(dir.join("remediations.toml"), remediations).unwrap();
}

#[test]
fn shipped_and_example_configs_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in [root.to_path_buf(), root.join("examples/local")] {
        let c = load_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        assert!(!c.probes.is_empty(), "{}", dir.display());
    }
}

#[test]
fn several_mistakes_are_reported_in_one_run() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        r#"
[[probe]]
id = "api"
kind = "http"
url = "not a url"
interval = "5s"
timeout = "5s"
body_regex = "("

[[probe]]
id = "api"
kind = "tcp"
address = "no-port"

[[probe]]
id = "disk"
kind = "disk"
path = "relative/path"
degraded_ratio = 0.9
failed_ratio = 0.8
"#,
        r#"
[[rule]]
id = "restart"
trigger = { probe = "ghost", min_level = "P2" }
action = { kind = "scale", namespace = "ns", deployment = "d", replicas = 9, max_replicas = 6 }
escalate = "restart"
"#,
    );
    let err = load_dir(dir.path()).unwrap_err();
    let text = err.to_string();
    let expected = [
        ("probe \"api\"", "url"),
        ("probe \"api\"", "timeout"),
        ("probe \"api\"", "body_regex"),
        ("probe \"api\"", "id"),
        ("probe \"api\"", "address"),
        ("probe \"disk\"", "path"),
        ("probe \"disk\"", "degraded_ratio"),
        ("rule \"restart\"", "trigger.probe"),
        ("rule \"restart\"", "action.replicas"),
        ("rule \"restart\"", "escalate"),
    ];
    for (item, field) in expected {
        assert!(
            err.0.iter().any(|p| p.item == item && p.field == field),
            "missing {item} {field} in:\n{text}"
        );
    }
    // Every line names its file.
    for p in &err.0 {
        assert!(
            p.file.ends_with("probes.toml") || p.file.ends_with("remediations.toml"),
            "{p}"
        );
    }
}

#[test]
fn env_overrides_apply_to_known_sections_only() {
    // Run in a child process so the environment of other tests is untouched.
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "[[probe]]\nid = \"d\"\nkind = \"disk\"\npath = \"/\"\n",
        "",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_astreinte"))
        .args(["--config", dir.path().to_str().unwrap(), "validate"])
        .env("ASTREINTE_POLICY__MODE", "enforce")
        .env("ASTREINTE_SOMETHING_ELSE", "ignored")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("mode enforce"), "{stdout}");
}

#[test]
fn notify_receivers_load_and_their_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let probes = "[[probe]]\nid = \"d\"\nkind = \"disk\"\npath = \"/\"\n";
    write(
        dir.path(),
        probes,
        r#"
[[notify]]
name = "alertmanager"
kind = "alertmanager"
url = "http://alertmanager.monitoring:9093"
min_level = "P2"

[[notify]]
name = "oncall-slack"
kind = "slack"
url_from = { env = "SLACK_WEBHOOK_URL" }
blocks = true
timeout = "5s"
retries = 5
"#,
    );
    let c = load_dir(dir.path()).unwrap();
    assert_eq!(c.notify.len(), 2);
    assert_eq!(c.notify[0].min_level, astreinte::level::Level::P2);
    assert_eq!(c.notify[1].retries, 5);

    write(
        dir.path(),
        probes,
        r#"
[[notify]]
name = "hook"
kind = "webhook"
url = "ftp://example.com"
min_level = "ok"
timeout = "30s"
deadline = "10s"
blocks = true
token = { env = "A", file = "/b" }

[[notify]]
name = "hook"
kind = "slack"
url = "https://hooks.example.com/x"
url_from = { env = "X" }
queue_size = 0

[[notify]]
name = "bad name!"
kind = "webhook"
url = "http://x"
"#,
    );
    let err = load_dir(dir.path()).unwrap_err();
    let text = err.to_string();
    let expected = [
        ("notify \"hook\"", "url"),
        ("notify \"hook\"", "min_level"),
        ("notify \"hook\"", "deadline"),
        ("notify \"hook\"", "blocks"),
        ("notify \"hook\"", "token"),
        ("notify \"hook\"", "name"),
        ("notify \"hook\"", "queue_size"),
        ("notify \"bad name!\"", "name"),
    ];
    for (item, field) in expected {
        assert!(
            err.0.iter().any(|p| p.item == item
                && p.field == field
                && p.file.ends_with("remediations.toml")),
            "missing {item} {field} in:\n{text}"
        );
    }

    // Unknown fields and kinds are named too, under the receiver's name.
    for (line, field) in [
        ("kind = \"pager\"", "kind"),
        ("kind = \"webhook\"\nretires = 3", "retires"),
    ] {
        let rem = format!("[[notify]]\nname = \"x\"\nurl = \"http://x\"\n{line}\n");
        write(dir.path(), probes, &rem);
        let err = load_dir(dir.path()).unwrap_err();
        assert!(
            err.0
                .iter()
                .any(|p| p.item == "notify \"x\"" && p.field == field),
            "{err}"
        );
    }
}

#[test]
fn patroni_actions_name_a_patroni_probe_and_its_auth_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        r#"
[[probe]]
id = "web"
kind = "http"
url = "http://127.0.0.1:1/"

[[probe]]
id = "pg"
kind = "patroni"
members = ["http://127.0.0.1:8008"]
ttl = "0s"
auth = { username = "patroni", password = { env = "A", file = "/b" } }
"#,
        r#"
[[rule]]
id = "failover"
trigger = { probe = "web", min_level = "P2" }
action = { kind = "patroni_failover", probe = "web" }
"#,
    );
    let err = load_dir(dir.path()).unwrap_err();
    for (item, field, words) in [
        ("rule \"failover\"", "action.probe", "not a `patroni` probe"),
        ("probe \"pg\"", "ttl", "greater than zero"),
        ("probe \"pg\"", "auth.password", "exactly one"),
    ] {
        assert!(
            err.0
                .iter()
                .any(|p| p.item == item && p.field == field && p.message.contains(words)),
            "missing {item} {field} in:\n{err}"
        );
    }
}
