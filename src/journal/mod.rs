//! The journal: actions taken (rule, target, start, end, result), open incidents and budgets,
//! persisted through a [`Store`] so that a restart or a new leader does not reset them.

mod kube_store;
mod store;

pub use kube_store::KubeStore;

pub use store::{Snapshot, Store, StoreError};
