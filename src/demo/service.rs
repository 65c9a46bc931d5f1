//! The demo's own HTTP service, a stand-in for the runbook's `rag-api`: `GET /health` answers
//! 200, or 500 once broken, or slowly; `POST /admin/restart` (bearer token) "restarts" it,
//! which is what the demo's one enforced remediation rule calls.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{Error, Result};

/// How long `/health` takes while the service is slow (the demo's SLO is 300 ms).
pub const SLOW_LATENCY: Duration = Duration::from_millis(420);

/// What `/health` does now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Broken,
    Slow,
}

/// Shared between the server, the fault handler and the tests.
#[derive(Debug)]
pub struct ServiceState {
    health: AtomicU8,
    restarts: AtomicU32,
    token: String,
}

impl ServiceState {
    pub fn health(&self) -> Health {
        match self.health.load(Ordering::SeqCst) {
            1 => Health::Broken,
            2 => Health::Slow,
            _ => Health::Healthy,
        }
    }

    pub fn set(&self, health: Health) {
        let code = match health {
            Health::Healthy => 0,
            Health::Broken => 1,
            Health::Slow => 2,
        };
        self.health.store(code, Ordering::SeqCst);
    }

    /// How many times `/admin/restart` was called with the right token.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::SeqCst)
    }
}

/// The running service; it stops with `cancel`.
pub struct Service {
    pub addr: SocketAddr,
    pub state: Arc<ServiceState>,
}

impl Service {
    /// Serves on a free 127.0.0.1 port until `cancel`; `token` guards `/admin/restart`.
    pub async fn start(token: String, cancel: CancellationToken) -> Result<Service> {
        let state = Arc::new(ServiceState {
            health: AtomicU8::new(0),
            restarts: AtomicU32::new(0),
            token,
        });
        let app = Router::new()
            .route("/health", get(health))
            .route("/admin/restart", post(restart))
            .with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| Error::Io("bind the demo service".into(), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Io("read the demo service address".into(), e))?;
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "demo service stopped");
            }
        });
        Ok(Service { addr, state })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

async fn health(State(s): State<Arc<ServiceState>>) -> (StatusCode, &'static str) {
    match s.health() {
        Health::Healthy => (StatusCode::OK, "ok\n"),
        Health::Broken => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "error: worker pool exhausted\n",
        ),
        Health::Slow => {
            tokio::time::sleep(SLOW_LATENCY).await;
            (StatusCode::OK, "ok (slow)\n")
        }
    }
}

/// A restart clears whatever state the service was in.
async fn restart(State(s): State<Arc<ServiceState>>, headers: HeaderMap) -> StatusCode {
    let expected = format!("Bearer {}", s.token);
    let given = headers.get("authorization").and_then(|v| v.to_str().ok());
    if given != Some(expected.as_str()) {
        return StatusCode::UNAUTHORIZED;
    }
    s.restarts.fetch_add(1, Ordering::SeqCst);
    s.set(Health::Healthy);
    tracing::info!("demo service restarted through /admin/restart");
    StatusCode::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn health_follows_the_state_and_only_the_token_restarts() {
        crate::app::install_crypto();
        let cancel = CancellationToken::new();
        let service = Service::start("t0ken".into(), cancel.clone())
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let health = || http.get(service.url("/health")).send();
        assert_eq!(health().await.unwrap().status(), 200);
        service.state.set(Health::Broken);
        assert_eq!(health().await.unwrap().status(), 500);
        let restart = service.url("/admin/restart");
        let denied = http
            .post(&restart)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(denied.status(), 401);
        assert_eq!(service.state.health(), Health::Broken);
        let ok = http
            .post(&restart)
            .bearer_auth("t0ken")
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200);
        assert_eq!(service.state.restarts(), 1);
        assert_eq!(health().await.unwrap().status(), 200);
        cancel.cancel();
    }
}
