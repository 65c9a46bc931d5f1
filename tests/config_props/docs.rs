//! Random valid `probes.toml` / `remediations.toml` documents, as tables of key/value lines
//! that the mistakes in `mistakes.rs` then edit.

use proptest::prelude::*;

/// A TOML literal for `s`, escaped.
pub fn lit(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// One `[[probe]]` or `[[rule]]` as key/value lines, values already TOML literals.
#[derive(Debug, Clone)]
pub struct Table {
    /// `probe` or `rule`.
    pub section: &'static str,
    pub fields: Vec<(String, String)>,
    /// The keys whose absence is an error (besides `id`).
    pub required: Vec<&'static str>,
    /// Keys holding a duration, and keys holding a string (for retyping).
    pub durations: Vec<&'static str>,
    pub strings: Vec<&'static str>,
}

impl Table {
    pub fn id(&self) -> &str {
        &self.fields[0].1
    }

    pub fn render(&self) -> String {
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
        (
            prop::collection::btree_set(port(), 1..4),
            any::<bool>(),
            any::<bool>(),
            0u64..u64::from(u32::MAX),
        )
            .prop_map(move |(ports, named, sql, lag)| {
                let members: Vec<String> = ports
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        let url = lit(&format!("http://127.0.0.1:{p}"));
                        if named {
                            format!("{{ url = {url}, name = \"pg{i}\" }}")
                        } else {
                            url
                        }
                    })
                    .collect();
                let mut f = vec![
                    s("kind", lit("patroni")),
                    s("members", format!("[{}]", members.join(", "))),
                    s("max_lag_bytes", lag.to_string()),
                ];
                if sql {
                    f.push(s(
                        "sql",
                        "{ user = \"mon\", password = { file = \"/run/secrets/pg\" } }".into(),
                    ));
                }
                (f, vec!["members"], vec![])
            }),
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
pub struct Docs {
    pub probes: Vec<Table>,
    pub rules: Vec<Table>,
}

impl Docs {
    pub fn probes_toml(&self) -> String {
        let mut out = "[defaults]\ninterval = \"30s\"\ntimeout = \"5s\"\n\n".to_owned();
        for p in &self.probes {
            out.push_str(&p.render());
            out.push('\n');
        }
        out
    }

    pub fn remediations_toml(&self) -> String {
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

pub fn docs() -> impl Strategy<Value = Docs> {
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

/// The id as written in messages: `probe "x"` (the literal, unescaped).
pub fn item(section: &str, table: &Table) -> String {
    let id: String = toml::from_str::<toml::Table>(&format!("id = {}", table.id())).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    format!("{section} \"{id}\"")
}
