//! The configuration the demo writes for the stack it started: `probes.toml` (the service's
//! `/health` with a latency objective, Patroni with its 3 members, PostgreSQL on the first
//! leader, Redis master and replica, the root disk, a TCP port) and `remediations.toml` (rules
//! in dry-run, and one enforced rule that restarts the demo service through its admin
//! endpoint). Passwords and the admin token go to files under `secrets/`, named by `{ file }`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::{Error, Result};

/// The green period of the demo (the runbook says 15 minutes; a demo cannot wait that long).
pub const GREEN_PERIOD: &str = "30s";

/// Where the probes look, and the secrets they need.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The daemon's listen address.
    pub listen: SocketAddr,
    /// `http://127.0.0.1:PORT` of the demo service.
    pub service: String,
    /// Patroni members: (name, REST URL, postgres port).
    pub members: Vec<(String, String, u16)>,
    /// The postgres port of the member that leads at start.
    pub leader_pg_port: u16,
    pub redis_master: String,
    pub redis_replica: String,
    pub pg_password: String,
    pub admin_token: String,
}

/// Writes `probes.toml`, `remediations.toml` and `secrets/` into `dir`; returns `dir`.
pub fn write(dir: &Path, e: &Endpoints) -> Result<PathBuf> {
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets)
        .map_err(|err| Error::Io(format!("create {}", secrets.display()), err))?;
    let pg_password = secrets.join("pg-password");
    let admin_token = secrets.join("admin-token");
    write_file(&pg_password, &e.pg_password, 0o600)?;
    write_file(&admin_token, &e.admin_token, 0o600)?;
    write_file(
        &dir.join(crate::config::PROBES_FILE),
        &probes(dir, e, &pg_password),
        0o644,
    )?;
    write_file(
        &dir.join(crate::config::REMEDIATIONS_FILE),
        &remediations(e, &admin_token),
        0o644,
    )?;
    Ok(dir.to_path_buf())
}

