//! A journal kept in memory: for `astreinte simulate`, where nothing may be written.

use std::sync::Mutex;

use super::store::{Snapshot, Store, StoreError};

#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Option<Snapshot>>,
    writes: Mutex<u64>,
}

impl Store for MemoryStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn save(&self, data: &str, expected: Option<&str>) -> Result<String, StoreError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.as_ref().map(|s| s.version.as_str()) != expected {
            return Err(StoreError::Conflict {
                expected: expected.unwrap_or("none").to_owned(),
            });
        }
        let mut writes = self.writes.lock().unwrap_or_else(|e| e.into_inner());
        *writes += 1;
        let version = writes.to_string();
        *inner = Some(Snapshot {
            data: data.to_owned(),
            version: version.clone(),
        });
        Ok(version)
    }
}
