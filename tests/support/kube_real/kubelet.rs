//! A kubelet stand-in, one tokio task per test, scoped to the test's namespace: it binds each
//! Pending pod to the test's Node (`pods/NAME/binding`), reports it Running with Ready=False,
//! then Ready=True after `ready_after` (strategic-merge patches of `pods/NAME/status`:
//! PodScheduled, Initialized, ContainersReady, Ready), and finishes the deletion of a
//! terminating pod (grace period 0) after `delete_after`. So a rollout has the real
//! intermediate states: old ReplicaSet pods still present while new ones become ready.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

/// How the stand-in plays the pods' lives.
#[derive(Debug, Clone, Copy)]
pub struct KubeletConfig {
    /// From Running (Ready=False) to Ready=True; `None`: never ready.
    pub ready_after: Option<Duration>,
    /// From the deletion request to the pod gone.
    pub delete_after: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            ready_after: Some(Duration::from_millis(500)),
            delete_after: Duration::from_millis(500),
        }
    }
}

/// The running stand-in; stops when dropped.
pub struct Kubelet {
    task: tokio::task::JoinHandle<()>,
    config: Arc<Mutex<KubeletConfig>>,
}

impl Kubelet {
    /// How the pods seen from now on are played.
    pub fn set(&self, config: KubeletConfig) {
        *self.config.lock().unwrap() = config;
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Default)]
struct Seen {
    bound: HashSet<String>,
    running: HashSet<String>,
    deleting: HashSet<String>,
}

struct Ctx {
    pods: Api<Pod>,
    node: String,
    config: Arc<Mutex<KubeletConfig>>,
    seen: Mutex<Seen>,
}

/// Starts the stand-in for the pods of `namespace`, binding them to `node`.
pub fn start(client: kube::Client, namespace: &str, node: &str, config: KubeletConfig) -> Kubelet {
    let config = Arc::new(Mutex::new(config));
    let ctx = Arc::new(Ctx {
        pods: Api::namespaced(client, namespace),
        node: node.to_owned(),
        config: config.clone(),
        seen: Mutex::default(),
    });
    let task = tokio::spawn(async move {
        let stream = watcher(ctx.pods.clone(), watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Some(pod) = stream.next().await {
            match pod {
                Ok(pod) => step(&ctx, &pod).await,
                Err(e) => eprintln!("kubelet stand-in: watch: {e}"),
            }
        }
    });
    Kubelet { task, config }
}

/// Marks `uid` in one of the sets; false when it was there already.
fn first(ctx: &Ctx, uid: &str, set: fn(&mut Seen) -> &mut HashSet<String>) -> bool {
    ctx.seen
        .lock()
        .map(|mut s| set(&mut s).insert(uid.to_owned()))
        .unwrap_or(false)
}

fn forget(ctx: &Ctx, uid: &str, set: fn(&mut Seen) -> &mut HashSet<String>) {
    if let Ok(mut s) = ctx.seen.lock() {
        set(&mut s).remove(uid);
    }
}

fn config(ctx: &Ctx) -> KubeletConfig {
    ctx.config
        .lock()
        .map(|c| *c)
        .unwrap_or_else(|_| KubeletConfig::default())
}

async fn step(ctx: &Arc<Ctx>, pod: &Pod) {
    let (Some(name), Some(uid)) = (pod.metadata.name.clone(), pod.metadata.uid.clone()) else {
        return;
    };
    if pod.metadata.deletion_timestamp.is_some() {
        if first(ctx, &uid, |s| &mut s.deleting) {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                // The simulated shutdown time itself, not a synchronisation.
                tokio::time::sleep(config(&ctx).delete_after).await;
                let params = DeleteParams {
                    grace_period_seconds: Some(0),
                    preconditions: Some(Preconditions {
                        uid: Some(uid),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                if let Err(e) = ctx.pods.delete(&name, &params).await {
                    eprintln!("kubelet stand-in: delete {name}: {e}");
                }
            });
        }
        return;
    }
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.node_name.as_ref()).is_none() {
        if first(ctx, &uid, |s| &mut s.bound) {
            let binding = json!({
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": { "name": name },
                "target": { "apiVersion": "v1", "kind": "Node", "name": ctx.node },
            });
            let bound: Result<Value, _> = ctx
                .pods
                .create_subresource("binding", &name, &PostParams::default(), &binding)
                .await;
            if let Err(e) = bound {
                eprintln!("kubelet stand-in: bind {name}: {e}");
                forget(ctx, &uid, |s| &mut s.bound);
            }
        }
        return;
    }
    if !first(ctx, &uid, |s| &mut s.running) {
        return;
    }
    let containers: Vec<String> = spec
        .map(|s| s.containers.iter().map(|c| c.name.clone()).collect())
        .unwrap_or_default();
    if let Err(e) = set_status(ctx, &name, &containers, false).await {
        eprintln!("kubelet stand-in: status of {name}: {e}");
        forget(ctx, &uid, |s| &mut s.running);
        return;
    }
    if let Some(after) = config(ctx).ready_after {
        let ctx = ctx.clone();
        tokio::spawn(async move {
            // The simulated readiness delay itself, not a synchronisation.
            tokio::time::sleep(after).await;
            if let Err(e) = set_status(&ctx, &name, &containers, true).await {
                eprintln!("kubelet stand-in: ready {name}: {e}");
            }
        });
    }
}

/// Phase Running, every container running, ready or not.
async fn set_status(
    ctx: &Ctx,
    name: &str,
    containers: &[String],
    ready: bool,
) -> Result<(), kube::Error> {
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let flag = if ready { "True" } else { "False" };
    let condition = |kind: &str, status: &str| json!({ "type": kind, "status": status, "lastTransitionTime": now, "lastProbeTime": null });
    let statuses: Vec<Value> = containers
        .iter()
        .map(|c| {
            json!({
                "name": c, "ready": ready, "started": true, "restartCount": 0,
                "image": "registry.invalid/stand-in:1", "imageID": "",
                "state": { "running": { "startedAt": now } },
            })
        })
        .collect();
    let patch = json!({ "status": {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "startTime": now,
        "conditions": [
            condition("PodScheduled", "True"),
            condition("Initialized", "True"),
            condition("ContainersReady", flag),
            condition("Ready", flag),
        ],
        "containerStatuses": statuses,
    } });
    ctx.pods
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .map(|_| ())
}