fn write_file(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::Io(format!("write {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::Io(format!("chmod {}", path.display()), e))
}

fn probes(dir: &Path, e: &Endpoints, pg_password: &Path) -> String {
    let members: Vec<String> = e
        .members
        .iter()
        .map(|(name, url, pg)| {
            format!("  {{ url = \"{url}\", name = \"{name}\", postgres = \"127.0.0.1:{pg}\" }},")
        })
        .collect();
    format!(
        r#"# Written by `astreinte demo` for the local stack it started (everything on 127.0.0.1).
# `astreinte check --config {dir}` runs every probe once.

[server]
listen = "{listen}"

[defaults]
interval = "5s"
timeout = "1500ms"
# Probe faster while something is wrong, so recovery is seen sooner.
unhealthy_interval = "2s"

[incidents]
# The runbook says "monitoring green for 15 minutes"; the demo waits {green}.
green_period = "{green}"

[journal]
path = "{dir}/journal.json"

# Seed 000, "Détection": curl -f …/health. Slower than the objective is "Degraded by N %".
[[probe]]
id = "rag-api-health"
kind = "http"
target = "rag-api"
url = "{service}/health"
expect_status = [200]
interval = "3s"
slo_latency = "300ms"

# The Patroni cluster through every member's REST API (no leader, split brain, lag…).
[[probe]]
id = "pg-cluster"
kind = "patroni"
target = "pg-cluster"
group = "postgres"
members = [
{members}
]
sql = {{ user = "postgres", password = {{ file = "{pg_password}" }} }}

# PostgreSQL on the member that led when the demo started: long queries (the runbook says
# 5 minutes; 30 s here), connections, replication lag.
[[probe]]
id = "pg-first-leader"
kind = "postgres"
target = "pg-first-leader"
group = "postgres"
host = "127.0.0.1"
port = {leader_pg}
user = "postgres"
password = {{ file = "{pg_password}" }}
long_query_threshold = "30s"

# Redis master and replica: roles, master link, replication lag.
[[probe]]
id = "redis"
kind = "redis"
target = "redis"
instances = ["{redis_master}", "{redis_replica}"]

[[probe]]
id = "redis-master-port"
kind = "tcp"
target = "redis"
address = "{redis_master}"

# Seed 004, P4: "disk 70%".
[[probe]]
id = "root-disk"
kind = "disk"
path = "/"
interval = "30s"
degraded_ratio = 0.70
failed_ratio = 0.95
"#,
        dir = dir.display(),
        listen = e.listen,
        green = GREEN_PERIOD,
        service = e.service,
        members = members.join("\n"),
        pg_password = pg_password.display(),
        leader_pg = e.leader_pg_port,
        redis_master = e.redis_master,
        redis_replica = e.redis_replica,
    )
}

fn remediations(e: &Endpoints, admin_token: &Path) -> String {
    format!(
        r#"# Written by `astreinte demo`. The global mode allows acting; every rule but one says
# `mode = "dry-run"` itself (the stricter mode applies), so they only tell what they would do.

[policy]
mode = "enforce"
timezone = "UTC"
global_budget = {{ max = 10, per = "1h" }}
allow = ["demo/*/*"]

# The one enforced rule, harmless: the demo service answers 500 → restart it through its
# admin endpoint, then verify that /health is green again.
[[rule]]
id = "api-restart"
mode = "enforce"
trigger = {{ probe = "rag-api-health", min_level = "P1", reasons = ["bad_status"] }}
action = {{ kind = "http", method = "POST", url = "{service}/admin/restart", token = {{ file = "{admin_token}" }} }}
budget = {{ max = 3, per = "1h" }}
cooldown = "1m"
deadline = "10s"
verify = {{ probe = "rag-api-health", within = "20s" }}
escalate = "page"

# Seed 000: emergency scale-up when the API stays slow (there is no cluster here: dry-run).
[[rule]]
id = "api-scale-up"
mode = "dry-run"
trigger = {{ probe = "rag-api-health", min_level = "P2", for = "15s" }}
action = {{ kind = "scale", namespace = "demo", deployment = "rag-api", replicas = 4, max_replicas = 4 }}
budget = {{ max = 1, per = "1h" }}
deadline = "10s"

# Seed 004: PostgreSQL primary down → failover. Patroni elects a new leader by itself within
# its ttl (10 s here), so this rule only triggers when no leader is back after 20 s.
[[rule]]
id = "pg-failover"
mode = "dry-run"
trigger = {{ probe = "pg-cluster", min_level = "P2", for = "20s", reasons = ["no_leader"] }}
action = {{ kind = "patroni_failover", probe = "pg-cluster" }}
budget = {{ max = 1, per = "1h" }}
deadline = "30s"

# A Redis replica that lost its master: page someone (dry-run: only said).
[[rule]]
id = "redis-page"
mode = "dry-run"
trigger = {{ probe = "redis", min_level = "P3", for = "10s" }}
action = {{ kind = "page", message = "a Redis replica lost its master" }}
budget = {{ max = 1, per = "1h" }}
deadline = "5s"
"#,
        service = e.service,
        admin_token = admin_token.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Mode, ProbeSpec, load_dir};
    use crate::policy::effective_mode;

    fn endpoints() -> Endpoints {
        Endpoints {
            listen: SocketAddr::from(([127, 0, 0, 1], 19464)),
            service: "http://127.0.0.1:20001".into(),
            members: (1..=3)
                .map(|i| {
                    (
                        format!("pg{i}"),
                        format!("http://127.0.0.1:2100{i}"),
                        22000 + i,
                    )
                })
                .collect(),
            leader_pg_port: 22001,
            redis_master: "127.0.0.1:23001".into(),
            redis_replica: "127.0.0.1:23002".into(),
            pg_password: "pg-secret-value".into(),
            admin_token: "admin-secret-value".into(),
        }
    }

    #[test]
    fn the_written_configuration_loads_with_one_enforced_rule() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &endpoints()).unwrap();
        let config = load_dir(dir.path()).unwrap();
        let ids: Vec<&str> = config.probes.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "rag-api-health",
                "pg-cluster",
                "pg-first-leader",
                "redis",
                "redis-master-port",
                "root-disk"
            ]
        );
        let Some(ProbeSpec::Patroni(patroni)) = config.probe("pg-cluster").map(|p| &p.spec) else {
            panic!("no patroni probe")
        };
        assert_eq!(patroni.members.len(), 3);
        assert_eq!(config.incidents.green_period.as_secs(), 30);
        assert_eq!(config.server.listen.port(), 19464);
        assert!(config.journal.path.starts_with(dir.path()));
        let modes: Vec<(&str, Mode)> = config
            .rules
            .iter()
            .map(|r| (r.id.as_str(), effective_mode(&config, r)))
            .collect();
        assert_eq!(
            modes,
            [
                ("api-restart", Mode::Enforce),
                ("api-scale-up", Mode::DryRun),
                ("pg-failover", Mode::DryRun),
                ("redis-page", Mode::DryRun),
            ]
        );
    }

    #[test]
    fn secrets_stay_out_of_the_config_files() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &endpoints()).unwrap();
        for file in [crate::config::PROBES_FILE, crate::config::REMEDIATIONS_FILE] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert!(!text.contains("secret-value"), "{file}");
        }
        let secret = dir.path().join("secrets/pg-password");
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(secret).unwrap(), "pg-secret-value");
    }
}
