//! Undo on real objects (issue 14, items 2 and 3): it puts back exactly what the action
//! replaced (every ingress path its own service and port), records its own Event reason,
//! and leaves an object a person changed after the action as it is, saying why.

use std::collections::BTreeMap;

use astreinte::actuators::kube::{self as act, Error};
use astreinte::config::ActionSpec;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{deadline, event_reasons};
use crate::support::kube_real::{KubeTest, objects};

fn action(toml: &str) -> ActionSpec {
    toml::from_str(toml).unwrap()
}

/// An ingress with several backends: `/` → rag-api:8000, `/docs` → rag-docs:8080, and a
/// default backend rag-api:8000.
pub fn ingress(ns: &str) -> Ingress {
    serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": { "name": "rag", "namespace": ns },
        "spec": {
            "defaultBackend": { "service": { "name": "rag-api", "port": { "number": 8000 } } },
            "rules": [{ "host": "rag.example", "http": { "paths": [
                { "path": "/", "pathType": "Prefix",
                  "backend": { "service": { "name": "rag-api", "port": { "number": 8000 } } } },
                { "path": "/docs", "pathType": "Prefix",
                  "backend": { "service": { "name": "rag-docs", "port": { "number": 8080 } } } },
            ] } }],
        },
    }))
    .unwrap()
}

pub fn routes(ing: &Ingress) -> Vec<(String, String, i32)> {
    let spec = ing.spec.clone().unwrap();
    spec.rules
        .unwrap()
        .iter()
        .flat_map(|r| r.http.clone().unwrap().paths)
        .map(|p| {
            let b = p.backend.service.unwrap();
            (p.path.unwrap(), b.name, b.port.unwrap().number.unwrap())
        })
        .collect()
}

/// Before the fix, undo pointed every path at the first old service and kept the new port
/// (`/docs → rag-api:9000`).
#[tokio::test]
async fn ingress_undo_restores_every_path_its_own_backend() {
    let t = KubeTest::new("undo-ingress").await;
    let ns = t.ns.as_str();
    let ings: Api<Ingress> = Api::namespaced(t.admin.clone(), ns);
    ings.create(&PostParams::default(), &ingress(ns))
        .await
        .unwrap();
    let sa = t.service_account_client().await;
    let spec = action(&format!(
        "kind = \"ingress_backend\"\nnamespace = \"{ns}\"\ningress = \"rag\"\nservice = \"rag-backup-service\"\nport = 9000\n"
    ));
    let before = routes(&ings.get("rag").await.unwrap());
    let out = act::apply(&sa, &spec, deadline(10)).await.unwrap();
    assert!(
        routes(&ings.get("rag").await.unwrap())
            .iter()
            .all(|(_, s, p)| s == "rag-backup-service" && *p == 9000)
    );
    let undone = act::undo(&sa, &spec, &out.previous.unwrap(), deadline(10))
        .await
        .unwrap();
    let after = ings.get("rag").await.unwrap();
    assert_eq!(routes(&after), before, "{}", undone.detail);
    let default = after
        .spec
        .unwrap()
        .default_backend
        .unwrap()
        .service
        .unwrap();
    assert_eq!(
        (default.name.as_str(), default.port.unwrap().number),
        ("rag-api", Some(8000))
    );
    assert!(undone.detail.starts_with("undo: "), "{}", undone.detail);
    let reasons = event_reasons(&t.admin, &t.ns).await;
    assert!(
        reasons.iter().any(|r| r == "AstreinteUndoIngressBackend"),
        "{reasons:?}"
    );
}

/// A person changes the object after astreinte's action: the undo reads it, sees that it no
/// longer holds what astreinte set, and leaves it (before, it overwrote their change).
#[tokio::test]
async fn undo_never_overwrites_a_change_made_after_the_action() {
    let t = KubeTest::new("undo-changed").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "rag-api", 2).await;
    let sa = t.service_account_client().await;
    let scale = action(&format!(
        "kind = \"scale\"\nnamespace = \"{ns}\"\ndeployment = \"rag-api\"\nreplicas = 4\nmax_replicas = 6\n"
    ));
    let deployments: Api<Deployment> = Api::namespaced(t.admin.clone(), ns);
    let replicas = || async {
        deployments
            .get("rag-api")
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas
    };

    // Undone when nothing else changed it, with its own Event.
    let out = act::apply(&sa, &scale, deadline(10)).await.unwrap();
    assert_eq!(replicas().await, Some(4));
    act::undo(&sa, &scale, &out.previous.unwrap(), deadline(10))
        .await
        .unwrap();
    assert_eq!(replicas().await, Some(2));
    assert!(
        event_reasons(&t.admin, &t.ns)
            .await
            .iter()
            .any(|r| r == "AstreinteUndoScale")
    );

    // A person scales to 5 in between: left at 5.
    let out = act::apply(&sa, &scale, deadline(10)).await.unwrap();
    deployments
        .patch_scale(
            "rag-api",
            &PatchParams::default(),
            &Patch::Merge(json!({ "spec": { "replicas": 5 } })),
        )
        .await
        .unwrap();
    let err = act::undo(&sa, &scale, &out.previous.unwrap(), deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChangedSince(_)), "{err}");
    assert!(
        err.to_string()
            .contains("changed since astreinte's action (now 5, astreinte set 4)"),
        "{err}"
    );
    assert_eq!(replicas().await, Some(5));

    // The same for a ConfigMap key someone set by hand.
    let cms: Api<ConfigMap> = Api::namespaced(t.admin.clone(), ns);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": { "name": "flags", "namespace": ns },
        "data": { "READ_ONLY_MODE": "false" },
    }))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let patch = action(&format!(
        "kind = \"configmap_patch\"\nnamespace = \"{ns}\"\nname = \"flags\"\ndata = {{ READ_ONLY_MODE = \"true\" }}\n"
    ));
    let out = act::apply(&sa, &patch, deadline(10)).await.unwrap();
    let by_hand = BTreeMap::from([("READ_ONLY_MODE", "maintenance")]);
    cms.patch(
        "flags",
        &PatchParams::default(),
        &Patch::Merge(json!({ "data": by_hand })),
    )
    .await
    .unwrap();
    let err = act::undo(&sa, &patch, &out.previous.unwrap(), deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ChangedSince(_)), "{err}");
    let data = cms.get("flags").await.unwrap().data.unwrap();
    assert_eq!(data["READ_ONLY_MODE"], "maintenance");
}
