//! The `[kubernetes]` section of `probes.toml`: how to reach the cluster and the names of the
//! daemon's own objects there (leader Lease, journal ConfigMap, policy ConfigMap).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubeSettings {
    /// A kubeconfig file; default: `KUBECONFIG`, else the in-cluster service account, else
    /// no cluster (Kubernetes probes say `Unknown: no_cluster`).
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// Namespace of the daemon's own objects.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub lease: LeaseSettings,
    /// ConfigMap holding the journal (key `journal.json`); default: a local file.
    #[serde(default)]
    pub journal_configmap: Option<String>,
    /// ConfigMap holding `probes.toml` and `remediations.toml`, watched for live changes.
    #[serde(default)]
    pub policy_configmap: Option<String>,
}

impl Default for KubeSettings {
    fn default() -> Self {
        KubeSettings {
            kubeconfig: None,
            namespace: default_namespace(),
            lease: LeaseSettings::default(),
            journal_configmap: None,
            policy_configmap: None,
        }
    }
}

fn default_namespace() -> String {
    "astreinte".into()
}

/// Leader election through a `coordination.k8s.io/v1` Lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaseSettings {
    #[serde(default = "default_lease_name")]
    pub name: String,
    /// How long a holder that stopped renewing keeps the Lease.
    #[serde(default = "default_lease_duration", with = "humantime_serde")]
    pub duration: Duration,
    /// How often the holder renews (well under `duration`).
    #[serde(default = "default_renew", with = "humantime_serde")]
    pub renew: Duration,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        LeaseSettings {
            name: default_lease_name(),
            duration: default_lease_duration(),
            renew: default_renew(),
        }
    }
}

fn default_lease_name() -> String {
    "astreinte-leader".into()
}

fn default_lease_duration() -> Duration {
    Duration::from_secs(15)
}

fn default_renew() -> Duration {
    Duration::from_secs(5)
}
