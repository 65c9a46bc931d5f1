//! HTTP routes of the fake API server: path parsing (`/api/v1/...`, `/apis/{group}/{version}/...`),
//! verbs, RBAC, fault injection, and the get / list / create / replace / patch / delete
//! semantics of the real apiserver, errors as `Status` objects.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::rbac::{forbidden_message, qualify};
use super::status::{details, not_found, status, write_error};
use super::store::{Key, WriteError, kind_of, matches_fields, matches_labels};
use super::{Request, Shared, rollout, watch};

/// What a path names.
#[derive(Debug, Clone)]
pub struct Target {
    pub gv: String,
    pub resource: String,
    pub subresource: Option<String>,
    pub namespace: String,
    pub name: Option<String>,
}

impl Target {
    pub fn group(&self) -> &str {
        self.gv.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// The resource as RBAC names it: `deployments/scale`.
    pub fn rbac_resource(&self) -> String {
        match &self.subresource {
            Some(s) => format!("{}/{s}", self.resource),
            None => self.resource.clone(),
        }
    }

    fn key(&self, name: &str) -> Key {
        Key::new(&self.gv, &self.resource, &self.namespace, name)
    }
}

pub fn parse(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (gv, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ((*v).to_owned(), rest),
        ["apis", g, v, rest @ ..] => (format!("{g}/{v}"), rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => ((*ns).to_owned(), tail),
        _ => (String::new(), rest),
    };
    let (resource, name, subresource) = match rest {
        [r] => (r, None, None),
        [r, n] => (r, Some(n), None),
        [r, n, s] => (r, Some(n), Some(s)),
        _ => return None,
    };
    Some(Target {
        gv,
        resource: (*resource).to_owned(),
        subresource: subresource.map(|s| (*s).to_owned()),
        namespace,
        name: name.map(|n| (*n).to_owned()),
    })
}

fn ok(code: StatusCode, v: Value) -> Response {
    (code, axum::Json(v)).into_response()
}

fn verb_of(method: &Method, t: &Target, query: &HashMap<String, String>) -> &'static str {
    let watching = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    match (method.as_str(), t.name.is_some()) {
        ("GET", true) => "get",
        ("GET", false) if watching => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    }
}

pub async fn handle(
    axum::extract::State(shared): axum::extract::State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query: HashMap<String, String> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let Some(t) = parse(uri.path()) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            json!({}),
        );
    };
    let verb = verb_of(&method, &t, &query);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared.requests.lock().unwrap().push(Request {
        at: jiff::Timestamp::now(),
        verb,
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        content_type: content_type.clone(),
        body: body.clone(),
    });
    let name = t.name.clone().unwrap_or_default();
    let permission = (verb.to_owned(), qualify(t.group(), &t.rbac_resource()));
    if !shared
        .rbac
        .lock()
        .unwrap()
        .allows(verb, t.group(), &t.rbac_resource())
    {
        shared.denied.lock().unwrap().insert(permission);
        let message = forbidden_message(
            &shared.sa_namespace,
            verb,
            t.group(),
            &t.rbac_resource(),
            &t.namespace,
            &name,
        );
        return status(403, "Forbidden", message, details(&t, &name));
    }
    shared.used.lock().unwrap().insert(permission);
    if let Some(fault) = shared.take_fault(verb, &t.resource, &name) {
        return fault.respond(&t, &name);
    }
    if verb == "watch"
        && shared
            .watches_refused
            .load(std::sync::atomic::Ordering::SeqCst)
    {
        return status(
            503,
            "ServiceUnavailable",
            "watches are cut".into(),
            json!({}),
        );
    }
    match verb {
        "list" => list(&shared, &t, &query),
        "watch" => watch::serve(shared.clone(), t, &query),
        "get" => get(&shared, &t, &name),
        "create" => create(&shared, &t, body),
        "update" => update(&shared, &t, &name, body),
        "patch" => patch(&shared, &t, &name, &content_type, &body),
        "delete" => delete(&shared, &t, &name),
        _ => status(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported here"),
            json!({}),
        ),
    }
}

fn selected(object: &Value, query: &HashMap<String, String>) -> bool {
    query
        .get("labelSelector")
        .is_none_or(|s| matches_labels(s, &object["metadata"]["labels"]))
        && query
            .get("fieldSelector")
            .is_none_or(|s| matches_fields(s, object))
}

/// Filters for a list or a watch.
pub fn selects(t: &Target, key: &Key, object: &Value, query: &HashMap<String, String>) -> bool {
    key.gv == t.gv
        && key.resource == t.resource
        && (t.namespace.is_empty() || key.namespace == t.namespace)
        && selected(object, query)
}

fn list(shared: &Arc<Shared>, t: &Target, query: &HashMap<String, String>) -> Response {
    let store = shared.store.lock().unwrap();
    let ns = (!t.namespace.is_empty()).then_some(t.namespace.as_str());
    let items: Vec<Value> = store
        .list(&t.gv, &t.resource, ns)
        .into_iter()
        .filter(|o| selected(o, query))
        .collect();
    ok(
        StatusCode::OK,
        json!({
            "kind": format!("{}List", kind_of(&t.resource)),
            "apiVersion": t.gv,
            "metadata": { "resourceVersion": store.rv().to_string() },
            "items": items,
        }),
    )
}

