//! The only place where the connector's errors become HTTP answers: its
//! [`Error`] into the [`ApiError`] both services share, by the status rule
//! of [`catalog::api::kit`]. A 5xx carries an opaque error id; its detail
//! goes to the log.

use axum::http::StatusCode;
use catalog::api::kit;
use catalog::api::reply::ApiError;
use serde_json::json;

use crate::Error;

/// The refusal of a request whose token or credential does not
/// authenticate: a malformed token is a failed authentication too, so what
/// the shared rule calls bad input is 401 here; anything else keeps its
/// status.
pub fn authentication_error(error: Error) -> ApiError {
    match &error {
        Error::Policy(p) if kit::policy_status(p) == StatusCode::BAD_REQUEST => ApiError::new(
            StatusCode::UNAUTHORIZED,
            kit::policy_error_body(p.to_string(), p),
        ),
        _ => error.into(),
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        let client = |status| ApiError::client(status, error.to_string(), None);
        match &error {
            Error::Refused(r) => {
                ApiError::new(StatusCode::FORBIDDEN, kit::refusal_body(r.to_string(), r))
            }
            // Logged under this id where it happened (`engine`).
            Error::Execution { id } => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "error": error.to_string(), "error_id": id }),
            ),
            Error::Invalid { field, .. } => {
                ApiError::client(StatusCode::BAD_REQUEST, error.to_string(), Some(field))
            }
            Error::NotFound { .. } => client(StatusCode::NOT_FOUND),
            Error::Forbidden(_) | Error::OutsideRoots(_) => client(StatusCode::FORBIDDEN),
            Error::Conflict(_) => client(StatusCode::CONFLICT),
            Error::Table { .. } => {
                ApiError::client(StatusCode::BAD_REQUEST, error.to_string(), Some("path"))
            }
            Error::Policy(p) => ApiError::policy(p),
            Error::Storage(_)
            | Error::Audit(_)
            | Error::Peer(_)
            | Error::PeerAnswered { .. }
            | Error::CaseFile { .. } => ApiError::internal(&error),
        }
    }
}
