//! The only place where errors become HTTP status codes. A 5xx carries an
//! opaque error id; its detail goes to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::Error;

/// An error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
}

impl ApiError {
    /// A 4xx with a message and optional field.
    pub fn client(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Self {
        let mut body = json!({ "error": message.into() });
        if let Some(field) = field {
            body["field"] = json!(field);
        }
        Self { status, body }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        let id = crate::engine::log_engine_error(detail);
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: json!({ "error": "internal error", "error_id": id }),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match &error {
            Error::Refused(r) => Self {
                status: StatusCode::FORBIDDEN,
                body: json!({ "error": r.to_string(), "rule": r.rule.id() }),
            },
            Error::Execution { id } => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: json!({ "error": error.to_string(), "error_id": id }),
            },
            Error::Invalid { field, .. } => {
                Self::client(StatusCode::BAD_REQUEST, error.to_string(), Some(field))
            }
            Error::NotFound { .. } => Self::client(StatusCode::NOT_FOUND, error.to_string(), None),
            Error::Forbidden(_) | Error::OutsideRoots(_) => {
                Self::client(StatusCode::FORBIDDEN, error.to_string(), None)
            }
            Error::Conflict(_) => Self::client(StatusCode::CONFLICT, error.to_string(), None),
            Error::Table { .. } => {
                Self::client(StatusCode::BAD_REQUEST, error.to_string(), Some("path"))
            }
            Error::Policy(p) => policy_error(p),
            Error::Storage(_) | Error::Audit(_) | Error::Peer(_) | Error::CaseFile { .. } => {
                Self::internal(&error)
            }
        }
    }
}

fn policy_error(error: &policy::Error) -> ApiError {
    use policy::Error as P;
    match error {
        P::InvalidPolicy { field, .. } => {
            ApiError::client(StatusCode::BAD_REQUEST, error.to_string(), Some(field))
        }
        P::Refused(r) => ApiError {
            status: StatusCode::FORBIDDEN,
            body: json!({ "error": r.to_string(), "rule": r.rule.id() }),
        },
        P::Io { .. } | P::Key(_) => ApiError::internal(error),
        _ => ApiError::client(StatusCode::UNAUTHORIZED, error.to_string(), None),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
