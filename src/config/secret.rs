//! Secrets named in the config: read from an environment variable or a file, never inline,
//! and never printed (`Debug` and `Display` redact them).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret lives: `{ env = "PATRONI_PASSWORD" }` or `{ file = "/run/secrets/token" }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRef {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("cannot read secret file {path}: {kind}")]
    File { path: String, kind: String },
    #[error("a secret must name exactly one of `env` or `file`")]
    Ambiguous,
}

impl SecretRef {
    /// A problem with the reference itself (not with its value), for `validate()`.
    pub fn shape_problem(&self) -> Option<&'static str> {
        match (&self.env, &self.file) {
            (Some(_), None) | (None, Some(_)) => None,
            _ => Some("a secret must name exactly one of `env` or `file`"),
        }
    }

    /// Reads the secret now, off the async threads (a file through `tokio::fs`, i.e. the
    /// blocking pool): what a probe run calls. Read per use, so a rotated file (a changed
    /// file, or a Kubernetes Secret volume's new `..data`) is picked up without a restart.
    pub async fn read(&self) -> Result<Secret, SecretError> {
        match (&self.env, &self.file) {
            (None, Some(path)) => tokio::fs::read_to_string(path)
                .await
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| SecretError::File {
                    path: path.display().to_string(),
                    kind: e.kind().to_string(),
                }),
            // An environment variable is memory: no IO to move off the thread.
            _ => self.resolve(),
        }
    }

    /// Reads the secret now, synchronously (a file read blocks the calling thread: use
    /// [`SecretRef::read`] on async threads). Called per use, so a rotated file is picked up.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map(Secret)
                .map_err(|_| SecretError::MissingEnv(var.clone())),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(|s| Secret(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| SecretError::File {
                    path: path.display().to_string(),
                    kind: e.kind().to_string(),
                }),
            _ => Err(SecretError::Ambiguous),
        }
    }
}

/// [`SecretRef::read`] of an optional secret.
pub async fn read_opt(secret: Option<&SecretRef>) -> Result<Option<Secret>, SecretError> {
    match secret {
        Some(s) => s.read().await.map(Some),
        None => Ok(None),
    }
}

/// A secret value. It only leaves through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_and_read_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "hunter2\n").unwrap();
        let s = SecretRef {
            env: None,
            file: Some(path),
        }
        .resolve()
        .unwrap();
        assert_eq!(s.expose(), "hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = SecretRef {
            env: Some("ASTREINTE_TEST_SURELY_UNSET".into()),
            file: None,
        }
        .resolve()
        .unwrap_err();
        assert!(err.to_string().contains("ASTREINTE_TEST_SURELY_UNSET"));
    }

    #[test]
    fn both_or_neither_is_a_shape_problem() {
        assert!(
            SecretRef {
                env: None,
                file: None
            }
            .shape_problem()
            .is_some()
        );
        let both = SecretRef {
            env: Some("A".into()),
            file: Some("/x".into()),
        };
        assert!(both.shape_problem().is_some());
    }
}
