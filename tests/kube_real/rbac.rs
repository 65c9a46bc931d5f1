//! The shipped RBAC (`deploy/base/rbac.yaml`) on a real apiserver, through a ServiceAccount
//! token from TokenRequest: what the actions need is allowed, the rest is `forbidden: …`.

use std::collections::BTreeMap;

use astreinte::actuators::kube::{self as act, Error};
use astreinte::clients::kube::{Error as KubeError, Op};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams};
use serde_json::json;

use crate::common::{deadline, event_reasons};
use crate::support::kube_real::{KubeTest, objects};

/// The shipped RBAC through a ServiceAccount token: restart, scale and ConfigMap patch are
/// allowed; a verb it does not grant, or a namespace it is not bound in, gets astreinte's
/// `forbidden: …` naming the verb and resource.
#[tokio::test]
async fn the_shipped_rbac_allows_the_actions_and_nothing_else() {
    let t = KubeTest::new("shipped-rbac").await;
    let ns = t.ns.as_str();
    objects::deployment(&t.admin, ns, "web", 2).await;
    objects::configmap(&t.admin, ns, "flags", json!({ "READ_ONLY_MODE": "false" })).await;
    let sa = t.service_account_client().await;

    act::rollout_restart(&sa, ns, "web", deadline(60))
        .await
        .unwrap();
    let out = act::scale(&sa, ns, "web", 3, 5, deadline(10))
        .await
        .unwrap();
    assert_eq!(out.previous, Some(json!({ "replicas": 2, "@applied": 3 })));
    let d = Api::<Deployment>::namespaced(t.admin.clone(), ns)
        .get("web")
        .await
        .unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    let data = BTreeMap::from([("READ_ONLY_MODE".to_owned(), Some("true".to_owned()))]);
    act::patch_configmap(&sa, ns, "flags", &data, deadline(10))
        .await
        .unwrap();
    let cm = Api::<ConfigMap>::namespaced(t.admin.clone(), ns)
        .get("flags")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["READ_ONLY_MODE"], "true");
    let reasons = event_reasons(&t.admin, ns).await;
    for r in ["AstreinteRolloutRestart", "AstreinteScale"] {
        assert!(reasons.contains(&r.to_owned()), "{r} not in {reasons:?}");
    }

    // A verb the Role does not grant: the real 403, classified by astreinte.
    let op = Op::new("delete", "deployments.apps", ns, "web");
    let err = Api::<Deployment>::namespaced(sa.clone(), ns)
        .delete("web", &DeleteParams::default())
        .await
        .unwrap_err();
    let err = KubeError::from_kube(err, &op);
    assert_eq!(
        err.to_string(),
        format!(
            "forbidden: the service account may not delete deployments.apps in namespace {ns} \
             (grant it in the Role of deploy/base/rbac.yaml)"
        )
    );

    // A namespace the ServiceAccount is not bound in: the actuator itself is refused.
    let other = KubeTest::new("shipped-rbac-other").await;
    objects::deployment(&t.admin, &other.ns, "web", 1).await;
    let err = act::scale(&sa, &other.ns, "web", 2, 5, deadline(10))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Kube(KubeError::Forbidden { .. })),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "forbidden: the service account may not get deployments.apps/scale in namespace {}",
            other.ns
        )),
        "{err}"
    );
}
