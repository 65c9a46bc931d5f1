//! Two replicas of the daemon binary on the real plane (issue 14, "prove the two-replica
//! behaviour end to end"): one Lease, one journal ConfigMap, the shipped RBAC through the
//! ServiceAccount, the runbook's whole chain on one failing service (rollout restart →
//! scale-up → degraded ConfigMap → ingress to the backup service → page), the leader killed
//! (`kill -9`) after the page, the other replica taking over, the service recovering, and the
//! undo of the three reversible actions by the new leader. Exactly one of each action, undo,
//! Event and notice; every undo journalled before it ran; every object back as it was.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

use crate::common::event_reasons;
use crate::support::http_target::HttpTarget;
use crate::support::kube_real::{KubeTest, objects};
use crate::support::replica::Replica;
use crate::support::wait_for;
use crate::support::webhook_sink::WebhookSink;
use crate::undo::{ingress, routes};

const WAIT: Duration = Duration::from_secs(60);

fn probes(kubeconfig: &std::path::Path, ns: &str, target: &HttpTarget) -> String {
    format!(
        "[kubernetes]\nkubeconfig = \"{}\"\nnamespace = \"{ns}\"\njournal_configmap = \"astreinte-journal\"\n\n\
         [kubernetes.lease]\nduration = \"3s\"\nrenew = \"500ms\"\n\n\
         [incidents]\ngreen_period = \"2s\"\n\n\
         [[probe]]\nid = \"rag-api-health\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"1s\"\ntimeout = \"500ms\"\ngroup = \"rag\"\n",
        kubeconfig.display(),
        target.url("/switchable")
    )
}

/// The runbook's chain: each rule past the first acts only when the one before escalates to
/// it (`for = "1h"`), and the last one pages.
fn rules(ns: &str, sink: &WebhookSink) -> String {
    format!(
        r#"[policy]
mode = "enforce"
allow = ["{ns}/*/*"]

[[rule]]
id = "api-restart"
trigger = {{ probe = "rag-api-health", min_level = "P2" }}
action = {{ kind = "rollout_restart", namespace = "{ns}", deployment = "rag-api" }}
budget = {{ max = 1, per = "1h" }}
verify = {{ probe = "rag-api-health", within = "2s" }}
deadline = "30s"
escalate = "api-scale-up"

[[rule]]
id = "api-scale-up"
trigger = {{ probe = "rag-api-health", min_level = "P2", for = "1h" }}
action = {{ kind = "scale", namespace = "{ns}", deployment = "rag-api", replicas = 5, max_replicas = 5 }}
budget = {{ max = 1, per = "1h" }}
verify = {{ probe = "rag-api-health", within = "2s" }}
escalate = "degraded-mode"
undo_on_resolve = true

[[rule]]
id = "degraded-mode"
trigger = {{ group = "rag", min_level = "P2", for = "1h" }}
action = {{ kind = "configmap_patch", namespace = "{ns}", name = "rag-config", data = {{ READ_ONLY_MODE = "true", DISABLE_ANALYTICS = "true" }} }}
budget = {{ max = 1, per = "1h" }}
verify = {{ probe = "rag-api-health", within = "2s" }}
escalate = "backup-ingress"
undo_on_resolve = true

[[rule]]
id = "backup-ingress"
trigger = {{ group = "rag", min_level = "P2", for = "1h" }}
action = {{ kind = "ingress_backend", namespace = "{ns}", ingress = "rag", service = "rag-backup-service", port = 9000 }}
budget = {{ max = 1, per = "1h" }}
verify = {{ probe = "rag-api-health", within = "2s" }}
escalate = "page"
undo_on_resolve = true

[[notify]]
name = "oncall"
kind = "webhook"
url = "{}"
min_level = "P4"
"#,
        sink.url("/ok/oncall")
    )
}

fn notices(sink: &WebhookSink) -> Vec<(String, String)> {
    sink.notices("/ok/oncall")
}

fn count<'a>(items: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut n = BTreeMap::new();
    for i in items {
        *n.entry(i).or_insert(0) += 1;
    }
    n
}

async fn journal(admin: &kube::Client, ns: &str) -> Option<Value> {
    let cm = Api::<ConfigMap>::namespaced(admin.clone(), ns)
        .get_opt("astreinte-journal")
        .await
        .ok()??;
    let data = cm.data?;
    serde_json::from_str(data.values().next()?).ok()
}