fn get(shared: &Arc<Shared>, t: &Target, name: &str) -> Response {
    let store = shared.store.lock().unwrap();
    let Some(object) = store.get(&t.key(name)) else {
        return not_found(t, name);
    };
    match t.subresource.as_deref() {
        Some("scale") => ok(StatusCode::OK, scale_of(object)),
        _ => ok(StatusCode::OK, object.clone()),
    }
}

/// The `autoscaling/v1` Scale of a Deployment.
fn scale_of(deployment: &Value) -> Value {
    let m = &deployment["metadata"];
    let selector = deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": { "replicas": deployment["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": {
            "replicas": deployment["status"]["replicas"].as_i64().unwrap_or(0),
            "selector": selector,
        },
    })
}

fn create(shared: &Arc<Shared>, t: &Target, mut body: Value) -> Response {
    let mut name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        let Some(prefix) = body["metadata"]["generateName"].as_str() else {
            return status(
                422,
                "Invalid",
                "metadata.name: Required value".into(),
                json!({}),
            );
        };
        name = format!("{prefix}{:05x}", rand_suffix());
    }
    if let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    let key = t.key(&name);
    let result = shared.store.lock().unwrap().create(&key, body);
    match result {
        Ok(o) => {
            shared.note_write(&key, &o);
            rollout::after_write(shared, &key, None, &o);
            ok(StatusCode::CREATED, o)
        }
        Err(e) => write_error(e, t, &name),
    }
}

impl Shared {
    /// Appends a write to the write log.
    pub fn note_write(&self, key: &Key, object: &Value) {
        self.writes.lock().unwrap().push(super::Written {
            at: jiff::Timestamp::now(),
            resource: key.resource.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            object: object.clone(),
        });
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0x1a2b3);
    N.fetch_add(7919, Ordering::Relaxed) & 0xfffff
}

fn update(shared: &Arc<Shared>, t: &Target, name: &str, body: Value) -> Response {
    let key = t.key(name);
    let mut store = shared.store.lock().unwrap();
    let Some(current) = store.get(&key).cloned() else {
        return not_found(t, name);
    };
    let next = match t.subresource.as_deref() {
        Some("scale") => {
            let mut next = current.clone();
            if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
                && !body["metadata"]["resourceVersion"].is_null()
            {
                return write_error(WriteError::Conflict, t, name);
            }
            next["spec"]["replicas"] = body["spec"]["replicas"].clone();
            next
        }
        Some("status") => {
            let mut next = current.clone();
            next["status"] = body["status"].clone();
            next["metadata"]["resourceVersion"] = body["metadata"]["resourceVersion"].clone();
            next
        }
        _ => body,
    };
    let result = store.replace(&key, next);
    drop(store);
    respond_write(shared, t, name, &key, &current, result)
}

fn patch(
    shared: &Arc<Shared>,
    t: &Target,
    name: &str,
    content_type: &str,
    body: &Value,
) -> Response {
    let merge = content_type.starts_with("application/merge-patch+json")
        || content_type.starts_with("application/strategic-merge-patch+json");
    if !merge {
        return status(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
            json!({}),
        );
    }
    let key = t.key(name);
    let mut store = shared.store.lock().unwrap();
    let Some(current) = store.get(&key).cloned() else {
        return not_found(t, name);
    };
    let result = match t.subresource.as_deref() {
        Some("scale") => {
            let mut scale = scale_of(&current);
            json_patch::merge(&mut scale, body);
            if scale["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"] {
                return write_error(WriteError::Conflict, t, name);
            }
            let mut next = current.clone();
            next["spec"]["replicas"] = scale["spec"]["replicas"].clone();
            store.replace(&key, next)
        }
        Some("status") => {
            let only_status = json!({ "status": body["status"].clone() });
            store.merge_patch(&key, &only_status)
        }
        _ => store.merge_patch(&key, body),
    };
    drop(store);
    respond_write(shared, t, name, &key, &current, result)
}

fn respond_write(
    shared: &Arc<Shared>,
    t: &Target,
    name: &str,
    key: &Key,
    before: &Value,
    result: Result<Value, WriteError>,
) -> Response {
    match result {
        Ok(o) => {
            shared.note_write(key, &o);
            rollout::after_write(shared, key, Some(before), &o);
            let shown = if t.subresource.as_deref() == Some("scale") {
                scale_of(&o)
            } else {
                o
            };
            ok(StatusCode::OK, shown)
        }
        Err(e) => write_error(e, t, name),
    }
}

fn delete(shared: &Arc<Shared>, t: &Target, name: &str) -> Response {
    let result = shared.store.lock().unwrap().delete(&t.key(name));
    match result {
        Ok(o) => ok(StatusCode::OK, o),
        Err(e) => write_error(e, t, name),
    }
}
