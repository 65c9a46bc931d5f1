//! Test-only proptest strategies for hostile JSON: arbitrary values, and almost-valid documents
//! made from a real one (a captured Patroni answer, a Kubernetes object, a journal) by
//! removing, retyping, blowing up, duplicating or emptying one of its parts; and the real
//! Deployment shape that probes and actuators both read.
//!
//! Used by the decoders' property tests (`src/**/proptests.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The proptest settings of the hostile-input tests: `cases` cases, and no regression files
/// (a case a property found is kept as an explicit unit test beside it instead).
pub fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One step into a document: an object key or an array index.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// What is done to the part of the document a path points at.
#[derive(Debug, Clone)]
pub enum Edit {
    /// Drop it (a key from its object, an element from its array).
    Remove,
    /// Put another value in its place (retyped, huge, negative, unicode…).
    Replace(Value),
    /// An array: its first element twice (duplicate members); anything else: unchanged.
    DuplicateFirst,
    /// An array or object: emptied.
    Empty,
    /// An object: one more key nobody expects.
    AddKey(String, Value),
}

/// Any JSON value, a few levels deep.
pub fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_]{1,10}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Values that break decoders: every JSON type, numbers at and past the limits, negative
/// counts, unicode and control characters, long strings, and the words Patroni uses.
pub fn nasty_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(false)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        Just(json!(i32::MAX)),
        Just(json!(i32::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(0.5)),
        Just(json!("")),
        Just(json!("unknown")),
        Just(json!("running")),
        Just(json!("master")),
        Just(json!("1")),
        Just(json!("-1")),
        Just(json!("18446744073709551616")),
        Just(json!("ünïcødé \u{202e}🦀\u{0}")),
        Just(json!([])),
        Just(json!([1, "a", null])),
        Just(json!({})),
        Just(json!({"nested": {"deeper": [null]}})),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,24}".prop_map(Value::String),
        (1usize..20_000).prop_map(|n| Value::String("x".repeat(n))),
        any_json(),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        3 => Just(Edit::Remove),
        6 => nasty_value().prop_map(Edit::Replace),
        1 => Just(Edit::DuplicateFirst),
        1 => Just(Edit::Empty),
        1 => ("[a-z_]{1,12}", nasty_value()).prop_map(|(k, v)| Edit::AddKey(k, v)),
    ]
}

/// Every path in `doc`, the root (empty path) first.
pub fn paths(doc: &Value) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

