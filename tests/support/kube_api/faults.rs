//! Fault knobs of the fake API server: the next N requests of a verb on a resource (or one
//! object) fail with 409 Conflict, 429 with Retry-After, or a 5xx.

use axum::http::header;
use axum::response::Response;
use serde_json::json;

use super::Shared;
use super::routes::Target;
use super::status::{status, write_error};
use super::store::WriteError;

/// An injected failure for the next writes or reads of one object.
#[derive(Debug, Clone)]
pub struct Fault {
    pub verb: String,
    pub resource: String,
    /// Empty: any object of the resource.
    pub name: String,
    pub remaining: u32,
    pub code: u16,
    pub retry_after: Option<u32>,
}

impl Fault {
    pub fn respond(&self, t: &Target, name: &str) -> Response {
        match self.code {
            409 => write_error(WriteError::Conflict, t, name),
            429 => {
                let mut r = status(
                    429,
                    "TooManyRequests",
                    "Too many requests, please try again later.".into(),
                    json!({ "retryAfterSeconds": self.retry_after.unwrap_or(1) }),
                );
                if let Some(s) = self.retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, s.to_string().parse().unwrap());
                }
                r
            }
            code => status(
                code,
                "InternalError",
                "Internal error occurred: injected failure".into(),
                json!({}),
            ),
        }
    }
}

impl Shared {
    pub fn take_fault(&self, verb: &str, resource: &str, name: &str) -> Option<Fault> {
        let mut faults = self.faults.lock().unwrap();
        let f = faults.iter_mut().find(|f| {
            f.remaining > 0
                && f.verb == verb
                && f.resource == resource
                && (f.name.is_empty() || f.name == name)
        })?;
        f.remaining -= 1;
        Some(f.clone())
    }
}
