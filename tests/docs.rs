//! The operator docs keep up with the code: every config field (read from the serde structs
//! in src/config/) is named in docs/configuration.md, and every metric family (registered in
//! src/metrics/mod.rs, and exported by a registry with every family filled) is in docs/metrics.md
//! with its labels.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use support::deploy::repo;
use support::exposition::{families, populated};

fn doc(path: &str) -> String {
    std::fs::read_to_string(repo().join(path)).unwrap()
}

/// `rename_all` applied to a Rust variant name.
fn renamed(variant: &str, rule: Option<&str>) -> String {
    let mut snake = String::new();
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(c.to_ascii_lowercase());
    }
    match rule {
        Some("kebab-case") => snake.replace('_', "-"),
        Some("snake_case") => snake,
        _ => variant.to_owned(),
    }
}

/// Field names (as written in TOML) and enum values of the `Deserialize` types of one file,
/// each with the type it belongs to.
fn config_names(source: &str) -> BTreeSet<(String, String)> {
    let attr_value = |attrs: &str, key: &str| {
        regex::Regex::new(&format!(r#"\b{key}\s*=\s*"([^"]+)""#))
            .unwrap()
            .captures(attrs)
            .map(|c| c[1].to_owned())
    };
    let item = regex::Regex::new(r"(?m)^pub (struct|enum) (\w+)[^{;]*\{").unwrap();
    let mut out = BTreeSet::new();
    for m in item.captures_iter(source) {
        let start = m.get(0).unwrap().start();
        // The attributes above the item (up to the previous blank line or item end).
        let head = &source[..start];
        let attrs_from = head
            .rfind("\n}\n")
            .or_else(|| head.rfind("\n\n"))
            .unwrap_or(0);
        let attrs = &head[attrs_from..];
        if !attrs.contains("Deserialize") {
            continue;
        }
        let ty = m[2].to_owned();
        let body_start = m.get(0).unwrap().end();
        let body_len = source[body_start..].find("\n}").unwrap();
        let body = &source[body_start..body_start + body_len];
        let rename_all = attr_value(attrs, "rename_all");
        let mut pending = String::new();
        for line in body.lines() {
            let t = line.trim();
            if t.starts_with("#[") {
                pending.push_str(t);
                continue;
            }
            if t.starts_with("//") || t.is_empty() {
                continue;
            }
            let attrs_here = std::mem::take(&mut pending);
            if attrs_here.contains("flatten") || attrs_here.contains("skip") {
                continue;
            }
            let field = if m[1] == *"struct" {
                t.strip_prefix("pub ")
                    .and_then(|f| f.split_once(':'))
                    .map(|(n, _)| n)
            } else if line.starts_with("        ") {
                t.split_once(':').map(|(n, _)| n) // a field of a struct-like variant
            } else {
                let v = t.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("");
                if !v.is_empty() {
                    out.insert((ty.clone(), renamed(v, rename_all.as_deref())));
                }
                None
            };
            if let Some(f) = field {
                let name = attr_value(&attrs_here, "rename").unwrap_or_else(|| f.to_owned());
                out.insert((ty.clone(), name.trim_start_matches("r#").to_owned()));
            }
        }
    }
    out
}

#[test]
fn config_names_are_read_from_the_source() {
    let src = "#[derive(Deserialize)]\n#[serde(rename_all = \"kebab-case\")]\npub enum Mode {\n    Off,\n    #[default]\n    DryRun,\n}\n\n\
               #[derive(Deserialize)]\npub struct T {\n    /// doc\n    #[serde(default, rename = \"for\")]\n    pub for_: u8,\n    #[serde(flatten)]\n    pub spec: S,\n}\n\n\
               #[derive(Serialize)]\npub struct NotConfig {\n    pub x: u8,\n}\n";
    let names: Vec<_> = config_names(src).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, ["dry-run", "off", "for"]);
}

#[test]
fn every_config_field_is_in_configuration_md() {
    let text = doc("docs/configuration.md");
    let mut missing = Vec::new();
    let mut count = 0;
    for entry in std::fs::read_dir(repo().join("src/config")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // validate/: checks, not config types
        }
        let source = std::fs::read_to_string(&path).unwrap();
        for (ty, name) in config_names(&source) {
            count += 1;
            if !text.contains(&format!("`{name}`")) {
                missing.push(format!("{ty}.{name} ({})", path.display()));
            }
        }
    }
    assert!(
        count > 80,
        "only {count} names found: is the extraction broken?"
    );
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md as `name`:\n{}",
        missing.join("\n")
    );
}

/// Metric names registered in src/metrics/mod.rs (`registry.register("x"` is unprefixed,
/// `ours.register("x"` is `astreinte_x`), and the per-kind gauges' names.
fn registered_in_source() -> BTreeSet<String> {
    let source = std::fs::read_to_string(repo().join("src/metrics/mod.rs")).unwrap();
    let register = regex::Regex::new(r#"(registry|ours)\.register\(\s*"(\w+)""#).unwrap();
    let mut out: BTreeSet<String> = register
        .captures_iter(&source)
        .map(|c| match &c[1] {
            "ours" => format!("astreinte_{}", &c[2]),
            _ => c[2].to_owned(),
        })
        .collect();
    for g in astreinte::metrics::GaugeName::ALL {
        out.insert(format!("astreinte_{}", g.describe().0));
    }
    out
}

#[test]
fn every_metric_and_its_labels_are_in_metrics_md() {
    let text = doc("docs/metrics.md");
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    let row_of = |name: &str| {
        rows.iter()
            .find(|r| r.contains(&format!("`{name}`")) || r.contains(&format!("`{name}{{")))
            .copied()
    };
    let mut missing = Vec::new();
    let source_names = registered_in_source();
    assert!(source_names.len() >= 20, "{source_names:?}");
    for name in &source_names {
        if !text.contains(&format!("`{name}")) {
            missing.push(format!("{name} (registered in src/metrics/mod.rs)"));
        }
    }
    // Sample names and label names from a registry where every family has a sample.
    let exposition = populated().encode();
    let kinds: BTreeMap<String, String> = families(&exposition).into_iter().collect();
    let sample = regex::Regex::new(r"(?m)^([a-z_:]+)(?:\{([^}]*)\})? ").unwrap();
    let mut labels: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in sample.captures_iter(&exposition) {
        let name = c[1].to_owned();
        let family = kinds
            .keys()
            .filter(|f| name.starts_with(f.as_str()))
            .max_by_key(|f| f.len())
            .cloned()
            .unwrap_or(name);
        let documented = match kinds.get(&family).map(String::as_str) {
            Some("counter") => format!("{family}_total"),
            _ => family,
        };
        let set = labels.entry(documented).or_default();
        for pair in c.get(2).map_or("", |m| m.as_str()).split(',') {
            if let Some((label, _)) = pair.split_once('=')
                && label != "le"
            {
                set.insert(label.to_owned());
            }
        }
    }
    assert!(labels.len() >= 20, "{labels:?}");
    for (name, want) in &labels {
        match row_of(name) {
            None => missing.push(format!("{name} (no table row naming `{name}`)")),
            Some(row) => {
                for l in want {
                    if !row.contains(&format!("`{l}`")) {
                        missing.push(format!("{name}: label `{l}` not in its row"));
                    }
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "docs/metrics.md lacks:\n{}",
        missing.join("\n")
    );
}
