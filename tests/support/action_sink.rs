//! The target of an `http` remediation for the leader-election tests: `POST /act/{who}`
//! takes `hold` to answer and records every call (who, start, end, its own clock) and the most
//! calls it ever had in flight at once, so a test sees from the outside whether two
//! replicas ever acted at the same time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct Call {
    pub who: String,
    pub started: jiff::Timestamp,
    pub ended: jiff::Timestamp,
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    hold: Mutex<Duration>,
}

pub struct ActionSink {
    pub base: String,
    shared: Arc<Shared>,
    cancel: CancellationToken,
}

impl Drop for ActionSink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn act(State(s): State<Arc<Shared>>, Path(who): Path<String>) -> StatusCode {
    let started = jiff::Timestamp::now();
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let hold = *s.hold.lock().unwrap();
    tokio::time::sleep(hold).await;
    s.in_flight.fetch_sub(1, Ordering::SeqCst);
    s.calls.lock().unwrap().push(Call {
        who,
        started,
        ended: jiff::Timestamp::now(),
    });
    StatusCode::OK
}

impl ActionSink {
    pub async fn start(hold: Duration) -> ActionSink {
        let shared = Arc::new(Shared {
            hold: Mutex::new(hold),
            ..Shared::default()
        });
        let app = Router::new()
            .route("/act/{who}", post(act))
            .with_state(shared.clone());
        let (addr, cancel) = super::serve_local(app).await;
        ActionSink {
            base: format!("http://{addr}"),
            shared,
            cancel,
        }
    }

    pub fn url(&self, who: &str) -> String {
        format!("{}/act/{who}", self.base)
    }

    /// Every finished call, by start time.
    pub fn calls(&self) -> Vec<Call> {
        let mut calls = self.shared.calls.lock().unwrap().clone();
        calls.sort_by_key(|c| c.started);
        calls
    }

    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}
