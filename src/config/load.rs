//! Reading the two files (or the embedded example) through figment, with `ASTREINTE_*`
//! environment overrides, and turning every mistake into a message that names the file.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::Serialize;

use super::validate::{Problem, validate};
use super::{Config, PROBES_FILE, ProbesFile, REMEDIATIONS_FILE, RemediationsFile};

/// The embedded local example (`examples/local/`), used when no `--config` is given.
pub const EMBEDDED_DIR: &str = "examples/local";
const EMBEDDED_PROBES: &str = include_str!("../../examples/local/probes.toml");
const EMBEDDED_REMEDIATIONS: &str = include_str!("../../examples/local/remediations.toml");

/// Where the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Dir(PathBuf),
    Embedded,
    /// A watched ConfigMap, as `namespace/name`.
    ConfigMap(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Dir(d) => write!(f, "{}", d.display()),
            Source::Embedded => write!(f, "embedded {EMBEDDED_DIR}"),
            Source::ConfigMap(name) => write!(f, "configmap {name}"),
        }
    }
}

/// Every problem found while loading, each naming its file (and probe or rule, and field).
#[derive(Debug, thiserror::Error)]
#[error("{} problem(s) in the configuration:\n{}", .0.len(), render(.0))]
pub struct ConfigError(pub Vec<Problem>);

fn render(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Loads `probes.toml` and `remediations.toml` from `dir`.
pub fn load_dir(dir: &Path) -> Result<Config, ConfigError> {
    let probes = dir.join(PROBES_FILE);
    let remediations = dir.join(REMEDIATIONS_FILE);
    let mut problems = Vec::new();
    for path in [&probes, &remediations] {
        if !path.is_file() {
            problems.push(Problem::file(path, "file not found"));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError(problems));
    }
    assemble(
        Source::Dir(dir.to_path_buf()),
        (probes.display().to_string(), Toml::file_exact(&probes)),
        (
            remediations.display().to_string(),
            Toml::file_exact(&remediations),
        ),
    )
}

/// Loads the embedded local example.
pub fn load_embedded() -> Result<Config, ConfigError> {
    assemble(
        Source::Embedded,
        (
            format!("{EMBEDDED_DIR}/{PROBES_FILE}"),
            Toml::string(EMBEDDED_PROBES),
        ),
        (
            format!("{EMBEDDED_DIR}/{REMEDIATIONS_FILE}"),
            Toml::string(EMBEDDED_REMEDIATIONS),
        ),
    )
}

/// Loads the two files from strings: the `probes.toml` and `remediations.toml` keys of the
/// policy ConfigMap `origin` (`namespace/name`), which names them in every problem.
pub fn load_from_strings(
    origin: &str,
    probes: &str,
    remediations: &str,
) -> Result<Config, ConfigError> {
    assemble(
        Source::ConfigMap(origin.to_owned()),
        (
            format!("configmap {origin} key {PROBES_FILE}"),
            Toml::string(probes),
        ),
        (
            format!("configmap {origin} key {REMEDIATIONS_FILE}"),
            Toml::string(remediations),
        ),
    )
}

fn assemble<P: figment::Provider>(
    source: Source,
    (probes_name, probes): (String, P),
    (rem_name, remediations): (String, P),
) -> Result<Config, ConfigError> {
    let mut problems = Vec::new();
    let probes_file: Option<ProbesFile> = extract(
        &probes_name,
        probes,
        &["server", "defaults", "incidents", "journal", "kubernetes"],
        &mut problems,
    );
    let rem_file: Option<RemediationsFile> =
        extract(&rem_name, remediations, &["policy"], &mut problems);
    let (Some(p), Some(r)) = (probes_file, rem_file) else {
        return Err(ConfigError(problems));
    };
    let config = Config {
        probe_index: super::ProbeIndex::of(&p.probes),
        source,
        server: p.server,
        defaults: p.defaults,
        incidents: p.incidents,
        journal: p.journal,
        probes: p.probes,
        policy: r.policy,
        rules: r.rules,
        notify: r.notify,
        kubernetes: p.kubernetes,
    };
    problems.extend(validate(&config, &probes_name, &rem_name));
    if problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError(problems))
    }
}

/// Extracts one file, with `ASTREINTE_<SECTION>__<KEY>` overrides limited to `sections`
/// (so unrelated `ASTREINTE_*` variables such as `ASTREINTE_CONFIG` are not fields).
fn extract<T: serde::de::DeserializeOwned, P: figment::Provider>(
    name: &str,
    provider: P,
    sections: &'static [&'static str],
    problems: &mut Vec<Problem>,
) -> Option<T> {
    // The filter sees the key before it is split: `policy__mode`.
    let env = Env::prefixed("ASTREINTE_")
        .filter(move |key| {
            let key = key.as_str().to_ascii_lowercase();
            sections.iter().any(|s| {
                key.strip_prefix(s)
                    .is_some_and(|rest| rest.starts_with("__"))
            })
        })
        .split("__");
    let figment = Figment::from(provider).merge(env);
    match figment.extract::<T>() {
        Ok(v) => Some(v),
        Err(errors) => {
            for e in errors {
                let (item, field) = locate(&figment, &e.path);
                problems.push(Problem {
                    file: name.to_owned(),
                    item,
                    field,
                    message: e.kind.to_string(),
                });
            }
            None
        }
    }
}

