//! Property tests of the configuration loader, through the entry point `astreinte validate`
//! uses (`app::load_config` on a directory): random valid `probes.toml`/`remediations.toml`
//! load; the same documents with one mistake (an unknown key, a wrong type, a bad duration, a
//! duplicate id, a missing required field, a bad secret reference, a rule naming an unknown
//! probe) fail with a message naming the file, the probe or rule, and the field; nothing
//! panics; probes written back out load to the same values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use astreinte::app::load_config;
use astreinte::config::{Config, ConfigError, ProbeConfig};
use proptest::prelude::*;

#[path = "config_props/docs.rs"]
mod docs;
#[path = "config_props/mistakes.rs"]
mod mistakes;

use docs::{docs, item};
use mistakes::{apply, mistake};

fn write(dir: &Path, probes: &str, remediations: &str) {
    std::fs::write(dir.join("probes.toml"), probes).unwrap();
    std::fs::write(dir.join("remediations.toml"), remediations).unwrap();
}

fn load(probes: &str, remediations: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), probes, remediations);
    load_config(Some(&dir.path().to_path_buf()))
}

/// The settings of these tests: each case writes two files and loads them.
fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn valid_documents_load(docs in docs()) {
        let config = load(&docs.probes_toml(), &docs.remediations_toml())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", docs.probes_toml())))?;
        prop_assert_eq!(config.probes.len(), docs.probes.len());
        prop_assert_eq!(config.rules.len(), docs.rules.len());
        for (loaded, written) in config.probes.iter().zip(&docs.probes) {
            prop_assert_eq!(item("probe", written), format!("probe \"{}\"", loaded.id));
        }
    }

    /// Probes written back out (serde → TOML) load to the same values.
    #[test]
    fn probes_round_trip_through_toml(docs in docs()) {
        let config = load(&docs.probes_toml(), &docs.remediations_toml()).unwrap();
        #[derive(serde::Serialize)]
        struct Out<'a> {
            probe: &'a [ProbeConfig],
        }
        let written = toml::to_string(&Out { probe: &config.probes })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = load(
            &format!("[defaults]\ninterval = \"30s\"\ntimeout = \"5s\"\n\n{written}"),
            &docs.remediations_toml(),
        )
        .map_err(|e| TestCaseError::fail(format!("{e}\n{written}")))?;
        prop_assert_eq!(&again.probes, &config.probes, "{}", written);
    }

    #[test]
    fn one_mistake_is_named_with_its_file_item_and_field(
        mut docs in docs(),
        which in any::<usize>(),
        m in mistake(),
    ) {
        let Some((file, words)) = apply(&mut docs, which, &m) else {
            return Ok(());
        };
        let err = match load(&docs.probes_toml(), &docs.remediations_toml()) {
            Ok(_) => {
                return Err(TestCaseError::fail(format!(
                    "{m:?} loaded:\n{}\n{}",
                    docs.probes_toml(),
                    docs.remediations_toml()
                )))
            }
            Err(e) => e,
        };
        let text = err.to_string();
        let line = text
            .lines()
            .find(|l| l.contains(file))
            .ok_or_else(|| TestCaseError::fail(format!("{file} not named: {text}")))?;
        for w in &words {
            prop_assert!(line.contains(w.as_str()), "{m:?}: `{w}` not in `{line}`\n{text}");
        }
    }

    /// Arbitrary text in either file: an error or a config, never a panic; an error names
    /// the file it is about.
    #[test]
    fn any_text_is_an_error_or_a_config(
        probes in "(\\[\\[probe\\]\\]\n|id = \"a\"\n|kind = \"tcp\"\n|[a-z_]{1,8} = [0-9\"a-z\\[\\]{}, ]{0,12}\n|.{0,20}\n){0,8}",
        remediations in "(\\[\\[rule\\]\\]\n|\\[policy\\]\n|mode = \"enforce\"\n|[a-z_]{1,8} = [0-9\"a-z\\[\\]{}, ]{0,12}\n|.{0,20}\n){0,6}",
    ) {
        if let Err(e) = load(&probes, &remediations) {
            let text = e.to_string();
            prop_assert!(
                text.contains("probes.toml") || text.contains("remediations.toml"),
                "{text}"
            );
        }
    }
}

/// Found by `one_mistake_is_named_with_its_file_item_and_field`: a wrong type in a probe's
/// kind-specific field was reported as `probes.toml: field \`probe.0\`: invalid type: found
/// bool true, expected a string`, naming neither the probe nor the field (serde loses the
/// path inside the flattened spec).
#[test]
fn a_wrong_type_in_a_spec_field_names_the_probe_and_the_field() {
    let err = load(
        "[[probe]]\nid = \"db\"\nkind = \"tcp\"\naddress = true\n",
        "",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("probes.toml: probe \"db\": field `address`: invalid type: found bool true, expected a string"),
        "{err}"
    );
    let err = load(
        "[[probe]]\nid = \"pg\"\nkind = \"patroni\"\nmembers = [\"http://a:8008\", { url = 5 }]\n",
        "",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("probe \"pg\": field `members[1].url`"),
        "{err}"
    );
    // Common fields kept their path, and now also name the probe.
    let err = load(
        "[[probe]]\nid = \"t\"\nkind = \"tcp\"\naddress = \"h:1\"\ntimeout = 5\n",
        "",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("probe \"t\": field `timeout`"), "{err}");
}

/// A rule's mistakes are named under the rule's id, as a probe's are.
#[test]
fn a_rule_mistake_names_the_rule_and_the_field() {
    let probes = "[[probe]]\nid = \"api\"\nkind = \"tcp\"\naddress = \"h:1\"\n";
    let rule = "[[rule]]\nid = \"restart\"\ntrigger = { probe = \"api\", min_level = \"P2\" }\n\
                action = { kind = \"rollout_restart\", namespace = \"shop\", deployment = \"api\" }\n";
    let err = load(probes, &format!("{rule}cooldown = \"5 parsecs\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("remediations.toml: rule \"restart\": field `cooldown`: "),
        "{err}"
    );
    let err = load(probes, &format!("{rule}colldown = \"5m\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("remediations.toml: rule \"restart\": field `colldown`: unknown field"),
        "{err}"
    );
}
