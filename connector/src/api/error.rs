//! The only place where errors become HTTP status codes. A 5xx carries an
//! opaque error id; its detail goes to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::api::kit;
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
        Self {
            status,
            body: kit::error_body(message, field),
        }
    }

    /// The refusal of a request whose token or credential does not
    /// authenticate: a malformed token is a failed authentication too, so
    /// what the shared rule calls bad input is 401 here; anything else
    /// keeps its status.
    pub fn authentication(error: Error) -> Self {
        match &error {
            Error::Policy(p) if kit::policy_status(p) == StatusCode::BAD_REQUEST => Self {
                status: StatusCode::UNAUTHORIZED,
                body: kit::policy_error_body(p.to_string(), p),
            },
            _ => error.into(),
        }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        let id = crate::engine::log_engine_error(detail);
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: kit::internal_error_body(&id),
        }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        match &error {
            Error::Refused(r) => Self {
                status: StatusCode::FORBIDDEN,
                body: kit::refusal_body(r.to_string(), r),
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

/// The trust core's errors take the status rule both services share
/// ([`kit::policy_status`]).
fn policy_error(error: &policy::Error) -> ApiError {
    match kit::policy_status(error) {
        StatusCode::INTERNAL_SERVER_ERROR => ApiError::internal(error),
        status => ApiError {
            status,
            body: kit::policy_error_body(error.to_string(), error),
        },
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
