//! RBAC of the fake API server: the Role and ClusterRole rules of `deploy/base/rbac.yaml`,
//! the real Forbidden message, and a record of every (verb, resource) served, so a test can
//! compare what is granted with what the code uses.

use std::collections::BTreeSet;

use serde_json::Value;

/// A (verb, resource) pair: `("patch", "deployments.apps/scale")`, `("list", "pods")`.
pub type Permission = (String, String);

#[derive(Debug, Clone)]
struct Rule {
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Rbac {
    rules: Vec<Rule>,
}

/// `deploy/base/rbac.yaml` as written in the repository.
pub fn repo_rbac_yaml() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/base/rbac.yaml");
    std::fs::read_to_string(path).expect("deploy/base/rbac.yaml")
}

impl Rbac {
    /// The rules of every Role and ClusterRole in a multi-document YAML file.
    pub fn from_yaml(yaml: &str) -> Self {
        let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("valid RBAC YAML");
        let strings = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        let rules = docs
            .iter()
            .filter(|d| matches!(d["kind"].as_str(), Some("Role" | "ClusterRole")))
            .flat_map(|d| d["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| Rule {
                groups: strings(&r["apiGroups"]),
                resources: strings(&r["resources"]),
                verbs: strings(&r["verbs"]),
            })
            .collect();
        Rbac { rules }
    }

    /// Removes one verb on one resource (`"deployments"`, `"apps"`), for denial tests.
    pub fn without(mut self, verb: &str, group: &str, resource: &str) -> Self {
        for rule in &mut self.rules {
            if rule.groups.iter().any(|g| g == group)
                && rule.resources.iter().any(|r| r == resource)
            {
                rule.verbs.retain(|v| v != verb);
            }
        }
        self
    }

    pub fn allows(&self, verb: &str, group: &str, resource: &str) -> bool {
        self.rules.iter().any(|r| {
            r.verbs.iter().any(|v| v == verb || v == "*")
                && r.groups.iter().any(|g| g == group || g == "*")
                && r.resources.iter().any(|x| x == resource || x == "*")
        })
    }

    /// Every (verb, resource) the rules grant, resources written `deployments.apps/scale`.
    pub fn granted(&self) -> BTreeSet<Permission> {
        let mut out = BTreeSet::new();
        for r in &self.rules {
            for g in &r.groups {
                for res in &r.resources {
                    for v in &r.verbs {
                        out.insert((v.clone(), qualify(g, res)));
                    }
                }
            }
        }
        out
    }
}

/// `deployments/scale` in `apps` → `deployments.apps/scale`.
pub fn qualify(group: &str, resource: &str) -> String {
    let (base, sub) = match resource.split_once('/') {
        Some((b, s)) => (b, Some(s)),
        None => (resource, None),
    };
    let mut out = if group.is_empty() {
        base.to_owned()
    } else {
        format!("{base}.{group}")
    };
    if let Some(s) = sub {
        out.push('/');
        out.push_str(s);
    }
    out
}

/// The apiserver's Forbidden message for the service account `astreinte` in `sa_namespace`.
pub fn forbidden_message(
    sa_namespace: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: &str,
    name: &str,
) -> String {
    let base = resource.split('/').next().unwrap_or(resource);
    let object = qualify(group, base);
    let subject = if name.is_empty() {
        format!("{object} is forbidden")
    } else {
        format!("{object} \"{name}\" is forbidden")
    };
    let scope = if namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{namespace}\"")
    };
    format!(
        "{subject}: User \"system:serviceaccount:{sa_namespace}:astreinte\" cannot {verb} \
         resource \"{resource}\" in API group \"{group}\" {scope}"
    )
}
