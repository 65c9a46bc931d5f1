//! Errors of the fake API server as the real apiserver writes them: `Status` objects with
//! `reason` (NotFound, AlreadyExists, Conflict, Forbidden…), `code` and `details`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::rbac::qualify;
use super::routes::Target;
use super::store::WriteError;

/// A `Status` failure, as the apiserver writes it.
pub fn status(code: u16, reason: &str, message: String, details: Value) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    });
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, axum::Json(body)).into_response()
}

pub fn details(t: &Target, name: &str) -> Value {
    json!({ "name": name, "group": t.group(), "kind": t.resource })
}

pub fn not_found(t: &Target, name: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", qualify(t.group(), &t.resource)),
        details(t, name),
    )
}

pub fn write_error(e: WriteError, t: &Target, name: &str) -> Response {
    let object = qualify(t.group(), &t.resource);
    match e {
        WriteError::NotFound => not_found(t, name),
        WriteError::AlreadyExists => status(
            409,
            "AlreadyExists",
            format!("{object} \"{name}\" already exists"),
            details(t, name),
        ),
        WriteError::Conflict => status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {object} \"{name}\": the object has been \
                 modified; please apply your changes to the latest version and try again"
            ),
            details(t, name),
        ),
    }
}
