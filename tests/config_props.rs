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

/// A TOML literal for `s`, escaped.
fn lit(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// One `[[probe]]` or `[[rule]]` as key/value lines, values already TOML literals.
#[derive(Debug, Clone)]
struct Table {
    /// `probe` or `rule`.
    section: &'static str,
    fields: Vec<(String, String)>,
    /// The keys whose absence is an error (besides `id`).
    required: Vec<&'static str>,
    /// Keys holding a duration, and keys holding a string (for retyping).
    durations: Vec<&'static str>,
    strings: Vec<&'static str>,
}

impl Table {
    fn id(&self) -> &str {
        &self.fields[0].1
    }

    fn render(&self) -> String {
        let mut out = format!("[[{}]]\n", self.section);
        for (k, v) in &self.fields {
            out.push_str(&format!("{k} = {v}\n"));
        }
        out
    }
}

fn port() -> impl Strategy<Value = u16> {
    1u16..=65535
}

fn duration() -> impl Strategy<Value = (u64, &'static str)> {
    (1u64..500, prop::sample::select(vec!["ms", "s", "m"]))
}

/// A DNS label (namespaces, deployments).
fn dns() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,10}[a-z0-9]"
}

/// A probe's kind-specific fields, valid.
fn spec() -> impl Strategy<Value = (Vec<(String, String)>, Vec<&'static str>, Vec<&'static str>)> {
    let s = |k: &str, v: String| (k.to_owned(), v);
    prop_oneof![
        port().prop_map(move |p| (
            vec![
                s("kind", lit("tcp")),
                s("address", lit(&format!("127.0.0.1:{p}")))
            ],
            vec!["address"],
            vec!["address"],
        )),
        (port(), prop::option::of(duration())).prop_map(move |(p, slo)| {
            let mut f = vec![
                s("kind", lit("http")),
                s("url", lit(&format!("http://127.0.0.1:{p}/health"))),
                s("expect_status", "[200, 204]".into()),
            ];
            if let Some((n, u)) = slo {
                f.push(s("slo_latency", lit(&format!("{n}{u}"))));
            }
            (f, vec!["url"], vec!["url"])
        }),
        (0.05f64..0.5, 0.5f64..1.0).prop_map(move |(d, f)| (
            vec![
                s("kind", lit("disk")),
                s("path", lit("/")),
                s("degraded_ratio", format!("{d}")),
                s("failed_ratio", format!("{f}")),
            ],
            vec!["path"],
            vec!["path"],
        )),
        (dns(), dns()).prop_map(move |(ns, d)| (
            vec![
                s("kind", lit("workload")),
                s("namespace", lit(&ns)),
                s("deployment", lit(&d)),
            ],
            vec!["namespace", "deployment"],
            vec!["namespace", "deployment"],
        )),
        (port(), port(), any::<bool>(), 0.0f64..=1.0).prop_filter_map(
            "two distinct instances",
            move |(a, b, auth, ratio)| {
                (a != b).then(|| {
                    let mut f = vec![
                        s("kind", lit("redis")),
                        s(
                            "instances",
                            format!("[{}, {}]", lit(&format!("h:{a}")), lit(&format!("h:{b}"))),
                        ),
                        s("min_hit_ratio", format!("{ratio}")),
                    ];
                    if auth {
                        f.push(s("password", "{ env = \"REDIS_PASSWORD\" }".into()));
                    }
                    (f, vec!["instances"], vec![])
                })
            }
        ),
        (port(), -1e6f64..1e6).prop_map(move |(p, min)| (
            vec![
                s("kind", lit("promql")),
                s("url", lit(&format!("http://127.0.0.1:{p}"))),
                s("query", lit("up{job=\"api\"}")),
                s("min", format!("{min:?}")),
            ],
            vec!["url", "query"],
            vec!["url", "query"],
        )),
        prop::option::of("[a-z]{1,8}=[a-z]{1,8}").prop_map(move |sel| {
            let mut f = vec![s("kind", lit("node"))];
            if let Some(sel) = sel {
                f.push(s("label_selector", lit(&sel)));
            }
            (f, vec![], vec![])
        }),
    ]
}

