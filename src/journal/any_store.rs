//! The store chosen at start: a ConfigMap in a cluster, a local file otherwise (or memory for
//! `simulate`).

use super::{FileStore, KubeStore, MemoryStore, Snapshot, Store, StoreError};

pub enum AnyStore {
    File(FileStore),
    Kube(Box<KubeStore>),
    Memory(MemoryStore),
}

impl AnyStore {
    /// Where the journal lives, for the start-up log line.
    pub fn describe(&self) -> String {
        match self {
            AnyStore::File(f) => format!("file {}", f.path().display()),
            AnyStore::Kube(k) => format!("configmap {}", k.describe()),
            AnyStore::Memory(_) => "memory".into(),
        }
    }
}

impl Store for AnyStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        match self {
            AnyStore::File(s) => s.load().await,
            AnyStore::Kube(s) => s.load().await,
            AnyStore::Memory(s) => s.load().await,
        }
    }

    async fn save(&self, data: &str, expected: Option<&str>) -> Result<String, StoreError> {
        match self {
            AnyStore::File(s) => s.save(data, expected).await,
            AnyStore::Kube(s) => s.save(data, expected).await,
            AnyStore::Memory(s) => s.save(data, expected).await,
        }
    }
}
