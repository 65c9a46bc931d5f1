//! Where the journal is persisted: a small trait with a compare-and-swap save, implemented by
//! a local file (write a temp file, fsync, rename) and by a Kubernetes object.

use std::future::Future;

/// The stored bytes and the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub data: String,
    /// Opaque: a resourceVersion in Kubernetes, a counter for a file.
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else wrote since `expected` was read: re-read, merge, retry.
    #[error("the journal changed since it was read (expected version {expected})")]
    Conflict { expected: String },
    /// The store refused for good (RBAC denial, a read-only file system…): no action may run.
    #[error("journal store refused: {0}")]
    Denied(String),
    /// Worth retrying (I/O hiccup, apiserver 5xx or 429).
    #[error("journal store unavailable: {0}")]
    Unavailable(String),
    #[error("journal data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Conflict { .. }
        )
    }
}

/// A journal store. `save` is a compare-and-swap: it fails with [`StoreError::Conflict`] unless
/// the stored version is still `expected` (`None`: nothing stored yet).
pub trait Store: Send + Sync {
    fn load(&self) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send;
    fn save(
        &self,
        data: &str,
        expected: Option<&str>,
    ) -> impl Future<Output = Result<String, StoreError>> + Send;
}
