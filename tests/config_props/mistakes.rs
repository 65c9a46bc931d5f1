//! One mistake in a valid document (unknown key, wrong type, bad duration, duplicate id,
//! missing field, bad secret reference, unknown trigger probe), and the words the loader's
//! error must then contain.

use proptest::prelude::*;

use super::docs::{Docs, Table, item};

/// One mistake in one probe or rule.
#[derive(Debug, Clone)]
pub enum Mistake {
    UnknownKey(String),
    /// A string or duration field given a number, a bool, an array or a table.
    WrongType(usize, String),
    BadDuration(usize, String),
    DuplicateId,
    MissingRequired(usize),
    /// A secret reference that is not exactly `{ env }` or `{ file }`.
    BadSecret(String),
    /// A rule whose trigger names a probe that does not exist.
    UnknownTriggerProbe,
    /// A rule with a key nobody expects, a bad `cooldown`, or the id of another rule.
    RuleUnknownKey(String),
    RuleBadDuration(String),
    DuplicateRuleId,
}

fn bad_duration() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "\"5 parsecs\"".to_owned(),
        "\"\"".into(),
        "\"-5s\"".into(),
        "\"1.5.2s\"".into(),
        "\"99999999999999999999999s\"".into(),
        "\"ünï\"".into(),
        "5".into(),
        "true".into(),
    ])
}

pub fn mistake() -> impl Strategy<Value = Mistake> {
    let wrong = prop::sample::select(vec![
        "5".to_owned(),
        "-1".into(),
        "true".into(),
        "1.5".into(),
        "[1, 2]".into(),
        "{ a = 1 }".into(),
        "1979-05-27T07:32:00Z".into(),
    ]);
    let secret = prop::sample::select(vec![
        "{ env = \"A\", file = \"/b\" }".to_owned(),
        "{}".into(),
        "{ envv = \"A\" }".into(),
        "\"hunter2\"".into(),
        "{ env = 5 }".into(),
    ]);
    prop_oneof![
        "[a-z_]{1,12}".prop_map(Mistake::UnknownKey),
        (any::<usize>(), wrong).prop_map(|(i, v)| Mistake::WrongType(i, v)),
        (any::<usize>(), bad_duration()).prop_map(|(i, v)| Mistake::BadDuration(i, v)),
        Just(Mistake::DuplicateId),
        any::<usize>().prop_map(Mistake::MissingRequired),
        secret.prop_map(Mistake::BadSecret),
        Just(Mistake::UnknownTriggerProbe),
        "[a-z_]{1,12}".prop_map(Mistake::RuleUnknownKey),
        bad_duration().prop_map(Mistake::RuleBadDuration),
        Just(Mistake::DuplicateRuleId),
    ]
}

/// Known keys of any probe or rule, which an "unknown" key must not be.
const KNOWN: [&str; 40] = [
    "id",
    "kind",
    "target",
    "group",
    "interval",
    "timeout",
    "unhealthy_interval",
    "enabled",
    "levels",
    "damping",
    "address",
    "url",
    "method",
    "expect_status",
    "body_regex",
    "max_body_bytes",
    "follow_redirects",
    "headers",
    "bearer_token",
    "slo_latency",
    "path",
    "degraded_ratio",
    "failed_ratio",
    "namespace",
    "deployment",
    "instances",
    "username",
    "password",
    "min_hit_ratio",
    "hit_ratio_window",
    "min_lookups",
    "max_lag_bytes",
    "query",
    "min",
    "max",
    "no_data",
    "label_selector",
    "members",
    "sql",
    "cluster",
];

/// Applies the mistake to `docs`; returns the file and the words the error must contain, or
/// `None` when the mistake does not apply to these documents.
pub fn apply(docs: &mut Docs, which: usize, m: &Mistake) -> Option<(&'static str, Vec<String>)> {
    let p = which % docs.probes.len();
    let probe = &mut docs.probes[p];
    let probe_item = item("probe", probe);
    let probes = "probes.toml";
    match m {
        Mistake::UnknownKey(k) => {
            if KNOWN.contains(&k.as_str()) || k.starts_with("rule") {
                return None;
            }
            probe.fields.push((k.clone(), "1".into()));
            Some((probes, vec![probe_item, k.clone()]))
        }
        Mistake::WrongType(i, v) => {
            let keys: Vec<&str> = probe
                .strings
                .iter()
                .chain(&probe.durations)
                .copied()
                .collect();
            let key = keys[i % keys.len()];
            set(probe, key, v);
            Some((probes, vec![probe_item, key.to_owned()]))
        }
        Mistake::BadDuration(i, v) => {
            let key = probe.durations[i % probe.durations.len()];
            set(probe, key, v);
            Some((probes, vec![probe_item, key.to_owned()]))
        }
        Mistake::DuplicateId => {
            if docs.probes.len() < 2 {
                return None;
            }
            let id = docs.probes[0].fields[0].1.clone();
            let last = docs.probes.len() - 1;
            docs.probes[last].fields[0].1 = id;
            let named = item("probe", &docs.probes[0]);
            Some((probes, vec![named, "duplicate probe id".into()]))
        }
        Mistake::MissingRequired(i) => {
            let mut required = probe.required.clone();
            required.push("kind");
            let key = required[i % required.len()];
            probe.fields.retain(|(k, _)| k != key);
            Some((probes, vec![probe_item, format!("`{key}`")]))
        }
        Mistake::BadSecret(v) => {
            if !probe.fields.iter().any(|(k, _)| k == "password") {
                return None;
            }
            set(probe, "password", v);
            let mut words = vec![probe_item];
            if v.starts_with("{ envv") {
                words.push("envv".into());
            } else {
                words.push("password".into());
            }
            Some((probes, words))
        }
        Mistake::UnknownTriggerProbe => {
            let rule = docs.rules.first_mut()?;
            set(
                rule,
                "trigger",
                "{ probe = \"no-such-probe\", min_level = \"P2\" }",
            );
            let named = item("rule", rule);
            Some((
                "remediations.toml",
                vec![named, "trigger.probe".into(), "no-such-probe".into()],
            ))
        }
        Mistake::RuleUnknownKey(k) => {
            const RULE_KEYS: [&str; 14] = [
                "id",
                "trigger",
                "action",
                "budget",
                "cooldown",
                "verify",
                "escalate",
                "undo_on_resolve",
                "windows",
                "depends_on",
                "mode",
                "description",
                "deadline",
                "notify",
            ];
            if RULE_KEYS.contains(&k.as_str()) {
                return None;
            }
            let rule = docs.rules.first_mut()?;
            rule.fields.push((k.clone(), "1".into()));
            let named = item("rule", rule);
            Some(("remediations.toml", vec![named, k.clone()]))
        }
        Mistake::RuleBadDuration(v) => {
            let rule = docs.rules.first_mut()?;
            set(rule, "cooldown", v);
            let named = item("rule", rule);
            Some(("remediations.toml", vec![named, "cooldown".into()]))
        }
        Mistake::DuplicateRuleId => {
            if docs.rules.len() < 2 {
                return None;
            }
            let id = docs.rules[0].fields[0].1.clone();
            docs.rules[1].fields[0].1 = id;
            let named = item("rule", &docs.rules[0]);
            Some(("remediations.toml", vec![named, "duplicate rule id".into()]))
        }
    }
}

fn set(t: &mut Table, key: &str, v: &str) {
    match t.fields.iter_mut().find(|(k, _)| k == key) {
        Some(f) => f.1 = v.to_owned(),
        None => t.fields.push((key.to_owned(), v.to_owned())),
    }
}
