//! A real Kubernetes control plane for the tests: etcd, kube-apiserver and
//! kube-controller-manager v1.26.4 on free 127.0.0.1 ports with their own PKI, one per test
//! binary (started on first use, shared, killed by a watchdog when the binary exits), and
//! per test: its own namespace, Node, kubelet stand-in, admin client and, on request, the
//! daemon's ServiceAccount with the shipped RBAC. No kubelet and no scheduler run: the
//! stand-in binds and plays the pods of the test's namespace.
#![allow(dead_code)]

pub mod bins;
pub mod kubeconfig;
pub mod kubelet;
pub mod nodes;
pub mod objects;
pub mod pki;
pub mod plane;
pub mod rbac;
pub mod watchdog;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, PostParams};
use serde_json::json;

pub use kubelet::KubeletConfig;
pub use plane::Plane;

/// One test's share of the plane.
pub struct KubeTest {
    pub plane: &'static Plane,
    /// The test's own namespace.
    pub ns: String,
    /// The Node the stand-in binds this test's pods to.
    pub node: String,
    /// A client as the admin (`system:masters`).
    pub admin: kube::Client,
    dir: tempfile::TempDir,
    kubelet: kubelet::Kubelet,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl KubeTest {
    /// A namespace named after `test`, with a Ready Node and the default kubelet stand-in.
    pub async fn new(test: &str) -> KubeTest {
        Self::with_kubelet(test, KubeletConfig::default()).await
    }

    pub async fn with_kubelet(test: &str, config: KubeletConfig) -> KubeTest {
        let plane = plane::get().await;
        let mut base: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        base.truncate(50);
        let ns = format!(
            "{}-{}",
            base.trim_matches('-'),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let admin = kubeconfig::client(&plane.admin_kubeconfig).await;
        let namespaces: Api<Namespace> = Api::all(admin.clone());
        let object: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap();
        namespaces
            .create(&PostParams::default(), &object)
            .await
            .unwrap_or_else(|e| panic!("create namespace {ns}: {e}"));
        // Pods are refused until the serviceaccount controller made `default` here.
        let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns);
        crate::support::wait_for(
            &format!("ServiceAccount {ns}/default"),
            Duration::from_secs(30),
            || async { sas.get_opt("default").await.ok().flatten() },
        )
        .await;
        let node = format!("{ns}-node");
        nodes::create(&admin, &node, &ns, &[]).await;
        let kubelet = kubelet::start(admin.clone(), &ns, &node, config);
        let dir = tempfile::tempdir().unwrap();
        KubeTest {
            plane,
            ns,
            node,
            admin,
            dir,
            kubelet,
        }
    }

    /// How the kubelet stand-in plays the pods it sees from now on.
    pub fn set_kubelet(&self, config: KubeletConfig) {
        self.kubelet.set(config);
    }

    pub fn admin_kubeconfig(&self) -> &Path {
        &self.plane.admin_kubeconfig
    }

    /// A kubeconfig (written in the test's own directory) for the `astreinte` ServiceAccount
    /// of this namespace, bound to the RBAC of `deploy/base/rbac.yaml`.
    pub async fn service_account_kubeconfig(&self) -> PathBuf {
        let token = rbac::service_account_token(&self.admin, &self.ns).await;
        let path = self.dir.path().join("astreinte.kubeconfig");
        kubeconfig::write(
            &path,
            &self.plane.server,
            &self.plane.pki.ca_crt,
            "astreinte",
            &token,
            &self.ns,
        )
        .unwrap();
        path
    }

    /// A kubeconfig for a new ServiceAccount `name` of this namespace that nothing is bound to.
    pub async fn unbound_kubeconfig(&self, name: &str) -> PathBuf {
        let sa: ServiceAccount =
            serde_json::from_value(json!({ "metadata": { "name": name } })).unwrap();
        Api::<ServiceAccount>::namespaced(self.admin.clone(), &self.ns)
            .create(&PostParams::default(), &sa)
            .await
            .unwrap_or_else(|e| panic!("create ServiceAccount {}/{name}: {e}", self.ns));
        let token = rbac::token(&self.admin, &self.ns, name).await;
        let path = self.dir.path().join(format!("{name}.kubeconfig"));
        kubeconfig::write(
            &path,
            &self.plane.server,
            &self.plane.pki.ca_crt,
            name,
            &token,
            &self.ns,
        )
        .unwrap();
        path
    }

    /// A client as the daemon would be in this namespace, built from that kubeconfig.
    pub async fn service_account_client(&self) -> kube::Client {
        kubeconfig::client(&self.service_account_kubeconfig().await).await
    }
}
