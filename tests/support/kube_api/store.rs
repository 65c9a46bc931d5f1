//! The object store of the fake API server: JSON objects keyed by (group/version, resource,
//! namespace, name), one global resourceVersion counter, the event history watches replay,
//! and the apiserver's write rules (uid, creationTimestamp, generation, optimistic concurrency).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Where an object lives. `namespace` is empty for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub gv: String,
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    pub fn new(gv: &str, resource: &str, namespace: &str, name: &str) -> Self {
        Key {
            gv: gv.into(),
            resource: resource.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The API group (`""` for core).
    pub fn group(&self) -> &str {
        self.gv.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// `deployments.apps`, `pods`: how the apiserver names a resource in messages.
    pub fn qualified(&self) -> String {
        match self.group() {
            "" => self.resource.clone(),
            g => format!("{}.{g}", self.resource),
        }
    }
}

/// One change, as a watch sends it.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub key: Key,
    pub kind: &'static str,
    pub object: Value,
}

/// The `Kind` of a resource (for `*List` and for objects created without one).
pub fn kind_of(resource: &str) -> &'static str {
    match resource {
        "nodes" => "Node",
        "pods" => "Pod",
        "configmaps" => "ConfigMap",
        "events" => "Event",
        "namespaces" => "Namespace",
        "deployments" => "Deployment",
        "ingresses" => "Ingress",
        "leases" => "Lease",
        _ => "Unknown",
    }
}

/// Why a write was refused (turned into a `Status` by the routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    NotFound,
    AlreadyExists,
    Conflict,
}

pub struct Store {
    objects: BTreeMap<Key, Value>,
    rv: u64,
    history: Vec<Change>,
    /// Watches from a resourceVersion below this get 410 (etcd compaction).
    pub compacted_below: u64,
    uid: u64,
    pub changes: broadcast::Sender<Change>,
}

impl Store {
    pub fn new() -> Self {
        Store {
            objects: BTreeMap::new(),
            rv: 1,
            history: Vec::new(),
            compacted_below: 0,
            uid: 0,
            changes: broadcast::channel(1024).0,
        }
    }

    pub fn rv(&self) -> u64 {
        self.rv
    }

    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource in one namespace (`None`: every namespace).
    pub fn list(&self, gv: &str, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|(k, _)| {
                k.gv == gv && k.resource == resource && namespace.is_none_or(|n| k.namespace == n)
            })
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Changes after `rv`, for a watch that resumes.
    pub fn history_after(&self, rv: u64) -> Vec<Change> {
        self.history.iter().filter(|c| c.rv > rv).cloned().collect()
    }

    /// Forgets the history: a watch from any older resourceVersion now gets 410 Gone.
    pub fn compact(&mut self) {
        self.compacted_below = self.rv;
        self.history.clear();
    }

