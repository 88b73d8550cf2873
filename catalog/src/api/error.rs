//! Where the catalog's errors become HTTP answers, by the status rule of
//! [`super::kit`]. Client errors carry `{"error": ..., "field"?: ...}`; a
//! 5xx carries an opaque error id and its detail goes to the log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::kit::{self, ErrorClass};
use crate::Error;

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// A 4xx with a message and an optional field ([`kit::error_body`]).
    pub fn client(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Self {
        Self {
            status,
            body: kit::error_body(message, field),
        }
    }

    /// A 500 whose detail is logged under an opaque id.
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let id = error_id();
        tracing::error!(error_id = %id, "{detail}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: kit::internal_error_body(&id),
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

/// The class of a catalog error, by the rule of [`kit`]: a document or
/// credential that does not authenticate is 401 (the class of its
/// [`policy::Error`]); one that authenticates but is signed by someone other
/// than the participant it names, or by a key or participant the registry
/// does not admit, is 403.
pub fn error_class(error: &Error) -> ErrorClass {
    match error {
        Error::Invalid { .. } => ErrorClass::BadInput,
        Error::Trust { source, .. } => kit::policy_class(source),
        Error::WrongSigner { .. }
        | Error::UnknownSigner { .. }
        | Error::NotRegistered(_)
        | Error::CredentialExpired(_) => ErrorClass::Forbidden,
        Error::NotFound { .. } => ErrorClass::NotFound,
        Error::Conflict(_) => ErrorClass::Conflict,
        Error::StoreOpen { .. }
        | Error::Storage(_)
        | Error::Corrupt { .. }
        | Error::Encode { .. }
        | Error::Config { .. }
        | Error::ConfigFile { .. }
        | Error::ConfigSyntax { .. }
        | Error::AuthorityKey { .. }
        | Error::Listen { .. }
        | Error::Server(_)
        | Error::Request { .. }
        | Error::Unreachable { .. }
        | Error::Timeout { .. }
        | Error::BadAnswer { .. }
        | Error::Refused { .. } => ErrorClass::Internal,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let class = error_class(&error);
        if class == ErrorClass::Internal {
            return Self::internal(&error);
        }
        let body = match &error {
            Error::Invalid { field, .. } => kit::error_body(error.to_string(), Some(field)),
            Error::Trust { source, .. } => kit::policy_error_body(error.to_string(), source),
            _ => kit::error_body(error.to_string(), None),
        };
        Self {
            status: class.status(),
            body,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