/// The item and field of a deserialization error at `path`: `probe.2.timeout` is field
/// `timeout` of `probe "api"` (its id read from the document, else `probe #3`), as
/// `validate()` names them; any other path is a field of the file.
fn locate(figment: &Figment, path: &[String]) -> (String, String) {
    let listed = match path {
        [section, index, rest @ ..] => ["probe", "rule", "notify"]
            .contains(&section.as_str())
            .then(|| index.parse::<usize>().ok())
            .flatten()
            .map(|i| (section, i, rest)),
        _ => None,
    };
    let Some((section, i, rest)) = listed else {
        return (String::new(), path.join("."));
    };
    let key = if section == "notify" { "name" } else { "id" };
    let id = figment
        .find_value(section)
        .ok()
        .and_then(|v| v.into_array())
        .and_then(|items| items.into_iter().nth(i))
        .and_then(|item| item.find(key))
        .and_then(|id| id.into_string());
    let item = match id {
        Some(id) => format!("{section} \"{id}\""),
        None => format!("{section} #{}", i + 1),
    };
    let field = match (section.as_str(), rest) {
        ("probe", []) => spec_field(figment, i).unwrap_or_default(),
        _ => rest.join("."),
    };
    (item, field)
}

/// The field of probe `i`'s spec that fails to deserialize (serde loses it in the flattened
/// spec): its keys but the common ones, deserialized again as its kind's spec.
fn spec_field(figment: &Figment, i: usize) -> Option<String> {
    let probe = figment
        .find_value("probe")
        .ok()?
        .into_array()?
        .into_iter()
        .nth(i)?;
    let dict = probe.into_dict()?;
    let kind = dict.get("kind")?.as_str()?.to_owned();
    let spec: figment::value::Dict = dict
        .into_iter()
        .filter(|(k, _)| k != "kind" && !super::probe::COMMON_FIELDS.contains(&k.as_str()))
        .collect();
    let spec = figment::value::Value::from(spec);
    super::probe::spec_error_path(&kind, &spec).filter(|p| p != ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_example_loads() {
        let c = load_embedded().unwrap();
        assert!(!c.probes.is_empty());
        assert_eq!(c.source, Source::Embedded);
    }

    #[test]
    fn unknown_field_names_the_file_and_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(PROBES_FILE),
            "[[probe]]\nid = \"a\"\nkind = \"tcp\"\naddress = \"127.0.0.1:1\"\ntimeuot = \"1s\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(REMEDIATIONS_FILE),
            "[policy]\nmood = \"off\"\n",
        )
        .unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("timeuot"), "{err}");
        assert!(err.contains("probes.toml"), "{err}");
        assert!(err.contains("mood"), "{err}");
        assert!(err.contains("remediations.toml"), "{err}");
    }

    #[test]
    fn kubernetes_section_is_validated_and_strings_load() {
        let probes = "[kubernetes]\nnamespace = \"Bad_NS\"\n[kubernetes.lease]\nduration = \"10s\"\nrenew = \"10s\"\n";
        let err = load_from_strings("ns/policy", probes, "")
            .unwrap_err()
            .to_string();
        assert!(err.contains("configmap ns/policy key probes.toml"), "{err}");
        assert!(err.contains("field `namespace`"), "{err}");
        assert!(err.contains("field `lease.renew`"), "{err}");
        let ok =
            load_from_strings("ns/policy", "[kubernetes]\npolicy_configmap = \"p\"\n", "").unwrap();
        assert_eq!(ok.source, Source::ConfigMap("ns/policy".into()));
        assert_eq!(ok.kubernetes.policy_configmap.as_deref(), Some("p"));
        assert_eq!(ok.kubernetes.lease.renew, std::time::Duration::from_secs(5));
    }

    #[test]
    fn probes_are_found_by_id_even_after_the_list_changed() {
        let mut c = load_embedded().unwrap();
        for p in c.probes.clone() {
            assert_eq!(c.probe(&p.id).map(|f| &f.id), Some(&p.id));
        }
        assert!(c.probe("no-such-probe").is_none());
        // Edited after load: the stale index must not return the wrong probe.
        let last = c.probes.last().unwrap().id.clone();
        c.probes.swap(0, 1);
        let moved = c.probes[0].id.clone();
        assert_eq!(c.probe(&moved).map(|p| p.id.as_str()), Some(moved.as_str()));
        assert_eq!(c.probe(&last).map(|p| p.id.as_str()), Some(last.as_str()));
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("probes.toml") && err.contains("remediations.toml"),
            "{err}"
        );
    }
}
