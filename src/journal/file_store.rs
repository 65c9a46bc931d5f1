//! The journal as a local file: written to a temp file, fsynced, renamed over the old one (and
//! the directory fsynced), so a crash or a full disk never leaves a half-written journal.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::store::{Snapshot, Store, StoreError};

#[derive(Debug, Clone)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The version of a file's content: its FNV-1a hash.
fn version_of(data: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn unavailable(what: &str, path: &Path, e: &std::io::Error) -> StoreError {
    let msg = format!("{what} {}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            StoreError::Denied(msg)
        }
        _ => StoreError::Unavailable(msg),
    }
}

fn read(path: &Path) -> Result<Option<Snapshot>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let data = String::from_utf8(bytes)
                .map_err(|_| StoreError::Corrupt(format!("{} is not UTF-8", path.display())))?;
            let version = version_of(&data);
            Ok(Some(Snapshot { data, version }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(unavailable("cannot read", path, &e)),
    }
}

fn write_atomically(path: &Path, data: &str) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| unavailable("cannot create", dir, &e))?;
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        unavailable("cannot write", path, &e)
    })
}

impl Store for FileStore {
    async fn load(&self) -> Result<Option<Snapshot>, StoreError> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || read(&path))
            .await
            .map_err(|e| StoreError::Unavailable(format!("journal read task: {e}")))?
    }

    async fn save(&self, data: &str, expected: Option<&str>) -> Result<String, StoreError> {
        let path = self.path.clone();
        let data = data.to_owned();
        let expected = expected.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let current = read(&path)?.map(|s| s.version);
            if current != expected {
                return Err(StoreError::Conflict {
                    expected: expected.unwrap_or_else(|| "none".into()),
                });
            }
            write_atomically(&path, &data)?;
            Ok(version_of(&data))
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("journal write task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn compare_and_swap_on_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::new(dir.path().join("state/journal.json"));
        assert_eq!(store.load().await.unwrap(), None);
        let v1 = store.save("{\"a\":1}", None).await.unwrap();
        let snap = store.load().await.unwrap().unwrap();
        assert_eq!(
            (snap.data.as_str(), snap.version.as_str()),
            ("{\"a\":1}", v1.as_str())
        );
        let v2 = store.save("{\"a\":2}", Some(&v1)).await.unwrap();
        // A writer holding the old version loses.
        let err = store.save("{\"a\":3}", Some(&v1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }), "{err}");
        assert_eq!(store.load().await.unwrap().unwrap().version, v2);
        assert!(!dir.path().join("state/journal.tmp").exists());
    }

    #[tokio::test]
    async fn an_unwritable_place_fails_loudly() {
        let store = FileStore::new("/proc/astreinte-cannot-write-here/journal.json");
        let err = store.save("{}", None).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("/proc/astreinte-cannot-write-here"),
            "{err}"
        );
    }
}
