//! How a second terminal reaches a running demo: `control.json` in the demo directory (its pid,
//! its directory, the daemon's, the service's and the control endpoint's URLs), a pointer to
//! the latest demo directory in the temp dir, and the control endpoint itself
//! (`POST /fault/{name}` on 127.0.0.1), which applies a fault to the stack the demo owns.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::post;
use clap::ValueEnum;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use super::fault::{self, Fault};
use super::service::ServiceState;
use super::stack::Stack;
use super::{Error, Result};

pub const CONTROL_FILE: &str = "control.json";

/// What `control.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlFile {
    /// The demo process.
    pub pid: u32,
    pub dir: PathBuf,
    /// The daemon, e.g. `http://127.0.0.1:9464`.
    pub daemon: String,
    /// The demo service (`/health`).
    pub service: String,
    /// The control endpoint (`POST /fault/{name}`).
    pub control: String,
}

impl ControlFile {
    /// Writes `control.json` into its directory, and the pointer to it.
    pub fn write(&self) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::Other(format!("encode {CONTROL_FILE}: {e}")))?;
        let path = self.dir.join(CONTROL_FILE);
        std::fs::write(&path, text)
            .map_err(|e| Error::Io(format!("write {}", path.display()), e))?;
        let pointer = pointer_path();
        std::fs::write(&pointer, self.dir.display().to_string())
            .map_err(|e| Error::Io(format!("write {}", pointer.display()), e))
    }

    /// Reads the control file of the demo in `dir`, or of the latest demo started.
    pub fn locate(dir: Option<&Path>) -> Result<ControlFile> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => {
                let pointer = pointer_path();
                let text = std::fs::read_to_string(&pointer).map_err(|_| {
                    Error::Other(
                        "no demo is running (start one with `scripts/demo` or `astreinte demo`, \
                         or name its directory with --dir)"
                            .into(),
                    )
                })?;
                PathBuf::from(text.trim())
            }
        };
        let path = dir.join(CONTROL_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::Io(
                format!("read {} (is the demo still running?)", path.display()),
                e,
            )
        })?;
        serde_json::from_str(&text).map_err(|e| Error::Other(format!("{}: {e}", path.display())))
    }

    /// Removes `control.json`, and the pointer if it still names this demo.
    pub fn remove(&self) {
        let _ = std::fs::remove_file(self.dir.join(CONTROL_FILE));
        let pointer = pointer_path();
        let ours = std::fs::read_to_string(&pointer)
            .is_ok_and(|t| Path::new(t.trim()) == self.dir.as_path());
        if ours {
            let _ = std::fs::remove_file(pointer);
        }
    }
}

/// The file naming the directory of the latest demo started.
pub fn pointer_path() -> PathBuf {
    std::env::temp_dir().join("astreinte-demo.current")
}

/// What the control endpoint acts on.
pub struct Running {
    /// `None` once the demo is stopping.
    pub stack: Mutex<Option<Stack>>,
    pub service: Arc<ServiceState>,
    /// The daemon's URL, for the hints printed after each fault.
    pub daemon: String,
    pub cancel: CancellationToken,
}

/// Serves the control endpoint on a free 127.0.0.1 port until `running.cancel`.
pub async fn serve(running: Arc<Running>) -> Result<SocketAddr> {
    let cancel = running.cancel.clone();
    let app = Router::new()
        .route("/fault/{name}", post(apply))
        .with_state(running);
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Error::Io("bind the demo control endpoint".into(), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io("read the control endpoint address".into(), e))?;
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "demo control endpoint stopped");
        }
    });
    Ok(addr)
}

async fn apply(
    State(running): State<Arc<Running>>,
    UrlPath(name): UrlPath<String>,
) -> (StatusCode, String) {
    let Ok(fault) = Fault::from_str(&name, true) else {
        let known: Vec<String> = Fault::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value().map(|v| v.get_name().to_owned()))
            .collect();
        return (
            StatusCode::NOT_FOUND,
            format!("no fault `{name}`; known: {}\n", known.join(", ")),
        );
    };
    match fault::apply(&running, fault).await {
        Ok(text) => (StatusCode::OK, text),
        Err(e) => (StatusCode::CONFLICT, format!("{e}\n")),
    }
}
