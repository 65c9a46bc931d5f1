//! A Kubernetes API test server: no kube-apiserver can run here, so this axum server behaves
//! like the real one on every path the daemon uses (get, list with selectors, watch with
//! bookmarks and 410, create, replace with resourceVersion conflicts, merge patch, the scale
//! and status subresources, delete), checks RBAC against `deploy/base/rbac.yaml`, records the
//! (verb, resource) pairs it served, simulates the Deployment controller, and takes fault knobs.
//! The daemon reaches it through its real kube client and a kubeconfig file.
#![allow(dead_code)]

pub mod faults;
pub mod objects;
pub mod rbac;
pub mod rollout;
pub mod routes;
pub mod status;
pub mod store;
pub mod watch;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use faults::Fault;
pub use rbac::{Permission, Rbac};
pub use rollout::Rollout;
use store::{Key, Store};

/// The namespace of the `astreinte` ServiceAccount in Forbidden messages.
pub const SA_NAMESPACE: &str = "astreinte";

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Request {
    /// When the server received it (its clock).
    pub at: jiff::Timestamp,
    pub verb: &'static str,
    pub method: String,
    pub path: String,
    pub query: HashMap<String, String>,
    pub content_type: String,
    pub body: Value,
}

/// One write the server applied: when (its clock), what, and the object as stored.
#[derive(Debug, Clone)]
pub struct Written {
    pub at: jiff::Timestamp,
    pub resource: String,
    pub namespace: String,
    pub name: String,
    pub object: Value,
}

pub struct Shared {
    pub store: Mutex<Store>,
    pub rbac: Mutex<Rbac>,
    pub sa_namespace: String,
    pub used: Mutex<BTreeSet<Permission>>,
    pub denied: Mutex<BTreeSet<Permission>>,
    pub requests: Mutex<Vec<Request>>,
    /// Every successful write (create, update, patch), in order, with the server's time.
    pub writes: Mutex<Vec<Written>>,
    pub faults: Mutex<Vec<Fault>>,
    pub rollout: Mutex<Rollout>,
    pub bookmark_every: Mutex<Duration>,
    /// Caps every watch's duration (the apiserver closes watches; clients resume or relist).
    pub max_watch: Mutex<Option<Duration>>,
    pub bookmarks_sent: std::sync::atomic::AtomicUsize,
    /// Bumped to close every open watch.
    pub watch_epoch: tokio::sync::watch::Sender<u64>,
    /// While set, watch requests get 503 (an apiserver the client cannot watch).
    pub watches_refused: std::sync::atomic::AtomicBool,
}

pub struct KubeApi {
    pub url: String,
    shared: Arc<Shared>,
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KubeApi {
    /// A server with the repository's RBAC.
    pub async fn start() -> Self {
        Self::start_with(Rbac::from_yaml(&rbac::repo_rbac_yaml())).await
    }

    pub async fn start_with(rbac: Rbac) -> Self {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            rbac: Mutex::new(rbac),
            sa_namespace: SA_NAMESPACE.into(),
            used: Mutex::default(),
            denied: Mutex::default(),
            requests: Mutex::default(),
            writes: Mutex::default(),
            faults: Mutex::default(),
            rollout: Mutex::new(Rollout::Completes(Duration::from_millis(200))),
            bookmark_every: Mutex::new(Duration::from_secs(1)),
            max_watch: Mutex::new(None),
            bookmarks_sent: Default::default(),
            watch_epoch: tokio::sync::watch::channel(0).0,
            watches_refused: Default::default(),
        });
        let app = axum::Router::new()
            .fallback(routes::handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let url = format!("http://{addr}");
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(&kubeconfig, kubeconfig_yaml(&url)).unwrap();
        KubeApi {
            url,
            shared,
            _dir: dir,
            kubeconfig,
            task,
        }
    }

    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// A client built the way the daemon builds it, from the kubeconfig file.
    pub async fn client(&self) -> kube::Client {
        astreinte::app::install_crypto();
        astreinte::clients::kube::connect(Some(&self.kubeconfig))
            .await
            .expect("kube client")
            .expect("a cluster")
    }

    /// Stores an object directly (no RBAC, no request log, no rollout).
    pub fn put(&self, object: Value) -> Value {
        let key = key_of(&object);
        let mut store = self.shared.store.lock().unwrap();
        if store.get(&key).is_some() {
            let mut object = object;
            object["metadata"]["resourceVersion"] = Value::Null;
            store.replace(&key, object).unwrap()
        } else {
            store.create(&key, object).unwrap()
        }
    }

    pub fn get(&self, gv: &str, resource: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = Key::new(gv, resource, namespace, name);
        self.shared.store.lock().unwrap().get(&key).cloned()
    }

    /// Merge-patches an object directly (as another client or a controller would).
    pub fn patch(&self, gv: &str, resource: &str, namespace: &str, name: &str, patch: Value) {
        let key = Key::new(gv, resource, namespace, name);
        self.shared
            .store
            .lock()
            .unwrap()
            .merge_patch(&key, &patch)
            .unwrap();
    }

    pub fn remove(&self, gv: &str, resource: &str, namespace: &str, name: &str) {
        let key = Key::new(gv, resource, namespace, name);
        let _ = self.shared.store.lock().unwrap().delete(&key);
    }

    /// Sets one condition of a node (`Ready`, `MemoryPressure`…) to `"True"` / `"False"`.
    pub fn set_node_condition(&self, node: &str, kind: &str, value: &str) {
        let mut n = self.get("v1", "nodes", "", node).expect("node exists");
        let conditions = n["status"]["conditions"].as_array_mut().unwrap();
        conditions.retain(|c| c["type"] != kind);
        conditions.push(objects::condition(kind, value));
        n["metadata"]["resourceVersion"] = Value::Null;
        self.put(n);
    }

