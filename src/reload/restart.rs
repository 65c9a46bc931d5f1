//! Sections a reload does not apply: `[server]` (the bound listener), `[journal]` (the open
//! store), `[kubernetes]` (client, Lease, watched ConfigMaps) and `[[notify]]` (the notifier's
//! delivery tasks, started with their resolved secrets). A new version that changes one of
//! them still applies its probes and rules, keeps these sections as they run (so `/status` and
//! the engine see what really runs), warns once per changed field ("`[server].listen`
//! changed: restart to apply") and sets `astreinte_config_restart_pending` to 1 until a
//! version agrees with the running one again or the daemon restarts.

use serde::Serialize;

use crate::config::{Config, JournalConfig, KubeSettings, ReceiverConfig, ServerConfig};

/// The restart-only sections of one configuration, copied out of it: a few fields, never the
/// probes or rules (a whole `Config` kept here cost about 4 KiB per probe, twice over, for
/// the daemon's life: docs/BENCHMARKS.md, run C).
#[derive(Debug, Clone, PartialEq)]
pub struct Sections {
    server: ServerConfig,
    journal: JournalConfig,
    kubernetes: KubeSettings,
    notify: Vec<ReceiverConfig>,
}

impl Sections {
    pub fn of(config: &Config) -> Self {
        Sections {
            server: config.server.clone(),
            journal: config.journal.clone(),
            kubernetes: config.kubernetes.clone(),
            notify: config.notify.clone(),
        }
    }
}

/// What a reload compares to: these sections as read at start-up (before `--listen`), and as
/// they run.
#[derive(Debug, Clone)]
pub struct RestartOnly {
    read: Sections,
    running: Sections,
}

impl RestartOnly {
    /// `read`: the sections as loaded; `running`: the configuration after command-line
    /// overrides.
    pub fn new(read: Sections, running: &Config) -> Self {
        RestartOnly {
            read,
            running: Sections::of(running),
        }
    }

    /// The fields of restart-only sections that `new` changes, named as an operator writes
    /// them (`[server].listen`, `[[notify]] "pager"`), and `new` with those sections put back
    /// as they run.
    pub fn split(&self, mut new: Config) -> (Vec<String>, Config) {
        let changed = changes(&self.read, &Sections::of(&new));
        new.server = self.running.server.clone();
        new.journal = self.running.journal.clone();
        new.kubernetes = self.running.kubernetes.clone();
        new.notify = self.running.notify.clone();
        (changed, new)
    }
}

/// The restart-only fields that differ between `old` and `new`.
pub fn changes(old: &Sections, new: &Sections) -> Vec<String> {
    let mut out = fields("server", &old.server, &new.server);
    out.extend(fields("journal", &old.journal, &new.journal));
    out.extend(fields("kubernetes", &old.kubernetes, &new.kubernetes));
    // A receiver by its name, whether added, removed or changed.
    let names = old
        .notify
        .iter()
        .chain(&new.notify)
        .map(|r| r.name.as_str());
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        let of = |s: &Sections| s.notify.iter().find(|r| r.name == name).cloned();
        if seen.insert(name) && of(old) != of(new) {
            out.push(format!("[[notify]] \"{name}\""));
        }
    }
    out
}

/// `[section].field` for each top-level field that differs (values are never named: a
/// kubeconfig path or a receiver is no secret, but a log line needs no values).
fn fields<T: Serialize>(section: &str, old: &T, new: &T) -> Vec<String> {
    let as_map = |v: &T| match serde_json::to_value(v) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let mut keys: Vec<&String> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| format!("[{section}].{k}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, ReceiverConfig};

    fn base() -> Config {
        config::load_embedded().unwrap()
    }

    fn receiver(name: &str, url: &str) -> ReceiverConfig {
        let toml = format!("name = \"{name}\"\nkind = \"webhook\"\nurl = \"{url}\"\n");
        toml::from_str(&toml).unwrap()
    }

    #[test]
    fn each_changed_field_of_a_restart_only_section_is_named() {
        let old = base();
        let mut new = old.clone();
        assert!(changes(&Sections::of(&old), &Sections::of(&new)).is_empty());
        new.server.listen = "127.0.0.1:1".parse().unwrap();
        new.journal.path = "/elsewhere.json".into();
        new.kubernetes.policy_configmap = Some("policy".into());
        new.kubernetes.lease.duration = std::time::Duration::from_secs(99);
        assert_eq!(
            changes(&Sections::of(&old), &Sections::of(&new)),
            [
                "[server].listen",
                "[journal].path",
                "[kubernetes].lease",
                "[kubernetes].policy_configmap"
            ]
        );
    }

    #[test]
    fn receivers_are_named_by_name_when_added_removed_or_changed() {
        let mut old = base();
        old.notify = vec![receiver("a", "http://a"), receiver("b", "http://b")];
        let mut new = old.clone();
        new.notify = vec![receiver("b", "http://b2"), receiver("c", "http://c")];
        assert_eq!(
            changes(&Sections::of(&old), &Sections::of(&new)),
            ["[[notify]] \"a\"", "[[notify]] \"b\"", "[[notify]] \"c\""]
        );
    }

    #[test]
    fn a_split_keeps_the_running_sections_and_the_new_probes() {
        let read = base();
        let mut running = read.clone();
        running.server.listen = "127.0.0.1:7".parse().unwrap(); // `--listen`
        let restart = RestartOnly::new(Sections::of(&read), &running);
        // Same file again: `--listen` is no pending change.
        let (changed, applied) = restart.split(read.clone());
        assert!(changed.is_empty(), "{changed:?}");
        assert_eq!(applied.server, running.server);
        let mut new = read.clone();
        new.journal.path = "/elsewhere.json".into();
        new.probes.truncate(1);
        let (changed, applied) = restart.split(new);
        assert_eq!(changed, ["[journal].path"]);
        assert_eq!(applied.journal, running.journal);
        assert_eq!(applied.probes.len(), 1);
    }
}
