//! Kubeconfig files for the real plane (the daemon's `[kubernetes] kubeconfig = …` reads
//! one): the server on 127.0.0.1, the plane's CA by path, and a bearer token (the admin's
//! static token, or a ServiceAccount token from TokenRequest).

use std::path::Path;

use serde_json::json;

/// Writes a kubeconfig for `server` (`https://127.0.0.1:PORT`) authenticating with `token`,
/// default namespace `namespace`.
pub fn write(
    path: &Path,
    server: &str,
    ca: &Path,
    user: &str,
    token: &str,
    namespace: &str,
) -> Result<(), String> {
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "astreinte-test", "cluster": {
            "server": server,
            "certificate-authority": ca,
        } }],
        "users": [{ "name": user, "user": { "token": token } }],
        "contexts": [{ "name": "test", "context": {
            "cluster": "astreinte-test", "user": user, "namespace": namespace,
        } }],
        "current-context": "test",
    });
    std::fs::write(path, doc.to_string()).map_err(|e| format!("write {}: {e}", path.display()))
}

/// A client built the way the daemon builds it, from a kubeconfig file.
pub async fn client(path: &Path) -> kube::Client {
    astreinte::app::install_crypto();
    astreinte::clients::kube::connect(Some(path))
        .await
        .unwrap_or_else(|e| panic!("kube client from {}: {e}", path.display()))
        .unwrap_or_else(|| panic!("{} names no cluster", path.display()))
}