    /// The next `n` requests `verb` on `resource` (optionally one object) fail with `code`
    /// (409 Conflict, 429 with Retry-After, 500…).
    pub fn fail_next(&self, verb: &str, resource: &str, name: &str, n: u32, code: u16) {
        self.shared.faults.lock().unwrap().push(Fault {
            verb: verb.into(),
            resource: resource.into(),
            name: name.into(),
            remaining: n,
            code,
            retry_after: (code == 429).then_some(1),
        });
    }

    pub fn set_rollout(&self, mode: Rollout) {
        *self.shared.rollout.lock().unwrap() = mode;
    }

    pub fn set_bookmark_every(&self, every: Duration) {
        *self.shared.bookmark_every.lock().unwrap() = every;
    }

    /// Closes every watch started from now on after `d`.
    pub fn set_max_watch(&self, d: Duration) {
        *self.shared.max_watch.lock().unwrap() = Some(d);
    }

    /// Closes every open watch and refuses new ones (503) until [`Self::restore_watches`].
    pub fn cut_watches(&self) {
        self.shared
            .watches_refused
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.shared.watch_epoch.send_modify(|e| *e += 1);
    }

    pub fn restore_watches(&self) {
        self.shared
            .watches_refused
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn bookmarks_sent(&self) -> usize {
        self.shared
            .bookmarks_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets the watch history: resuming from an older resourceVersion gets 410.
    pub fn compact(&self) {
        self.shared.store.lock().unwrap().compact();
    }

    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Requests with this verb whose path ends with `suffix`.
    pub fn requests_to(&self, verb: &str, suffix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.verb == verb && r.path.ends_with(suffix))
            .collect()
    }

    /// Every write the server applied, in order.
    pub fn writes(&self) -> Vec<Written> {
        self.shared.writes.lock().unwrap().clone()
    }

    /// Who held the Lease `namespace/name` after each write to it: (when, holderIdentity).
    pub fn lease_history(
        &self,
        namespace: &str,
        name: &str,
    ) -> Vec<(jiff::Timestamp, Option<String>)> {
        self.writes()
            .into_iter()
            .filter(|w| w.resource == "leases" && w.namespace == namespace && w.name == name)
            .map(|w| {
                let holder = w.object["spec"]["holderIdentity"]
                    .as_str()
                    .filter(|h| !h.is_empty())
                    .map(str::to_owned);
                (w.at, holder)
            })
            .collect()
    }

    pub fn clear_requests(&self) {
        self.shared.requests.lock().unwrap().clear();
    }

    /// Every (verb, resource) served.
    pub fn used(&self) -> BTreeSet<Permission> {
        self.shared.used.lock().unwrap().clone()
    }

    /// Every (verb, resource) refused by RBAC.
    pub fn denied(&self) -> BTreeSet<Permission> {
        self.shared.denied.lock().unwrap().clone()
    }

    pub fn granted(&self) -> BTreeSet<Permission> {
        self.shared.rbac.lock().unwrap().granted()
    }

    /// The Event with this reason in `namespace`, checked: on `kind`/`name`, of type `ty`,
    /// reported by astreinte.
    pub fn assert_event(
        &self,
        namespace: &str,
        reason: &str,
        kind: &str,
        name: &str,
        ty: &str,
    ) -> Value {
        let events = self.events(namespace);
        let e = events
            .iter()
            .find(|e| e["reason"] == reason)
            .unwrap_or_else(|| panic!("no {reason} event in {events:#?}"))
            .clone();
        assert_eq!(e["involvedObject"]["kind"], kind);
        assert_eq!(e["involvedObject"]["name"], name);
        assert_eq!(e["involvedObject"]["namespace"], namespace);
        assert_eq!(e["type"], ty);
        assert_eq!(e["reportingComponent"], "astreinte");
        assert_eq!(e["source"]["component"], "astreinte");
        e
    }

    /// Events recorded in a namespace.
    pub fn events(&self, namespace: &str) -> Vec<Value> {
        self.shared
            .store
            .lock()
            .unwrap()
            .list("v1", "events", Some(namespace))
    }
}

fn key_of(object: &Value) -> Key {
    let api_version = object["apiVersion"].as_str().unwrap_or("v1");
    let kind = object["kind"].as_str().unwrap_or_default();
    let resource = match kind {
        "Node" => "nodes",
        "Pod" => "pods",
        "ConfigMap" => "configmaps",
        "Event" => "events",
        "Namespace" => "namespaces",
        "Deployment" => "deployments",
        "Ingress" => "ingresses",
        "Lease" => "leases",
        other => panic!("unknown kind {other}"),
    };
    let m = &object["metadata"];
    Key::new(
        api_version,
        resource,
        m["namespace"].as_str().unwrap_or(""),
        m["name"].as_str().unwrap_or_default(),
    )
}

/// Writes a kubeconfig for the server at `url` (this server, or a proxy in front of it).
pub fn write_kubeconfig(path: &Path, url: &str) {
    std::fs::write(path, kubeconfig_yaml(url)).unwrap();
}

fn kubeconfig_yaml(url: &str) -> String {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "fake", "cluster": { "server": url } }],
        "users": [{ "name": "fake", "user": {} }],
        "contexts": [{ "name": "fake", "context": { "cluster": "fake", "user": "fake", "namespace": "default" } }],
        "current-context": "fake",
    })
    .to_string()
}