/// A probe with id `id`, valid (timeout < interval).
fn probe(id: String) -> impl Strategy<Value = Table> {
    (spec(), 1u64..20, 1u64..10, any::<bool>()).prop_map(
        move |((mut spec, required, strings), interval, timeout, group)| {
            let mut fields = vec![("id".to_owned(), lit(&id))];
            fields.push(("interval".into(), lit(&format!("{}s", interval + 10))));
            fields.push(("timeout".into(), lit(&format!("{timeout}s"))));
            if group {
                fields.push(("group".into(), lit("grp")));
            }
            fields.append(&mut spec);
            let mut strings = strings;
            strings.push("target");
            if !fields.iter().any(|(k, _)| k == "target") {
                fields.push(("target".into(), lit(&format!("{id} target"))));
            }
            Table {
                section: "probe",
                fields,
                required,
                durations: vec!["interval", "timeout"],
                strings,
            }
        },
    )
}

/// A valid pair of documents: probes with distinct ids (any characters), and a rule per
/// probe restarting a deployment of an allowed namespace.
#[derive(Debug, Clone)]
struct Docs {
    probes: Vec<Table>,
    rules: Vec<Table>,
}

impl Docs {
    fn probes_toml(&self) -> String {
        let mut out = "[defaults]\ninterval = \"30s\"\ntimeout = \"5s\"\n\n".to_owned();
        for p in &self.probes {
            out.push_str(&p.render());
            out.push('\n');
        }
        out
    }

    fn remediations_toml(&self) -> String {
        let mut out =
            "[policy]\nmode = \"dry-run\"\nallow = [\"shop/*/*\"]\nglobal_budget = { max = 6, per = \"1h\" }\n\n"
                .to_owned();
        for r in &self.rules {
            out.push_str(&r.render());
            out.push('\n');
        }
        out
    }
}

fn docs() -> impl Strategy<Value = Docs> {
    prop::collection::vec("[a-zA-Z0-9_é🦀 -]{1,10}", 1..6)
        .prop_map(|words| {
            words
                .into_iter()
                .enumerate()
                .map(|(i, w)| format!("{w}-{i}"))
                .collect::<Vec<_>>()
        })
        .prop_flat_map(|ids| {
            let probes: Vec<_> = ids.iter().cloned().map(probe).collect();
            (probes, Just(ids), duration())
        })
        .prop_map(|(probes, ids, (n, unit))| {
            let rules = ids
                .iter()
                .take(2)
                .enumerate()
                .map(|(i, probe_id)| Table {
                    section: "rule",
                    fields: vec![
                        ("id".into(), lit(&format!("restart-{i}"))),
                        (
                            "trigger".into(),
                            format!("{{ probe = {}, min_level = \"P2\" }}", lit(probe_id)),
                        ),
                        (
                            "action".into(),
                            "{ kind = \"rollout_restart\", namespace = \"shop\", deployment = \"api\" }"
                                .into(),
                        ),
                        ("cooldown".into(), lit(&format!("{n}{unit}"))),
                    ],
                    required: vec!["trigger", "action"],
                    durations: vec!["cooldown"],
                    strings: vec![],
                })
                .collect();
            Docs { probes, rules }
        })
}

fn write(dir: &Path, probes: &str, remediations: &str) {
    std::fs::write(dir.join("probes.toml"), probes).unwrap();
    std::fs::write(dir.join("remediations.toml"), remediations).unwrap();
}

fn load(probes: &str, remediations: &str) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), probes, remediations);
    load_config(Some(&dir.path().to_path_buf()))
}

/// The id as written in messages: `probe "x"` (the literal, unescaped).
fn item(section: &str, table: &Table) -> String {
    let id: String = toml::from_str::<toml::Table>(&format!("id = {}", table.id())).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("{section} \"{id}\"")
}

/// One mistake in one probe or rule.
#[derive(Debug, Clone)]
enum Mistake {
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

fn bad_duration_again() -> impl Strategy<Value = String> {
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

fn mistake() -> impl Strategy<Value = Mistake> {
    let wrong = prop::sample::select(vec![
        "5".to_owned(),
        "-1".into(),
        "true".into(),
        "1.5".into(),
        "[1, 2]".into(),
        "{ a = 1 }".into(),
        "1979-05-27T07:32:00Z".into(),
    ]);
    let bad_duration = bad_duration_again();
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
        (any::<usize>(), bad_duration).prop_map(|(i, v)| Mistake::BadDuration(i, v)),
        Just(Mistake::DuplicateId),
        any::<usize>().prop_map(Mistake::MissingRequired),
        secret.prop_map(Mistake::BadSecret),
        Just(Mistake::UnknownTriggerProbe),
        "[a-z_]{1,12}".prop_map(Mistake::RuleUnknownKey),
        bad_duration_again().prop_map(Mistake::RuleBadDuration),
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
fn apply(docs: &mut Docs, which: usize, m: &Mistake) -> Option<(&'static str, Vec<String>)> {
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
