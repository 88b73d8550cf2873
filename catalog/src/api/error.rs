//! The only place where errors become HTTP status codes. Client errors carry
//! `{"error": ..., "field"?: ...}`; a 5xx carries an opaque error id and its
//! detail goes to the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::Error;

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// A 4xx with a message and an optional field.
    pub fn client(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Self {
        let mut body = json!({ "error": message.into() });
        if let Some(field) = field {
            body["field"] = json!(field);
        }
        Self { status, body }
    }

    /// A 500 whose detail is logged under an opaque id.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, "{detail}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({ "error": "internal error", "error_id": id }),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// A fresh opaque id: time and a counter, in hex.
fn error_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:x}-{count:x}", nanos & 0xffff_ffff_ffff)
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let message = error.to_string();
        match &error {
            Error::Invalid { field, .. } => {
                Self::client(StatusCode::BAD_REQUEST, message, Some(field))
            }
            Error::Trust { source, .. } => Self::client(trust_status(source), message, None),
            Error::WrongSigner { .. }
            | Error::UnknownSigner { .. }
            | Error::NotRegistered(_)
            | Error::CredentialExpired(_) => Self::client(StatusCode::FORBIDDEN, message, None),
            Error::NotFound { .. } => Self::client(StatusCode::NOT_FOUND, message, None),
            Error::Conflict(_) => Self::client(StatusCode::CONFLICT, message, None),
            Error::Storage(_)
            | Error::Config { .. }
            | Error::Server(_)
            | Error::Transport(_)
            | Error::Refused { .. } => Self::internal(&error),
        }
    }
}

/// Malformed documents are 400; documents or credentials that do not
/// authenticate (signature, key, issuer, time) are 401.
fn trust_status(error: &policy::Error) -> StatusCode {
    use policy::Error as P;
    match error {
        P::Malformed { .. }
        | P::AlgorithmNone
        | P::AlgorithmNotAllowed { .. }
        | P::InvalidPolicy { .. }
        | P::Key(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
