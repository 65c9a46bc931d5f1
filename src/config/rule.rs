//! `remediations.toml`: the global policy and the `[[rule]]` entries (trigger, action, gates).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::SecretRef;
use crate::level::Level;

/// Whether a rule (or the whole daemon) acts: `off`, `dry-run` (say what would be done) or
/// `enforce`. The shipped default is `dry-run`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Off,
    #[default]
    DryRun,
    Enforce,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    #[serde(default)]
    pub mode: Mode,
    /// Time zone of rule windows (IANA name); default UTC.
    #[serde(default)]
    pub timezone: Option<String>,
    /// Cap on actions across all rules.
    #[serde(default)]
    pub global_budget: Option<Budget>,
    /// Cap on actions on one object (whatever the rule).
    #[serde(default)]
    pub target_budget: Option<Budget>,
    #[serde(default)]
    pub partition_guard: Option<PartitionGuard>,
    /// Objects rules may touch, as `namespace/kind/name` patterns (`*` matches a segment).
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    pub max: u32,
    #[serde(with = "humantime_serde")]
    pub per: Duration,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionGuard {
    /// Hold every action when at least this share of targets fails at once…
    pub max_failing_ratio: f64,
    /// …and at least this many targets are watched.
    #[serde(default = "default_min_targets")]
    pub min_targets: usize,
}

fn default_min_targets() -> usize {
    4
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub id: String,
    pub trigger: Trigger,
    pub action: ActionSpec,
    /// Per-rule mode; the stricter of this and the global mode applies.
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub windows: Vec<Window>,
    #[serde(default)]
    pub budget: Option<Budget>,
    #[serde(default, with = "humantime_serde::option")]
    pub cooldown: Option<Duration>,
    #[serde(default)]
    pub verify: Option<Verify>,
    /// How long the action itself may take (a rollout included); default 5 minutes.
    #[serde(default, with = "humantime_serde::option")]
    pub deadline: Option<Duration>,
    /// The next rule to try when verification fails, or `page`.
    #[serde(default)]
    pub escalate: Option<String>,
    #[serde(default)]
    pub undo_on_resolve: bool,
    /// Probes this rule's target depends on; while one fails the rule holds (`dependency_down`).
    #[serde(default)]
    pub depends_on: Vec<String>,
}

impl RuleConfig {
    pub fn deadline(&self) -> Duration {
        self.deadline.unwrap_or(Duration::from_secs(300))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    #[serde(default)]
    pub probe: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    pub min_level: Level,
    /// The level must have held this long.
    #[serde(default, rename = "for", with = "humantime_serde::option")]
    pub for_: Option<Duration>,
    /// Only these reason codes trigger the rule (empty: any).
    #[serde(default)]
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// `HH:MM`; a window may wrap midnight (`22:00`–`07:00`).
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verify {
    pub probe: String,
    #[serde(with = "humantime_serde")]
    pub within: Duration,
}

/// What a rule does (DESIGN.md §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ActionSpec {
    RolloutRestart {
        namespace: String,
        deployment: String,
    },
    Scale {
        namespace: String,
        deployment: String,
        replicas: i32,
        max_replicas: i32,
    },
    ConfigmapPatch {
        namespace: String,
        name: String,
        data: BTreeMap<String, String>,
    },
    IngressBackend {
        namespace: String,
        ingress: String,
        service: String,
        #[serde(default)]
        port: Option<i32>,
    },
    IngressAnnotations {
        namespace: String,
        ingress: String,
        annotations: BTreeMap<String, String>,
    },
    Resources {
        namespace: String,
        deployment: String,
        container: String,
        #[serde(default)]
        cpu_limit: Option<String>,
        #[serde(default)]
        memory_limit: Option<String>,
        /// Ceilings the new limits must stay under (refused above).
        #[serde(default)]
        max_cpu_limit: Option<String>,
        #[serde(default)]
        max_memory_limit: Option<String>,
    },
    DeletePod {
        namespace: String,
        selector: String,
    },
    PatroniFailover {
        probe: String,
    },
    PatroniReinitialize {
        probe: String,
    },
    Http {
        method: String,
        url: String,
        #[serde(default)]
        body: Option<String>,
        #[serde(default)]
        token: Option<SecretRef>,
    },
    Page {
        #[serde(default)]
        message: Option<String>,
    },
}

impl ActionSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ActionSpec::RolloutRestart { .. } => "rollout_restart",
            ActionSpec::Scale { .. } => "scale",
            ActionSpec::ConfigmapPatch { .. } => "configmap_patch",
            ActionSpec::IngressBackend { .. } => "ingress_backend",
            ActionSpec::IngressAnnotations { .. } => "ingress_annotations",
            ActionSpec::Resources { .. } => "resources",
            ActionSpec::DeletePod { .. } => "delete_pod",
            ActionSpec::PatroniFailover { .. } => "patroni_failover",
            ActionSpec::PatroniReinitialize { .. } => "patroni_reinitialize",
            ActionSpec::Http { .. } => "http",
            ActionSpec::Page { .. } => "page",
        }
    }

    /// The Kubernetes object it touches, as `namespace/kind/name` (for `policy.allow`).
    pub fn object(&self) -> Option<String> {
        match self {
            ActionSpec::RolloutRestart {
                namespace,
                deployment,
            }
            | ActionSpec::Scale {
                namespace,
                deployment,
                ..
            }
            | ActionSpec::Resources {
                namespace,
                deployment,
                ..
            } => Some(format!("{namespace}/deployment/{deployment}")),
            ActionSpec::ConfigmapPatch {
                namespace, name, ..
            } => Some(format!("{namespace}/configmap/{name}")),
            ActionSpec::IngressBackend {
                namespace, ingress, ..
            }
            | ActionSpec::IngressAnnotations {
                namespace, ingress, ..
            } => Some(format!("{namespace}/ingress/{ingress}")),
            ActionSpec::DeletePod { namespace, .. } => Some(format!("{namespace}/pod/*")),
            _ => None,
        }
    }

    /// Probe ids the action names (checked by `validate()`).
    pub fn referenced_probe(&self) -> Option<&str> {
        match self {
            ActionSpec::PatroniFailover { probe } | ActionSpec::PatroniReinitialize { probe } => {
                Some(probe)
            }
            _ => None,
        }
    }
}