    fn bump(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    fn record(&mut self, key: &Key, kind: &'static str, object: &Value) {
        let change = Change {
            rv: self.rv,
            key: key.clone(),
            kind,
            object: object.clone(),
        };
        self.history.push(change.clone());
        // No receiver is fine: nobody watches.
        let _ = self.changes.send(change);
    }

    /// POST: sets uid, creationTimestamp, resourceVersion, generation.
    pub fn create(&mut self, key: &Key, mut object: Value) -> Result<Value, WriteError> {
        if self.objects.contains_key(key) {
            return Err(WriteError::AlreadyExists);
        }
        self.uid += 1;
        let rv = self.bump();
        let meta = meta_mut(&mut object);
        meta.insert("name".into(), json!(key.name));
        if !key.namespace.is_empty() {
            meta.insert("namespace".into(), json!(key.namespace));
        }
        meta.insert(
            "uid".into(),
            json!(format!("00000000-0000-4000-8000-{:012}", self.uid)),
        );
        meta.insert(
            "creationTimestamp".into(),
            json!(jiff::Timestamp::now().round(jiff::Unit::Second).ok()),
        );
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if object.get("spec").is_some() {
            meta_mut(&mut object).insert("generation".into(), json!(1));
        }
        fill_type(&mut object, key);
        self.objects.insert(key.clone(), object.clone());
        self.record(key, "ADDED", &object);
        Ok(object)
    }

    /// PUT (and every internal write): a stale `metadata.resourceVersion` is a conflict;
    /// `generation` moves when `spec` changed.
    pub fn replace(&mut self, key: &Key, mut object: Value) -> Result<Value, WriteError> {
        let Some(current) = self.objects.get(key) else {
            return Err(WriteError::NotFound);
        };
        let current_rv = current["metadata"]["resourceVersion"].clone();
        if let Some(sent) = object["metadata"].get("resourceVersion")
            && !sent.is_null()
            && *sent != current_rv
        {
            return Err(WriteError::Conflict);
        }
        let spec_changed = current.get("spec") != object.get("spec");
        let mut generation = current["metadata"]["generation"].as_i64();
        if spec_changed && generation.is_some() {
            generation = generation.map(|g| g + 1);
        }
        let kept: Vec<(String, Value)> = ["uid", "creationTimestamp", "name", "namespace"]
            .iter()
            .filter_map(|f| {
                current["metadata"]
                    .get(*f)
                    .map(|v| ((*f).to_owned(), v.clone()))
            })
            .collect();
        let rv = self.bump();
        let meta = meta_mut(&mut object);
        for (f, v) in kept {
            meta.insert(f, v);
        }
        meta.insert("resourceVersion".into(), json!(rv.to_string()));
        if let Some(g) = generation {
            meta.insert("generation".into(), json!(g));
        }
        fill_type(&mut object, key);
        self.objects.insert(key.clone(), object.clone());
        self.record(key, "MODIFIED", &object);
        Ok(object)
    }

    /// JSON merge patch (RFC 7386). A `metadata.resourceVersion` in the patch is a
    /// precondition, as on the real apiserver.
    pub fn merge_patch(&mut self, key: &Key, patch: &Value) -> Result<Value, WriteError> {
        let Some(current) = self.objects.get(key) else {
            return Err(WriteError::NotFound);
        };
        let mut next = current.clone();
        json_patch::merge(&mut next, patch);
        if patch["metadata"].get("resourceVersion").is_none() {
            meta_mut(&mut next).insert(
                "resourceVersion".into(),
                current["metadata"]["resourceVersion"].clone(),
            );
        }
        self.replace(key, next)
    }

    pub fn delete(&mut self, key: &Key) -> Result<Value, WriteError> {
        let mut object = self.objects.remove(key).ok_or(WriteError::NotFound)?;
        let rv = self.bump();
        meta_mut(&mut object).insert("resourceVersion".into(), json!(rv.to_string()));
        self.record(key, "DELETED", &object);
        Ok(object)
    }
}

/// `metadata` as a map, created when missing.
pub fn meta_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().unwrap_or_else(|| unreachable!());
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().unwrap_or_else(|| unreachable!())
}

fn fill_type(object: &mut Value, key: &Key) {
    if let Some(map) = object.as_object_mut() {
        map.insert("apiVersion".into(), json!(key.gv));
        map.insert("kind".into(), json!(kind_of(&key.resource)));
    }
}

/// Whether `labels` satisfy a selector: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
/// `a notin (x,y)`, comma separated.
pub fn matches_labels(selector: &str, labels: &Value) -> bool {
    split_requirements(selector).iter().all(|req| {
        let req = req.trim();
        let label = |k: &str| labels.get(k.trim()).and_then(Value::as_str);
        if req.is_empty() {
            true
        } else if let Some((k, set)) = req.split_once(" notin ") {
            label(k).is_none_or(|v| !in_set(set, v))
        } else if let Some((k, set)) = req.split_once(" in ") {
            label(k).is_some_and(|v| in_set(set, v))
        } else if let Some((k, v)) = req.split_once("!=") {
            label(k) != Some(v.trim())
        } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
            label(k) == Some(v.trim())
        } else if let Some(k) = req.strip_prefix('!') {
            label(k).is_none()
        } else {
            label(req).is_some()
        }
    })
}

fn in_set(set: &str, value: &str) -> bool {
    set.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .any(|v| v.trim() == value)
}

/// Splits on commas outside parentheses.
fn split_requirements(selector: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in selector.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        if let Some(last) = out.last_mut() {
            last.push(c);
        }
    }
    out
}

/// `metadata.name=x,metadata.namespace=y` (the only fields the daemon selects on).
pub fn matches_fields(selector: &str, object: &Value) -> bool {
    selector.split(',').filter(|r| !r.is_empty()).all(|req| {
        let (field, want, negate) = match req.split_once("!=") {
            Some((f, v)) => (f, v, true),
            None => match req.split_once("==").or_else(|| req.split_once('=')) {
                Some((f, v)) => (f, v, false),
                None => return false,
            },
        };
        let have = match field {
            "metadata.name" => object["metadata"]["name"].as_str(),
            "metadata.namespace" => object["metadata"]["namespace"].as_str(),
            _ => None,
        };
        (have == Some(want)) != negate
    })
}