fn walk(v: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(Step::Key(k.clone()));
                walk(child, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                at.push(Step::Index(i));
                walk(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Applies `edit` at `path` (a path that exists in `doc`).
pub fn apply(doc: &mut Value, path: &[Step], edit: &Edit) {
    let Some((last, parent_path)) = path.split_last() else {
        match edit {
            Edit::Remove => *doc = Value::Null,
            other => apply_here(doc, other),
        }
        return;
    };
    let mut parent = &mut *doc;
    for step in parent_path {
        parent = match step {
            Step::Key(k) => &mut parent[k.as_str()],
            Step::Index(i) => &mut parent[*i],
        };
    }
    match (edit, last, parent) {
        (Edit::Remove, Step::Key(k), Value::Object(m)) => {
            m.remove(k);
        }
        (Edit::Remove, Step::Index(i), Value::Array(a)) => {
            a.remove(*i);
        }
        (other, Step::Key(k), Value::Object(m)) => {
            if let Some(v) = m.get_mut(k) {
                apply_here(v, other);
            }
        }
        (other, Step::Index(i), Value::Array(a)) => {
            if let Some(v) = a.get_mut(*i) {
                apply_here(v, other);
            }
        }
        _ => {}
    }
}

fn apply_here(v: &mut Value, edit: &Edit) {
    match (edit, &mut *v) {
        (Edit::Replace(new), _) => *v = new.clone(),
        (Edit::DuplicateFirst, Value::Array(a)) if !a.is_empty() => {
            let first = a[0].clone();
            a.insert(0, first);
        }
        (Edit::Empty, Value::Array(a)) => a.clear(),
        (Edit::Empty, Value::Object(m)) => m.clear(),
        (Edit::AddKey(k, new), Value::Object(m)) => {
            m.insert(k.clone(), new.clone());
        }
        _ => {}
    }
}

/// One edit of `doc` at a random place: the document, where, and what was done.
pub fn edited_once(doc: Value) -> impl Strategy<Value = (Value, Vec<Step>, Edit)> {
    let all = paths(&doc);
    (0..all.len(), edit()).prop_map(move |(i, e)| {
        let mut d = doc.clone();
        apply(&mut d, &all[i], &e);
        (d, all[i].clone(), e)
    })
}

/// One to four edits of `doc` at random places (later paths may have moved: then they
/// edit whatever sits there now, or nothing).
pub fn edited(doc: Value) -> impl Strategy<Value = Value> {
    let all = paths(&doc);
    prop::collection::vec((0..all.len(), edit()), 1..5).prop_map(move |edits| {
        let mut d = doc.clone();
        for (i, e) in edits {
            if exists(&d, &all[i]) {
                apply(&mut d, &all[i], &e);
            }
        }
        d
    })
}

fn exists(doc: &Value, path: &[Step]) -> bool {
    let mut v = doc;
    for step in path {
        let next = match (step, v) {
            (Step::Key(k), Value::Object(m)) => m.get(k),
            (Step::Index(i), Value::Array(a)) => a.get(*i),
            _ => None,
        };
        match next {
            Some(n) => v = n,
            None => return false,
        }
    }
    true
}

/// The object key nearest to the end of `path` (`members.1.lag` → `lag`, `members.1` →
/// `members`): the field an error about that place should name.
pub fn nearest_key(path: &[Step]) -> Option<&str> {
    path.iter().rev().find_map(|s| match s {
        Step::Key(k) => Some(k.as_str()),
        Step::Index(_) => None,
    })
}

/// A Deployment as the API server returns it (trimmed to what is read).
pub fn deployment_json(replicas: i32) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "api", "namespace": "shop", "generation": 3 },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": "api" } },
            "template": {
                "metadata": { "labels": { "app": "api" } },
                "spec": { "containers": [{ "name": "api", "image": "api:1" }] }
            }
        },
        "status": {
            "observedGeneration": 3, "replicas": replicas, "updatedReplicas": replicas,
            "readyReplicas": replicas, "availableReplicas": replicas,
            "conditions": [
                { "type": "Available", "status": "True" },
                { "type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable" }
            ]
        }
    })
}

/// Arbitrary bytes, biased towards the starts of JSON, HTML and text answers.
pub fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        ".{0,64}".prop_map(String::into_bytes),
        "[{\\[<\" \t\r\n]{0,3}.{0,64}".prop_map(String::into_bytes),
        any_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_land_where_the_path_points() {
        let doc = json!({"members": [{"name": "pg1", "lag": 0}, {"name": "pg2"}], "pause": false});
        let mut d = doc.clone();
        let path = vec![
            Step::Key("members".into()),
            Step::Index(0),
            Step::Key("lag".into()),
        ];
        apply(&mut d, &path, &Edit::Replace(json!("x")));
        assert_eq!(d["members"][0]["lag"], "x");
        apply(&mut d, &path, &Edit::Remove);
        assert!(d["members"][0].get("lag").is_none());
        apply(
            &mut d,
            &[Step::Key("members".into())],
            &Edit::DuplicateFirst,
        );
        assert_eq!(d["members"].as_array().unwrap().len(), 3);
        assert_eq!(nearest_key(&path), Some("lag"));
        assert_eq!(nearest_key(&path[..2]), Some("members"));
        assert_eq!(paths(&doc).len(), 8);
    }
}