fn logs(replicas: &[Replica]) -> String {
    replicas
        .iter()
        .map(|r| format!("--- {} ---\n{}", r.identity, r.log_tail(60)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_the_chain_and_its_undo_once_across_a_leader_kill() {
    astreinte::app::install_crypto();
    let t = KubeTest::new("two-replicas").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 3).await;
    objects::configmap(
        &t.admin,
        ns,
        "rag-config",
        json!({ "READ_ONLY_MODE": "false" }),
    )
    .await;
    let ings: Api<Ingress> = Api::namespaced(t.admin.clone(), ns);
    ings.create(&PostParams::default(), &ingress(ns))
        .await
        .unwrap();
    let routes_before = routes(&ings.get("rag").await.unwrap());
    let target = HttpTarget::start().await;
    target.status.store(500, Ordering::SeqCst);
    let sink = WebhookSink::start(0).await;
    let kubeconfig = t.service_account_kubeconfig().await;
    let dir = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = ["astreinte-a", "astreinte-b"]
        .iter()
        .map(|who| {
            Replica::start(
                who,
                &dir.path().join(who),
                &probes(&kubeconfig, ns, &target),
                &rules(ns, &sink),
            )
        })
        .collect();

    // The whole chain runs, then the last rule pages.
    let paged = wait_for("the page at the end of the chain", WAIT, || async {
        notices(&sink)
            .into_iter()
            .find(|(e, _)| e == "paged")
            .map(|(_, id)| id)
    })
    .await;
    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), ns);
    let d = deployments.get("rag-api").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(5), "{}", logs(&replicas));
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), ns);
    let data = cms.get("rag-config").await.unwrap().data.unwrap();
    assert_eq!(data["READ_ONLY_MODE"], "true");
    assert!(
        routes(&ings.get("rag").await.unwrap())
            .iter()
            .all(|(_, s, p)| s == "rag-backup-service" && *p == 9000)
    );

    // The leader dies without a word; the other replica takes the Lease.
    let mut leader = None;
    for (i, r) in replicas.iter().enumerate() {
        if r.sample("astreinte_leader").await == Some(1.0) {
            leader = Some(i);
        }
    }
    let leader = leader.unwrap_or_else(|| panic!("no leader\n{}", logs(&replicas)));
    replicas[leader].proc.kill();
    let next = 1 - leader;
    wait_for("the other replica to lead", WAIT, || async {
        (replicas[next].sample("astreinte_leader").await == Some(1.0)).then_some(())
    })
    .await;

    // The service recovers: the new leader resolves the incident and undoes the three
    // reversible actions its predecessor took.
    target.status.store(200, Ordering::SeqCst);
    let stored = wait_for("three undos in the journal", WAIT, || async {
        let doc = journal(&t.admin, ns).await?;
        let ended = doc["actions"]
            .as_array()?
            .iter()
            .filter(|a| a["undo_run"]["result"]["state"] == "succeeded")
            .count();
        (ended == 3).then_some(doc)
    })
    .await;
    wait_for("a resolved notice", WAIT, || async {
        notices(&sink)
            .iter()
            .any(|(e, _)| e == "resolved")
            .then_some(())
    })
    .await;

    // Each action once, each undo once, by the replica that led when it ran.
    let actions = stored["actions"].as_array().unwrap();
    let by_rule = count(actions.iter().filter_map(|a| a["rule"].as_str()));
    assert_eq!(
        by_rule,
        BTreeMap::from([
            ("api-restart", 1),
            ("api-scale-up", 1),
            ("degraded-mode", 1),
            ("backup-ingress", 1)
        ]),
        "{stored:#}"
    );
    let killed = replicas[leader].identity.clone();
    let survivor = replicas[next].identity.clone();
    for a in actions {
        assert_eq!(a["by"], killed.as_str(), "{a:#}");
        assert_eq!(a["result"]["state"], "succeeded", "{a:#}");
        if a["rule"] == "api-restart" {
            assert!(a["undo_run"].is_null(), "a restart is not undone: {a:#}");
        } else {
            assert_eq!(a["undone"], true, "{a:#}");
            assert_eq!(a["undo_run"]["by"], survivor.as_str(), "{a:#}");
        }
    }

    // Exactly one Event per action and per undo, in the namespace of the objects.
    let reasons = event_reasons(&t.admin, ns).await;
    let astreinte: Vec<&str> = reasons
        .iter()
        .map(String::as_str)
        .filter(|r| r.starts_with("Astreinte"))
        .collect();
    assert_eq!(
        count(astreinte),
        BTreeMap::from([
            ("AstreinteConfigPatch", 1),
            ("AstreinteIngressBackend", 1),
            ("AstreinteRolloutRestart", 1),
            ("AstreinteScale", 1),
            ("AstreinteUndoConfigPatch", 1),
            ("AstreinteUndoIngressBackend", 1),
            ("AstreinteUndoScale", 1),
        ]),
        "{reasons:?}\n{}",
        logs(&replicas)
    );

    // One opened, one paged, one resolved notice, all of one incident.
    let got = notices(&sink);
    let kinds = count(got.iter().map(|(e, _)| e.as_str()));
    assert_eq!(kinds.get("opened"), Some(&1), "{got:?}");
    assert_eq!(kinds.get("paged"), Some(&1), "{got:?}");
    assert_eq!(kinds.get("resolved"), Some(&1), "{got:?}");
    assert!(got.iter().all(|(_, id)| *id == paged), "{got:?}");

    // Every object is back as it was.
    let d = deployments.get("rag-api").await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    let data = cms.get("rag-config").await.unwrap().data.unwrap();
    assert_eq!(
        data.get("READ_ONLY_MODE").map(String::as_str),
        Some("false")
    );
    assert!(!data.contains_key("DISABLE_ANALYTICS"), "{data:?}");
    assert_eq!(routes(&ings.get("rag").await.unwrap()), routes_before);

    // The survivor's timeline of the resolved incident has the three undos.
    let list: Value = reqwest::get(format!("{}/incidents", replicas[next].base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inc = list["recent"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == paged.as_str())
        .unwrap_or_else(|| panic!("{list:#}"));
    let undo_lines = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["text"].as_str().is_some_and(|t| t.starts_with("undo of")))
        .count();
    assert_eq!(undo_lines, 3, "{inc:#}");
}
