//! Authentication as extractors: a participant's request token with its
//! membership credential, or the owner's admin token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use policy::token::VerifiedCaller;

use super::error::ApiError;
use crate::service::Connector;

/// Header carrying the caller's membership credential (JWS).
pub const CREDENTIAL_HEADER: &str = "x-dataspace-credential";

/// A participant whose request token and credential verified.
pub struct Caller(pub VerifiedCaller);

/// The connector's owner (admin token).
pub struct Admin;

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

impl FromRequestParts<Arc<Connector>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        connector: &Arc<Connector>,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts).ok_or_else(|| {
            ApiError::client(
                StatusCode::UNAUTHORIZED,
                "a request token is required (`Authorization: Bearer ...`)",
                None,
            )
        })?;
        let credential = parts
            .headers
            .get(CREDENTIAL_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::client(
                    StatusCode::UNAUTHORIZED,
                    format!("the membership credential is required (`{CREDENTIAL_HEADER}`)"),
                    None,
                )
            })?;
        Ok(Self(connector.authenticate(token, credential).await?))
    }
}

impl FromRequestParts<Arc<Connector>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        connector: &Arc<Connector>,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(token) if connector.is_admin(token) => Ok(Self),
            _ => Err(ApiError::client(
                StatusCode::UNAUTHORIZED,
                "the owner's admin token is required",
                None,
            )),
        }
    }
}
