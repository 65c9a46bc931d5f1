//! The Kubernetes actuators and probes against a real control plane (kube-apiserver and
//! kube-controller-manager v1.26.4 with etcd, tests/support/kube_real), one plane shared by
//! every test of this binary, each test in its own namespace: rollouts whose pods a kubelet
//! stand-in walks through Pending → Running → Ready, the shipped RBAC of
//! `deploy/base/rbac.yaml` through a ServiceAccount token, the other actuators on real
//! objects, their rehearsal (`dryRun=All`) and their undo, the node and workload probes, leader election on a real Lease, the journal's
//! compare-and-swap on a real ConfigMap, and the daemon binary itself, and two replicas of it through the runbook's whole chain and
//! its undo.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "kube_real/actuators.rs"]
mod actuators;
#[path = "kube_real/common.rs"]
mod common;
#[path = "kube_real/daemon.rs"]
mod daemon;
#[path = "kube_real/nodes.rs"]
mod nodes;
#[path = "kube_real/rbac.rs"]
mod rbac;
#[path = "kube_real/rehearsal.rs"]
mod rehearsal;
#[path = "kube_real/replicas.rs"]
mod replicas;
#[path = "kube_real/rollout.rs"]
mod rollout;
#[path = "kube_real/state.rs"]
mod state;
#[path = "kube_real/undo.rs"]
mod undo;
#[path = "kube_real/workload.rs"]
mod workload;
