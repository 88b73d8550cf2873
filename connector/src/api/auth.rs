//! Authentication as extractors: a participant's request token with its
//! membership credential, or the owner's admin token. Every refusal is
//! audited (`Connector::refuse_access`, rate-limited).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::StatusCode;
use axum::http::request::Parts;
use policy::token::VerifiedCaller;

use crate::refusals::AccessReason;
use crate::service::Connector;
use catalog::api::reply::ApiError;

/// Header carrying the caller's membership credential (JWS).
pub const CREDENTIAL_HEADER: &str = "x-dataspace-credential";

/// A participant whose request token and credential verified.
pub struct Caller(pub VerifiedCaller);

/// The connector's owner (admin token).
pub struct Admin;

/// The address the request came from, when the server records it.
pub(super) fn peer(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
}

pub(super) fn bearer(parts: &Parts) -> Option<&str> {
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
        let peer = peer(parts);
        let Some(token) = bearer(parts) else {
            connector
                .refuse_access(AccessReason::TokenMissing, peer, None)
                .await;
            return Err(ApiError::client(
                StatusCode::UNAUTHORIZED,
                "a request token is required (`Authorization: Bearer ...`)",
                None,
            ));
        };
        let credential = parts
            .headers
            .get(CREDENTIAL_HEADER)
            .and_then(|v| v.to_str().ok());
        let Some(credential) = credential else {
            connector
                .refuse_access(AccessReason::CredentialMissing, peer, None)
                .await;
            return Err(ApiError::client(
                StatusCode::UNAUTHORIZED,
                format!("the membership credential is required (`{CREDENTIAL_HEADER}`)"),
                None,
            ));
        };
        Ok(Self(
            connector
                .authenticate(token, credential, peer)
                .await
                .map_err(super::error::authentication_error)?,
        ))
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
            _ => {
                connector
                    .refuse_access(AccessReason::AdminToken, peer(parts), None)
                    .await;
                Err(ApiError::client(
                    StatusCode::UNAUTHORIZED,
                    "the owner's admin token is required",
                    None,
                ))
            }
        }
    }
}
