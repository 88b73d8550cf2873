//! What both services answer an HTTP client with when a request fails: an
//! [`ApiError`] (a status and a JSON body built by [`super::kit`]), and the
//! extractors whose rejections are such errors ([`ApiJson`], [`ApiQuery`],
//! [`ApiPath`]). Each service maps its own error enum into [`ApiError`];
//! the status rule and the bodies are the kit's.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::kit;

/// An error on its way to an HTTP client: a status and a JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    /// An answer with `status` and `body` (one of the [`kit`] bodies).
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body }
    }

    /// A 4xx with a message and an optional field ([`kit::error_body`]).
    pub fn client(status: StatusCode, message: impl Into<String>, field: Option<&str>) -> Self {
        Self::new(status, kit::error_body(message, field))
    }

    /// A 500 whose detail is logged under a fresh opaque id, which the
    /// body carries ([`kit::internal_error_body`]).
    pub fn internal(detail: &dyn std::fmt::Display) -> Self {
        let id = log_internal(detail);
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            kit::internal_error_body(&id),
        )
    }

    /// An error of the trust core, by the shared status rule
    /// ([`kit::policy_status`]): a 500 is logged as [`ApiError::internal`].
    pub fn policy(error: &policy::Error) -> Self {
        match kit::policy_status(error) {
            StatusCode::INTERNAL_SERVER_ERROR => Self::internal(error),
            status => Self::new(status, kit::policy_error_body(error.to_string(), error)),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// Logs `detail` as a service failure under a fresh opaque id (128 random
/// bits, [`policy::id::random_hex`]) and returns the id.
pub fn log_internal(detail: &dyn std::fmt::Display) -> String {
    let id = policy::id::random_hex().unwrap_or_else(|_| "no-random-id".to_owned());
    tracing::error!(error_id = %id, "{detail}");
    id
}

/// `axum::Json`, with bad bodies refused as `{"error": ..., "field":
/// "body"}` (413 when over the body limit); as an answer, plain JSON.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    ApiError::client(
        rejection.status(),
        kit::json_rejection_message(rejection),
        Some("body"),
    )
}

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Query`, with bad parameters refused as `{"error": ...}`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(query_error(&rejection)),
        }
    }
}

fn query_error(rejection: &QueryRejection) -> ApiError {
    ApiError::client(rejection.status(), rejection.body_text(), Some("query"))
}

/// `axum::extract::Path`, with bad segments refused as `{"error": ...}`.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(path_error(&rejection)),
        }
    }
}

fn path_error(rejection: &PathRejection) -> ApiError {
    ApiError::client(rejection.status(), rejection.body_text(), Some("path"))
}
