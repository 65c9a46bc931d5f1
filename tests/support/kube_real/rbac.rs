//! The daemon's identity on the real plane: the `astreinte` ServiceAccount of
//! `deploy/base/rbac.yaml`, its Role applied in the test's namespace and its ClusterRole once,
//! bound per namespace (a RoleBinding, a ClusterRoleBinding named after the namespace), and a
//! token from TokenRequest. So the tests run with exactly the permissions that ship.

use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, PostParams};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The ServiceAccount the manifests name.
pub const SERVICE_ACCOUNT: &str = "astreinte";

fn docs() -> Vec<Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/base/rbac.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_multiple(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn typed<T: DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("deploy/base/rbac.yaml: {e}"))
}

/// Creates, tolerating AlreadyExists (the ClusterRole is shared by every test of the binary).
async fn create<K>(api: &Api<K>, object: &K)
where
    K: kube::Resource + Clone + DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("create {object:?}: {e}"),
    }
}

/// Applies `deploy/base/rbac.yaml` for `namespace` and returns a token of its ServiceAccount.
pub async fn service_account_token(admin: &kube::Client, namespace: &str) -> String {
    for mut doc in docs() {
        let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(subjects) = doc["subjects"].as_array_mut() {
            for s in subjects {
                s["namespace"] = json!(namespace);
            }
        }
        match kind.as_str() {
            "ServiceAccount" => {
                let api: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
                create(&api, &typed(doc)).await;
            }
            "Role" => {
                let api: Api<Role> = Api::namespaced(admin.clone(), namespace);
                create(&api, &typed(doc)).await;
            }
            "RoleBinding" => {
                let api: Api<RoleBinding> = Api::namespaced(admin.clone(), namespace);
                create(&api, &typed(doc)).await;
            }
            "ClusterRole" => create(&Api::<ClusterRole>::all(admin.clone()), &typed(doc)).await,
            "ClusterRoleBinding" => {
                doc["metadata"]["name"] = json!(format!("{name}-{namespace}"));
                create(&Api::<ClusterRoleBinding>::all(admin.clone()), &typed(doc)).await;
            }
            other => panic!("deploy/base/rbac.yaml: unexpected kind {other}"),
        }
    }
    token(admin, namespace, SERVICE_ACCOUNT).await
}

/// A token of ServiceAccount `namespace/name` from TokenRequest (one hour).
pub async fn token(admin: &kube::Client, namespace: &str, name: &str) -> String {
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), namespace);
    let request: TokenRequest = typed(json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": { "audiences": [], "expirationSeconds": 3600 },
    }));
    let answer: TokenRequest = sas
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
    answer
        .status
        .map(|s| s.token)
        .unwrap_or_else(|| panic!("TokenRequest for {namespace}/{name}: no token"))
}
