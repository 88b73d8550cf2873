//! Talking to other connectors over HTTP (hyper client, plain HTTP), with
//! this participant's request tokens.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use policy::keys::KeyPair;

use crate::api::CREDENTIAL_HEADER;
use crate::clock::Clock;
use crate::{Error, Result};

/// A response: status, headers, body.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON, or the peer's error as [`Error::PeerAnswered`].
    pub fn json(&self) -> Result<serde_json::Value> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).map_err(|_| {
            Error::Peer(format!(
                "answered {} with a body that is not JSON",
                self.status
            ))
        })?;
        if self.status.is_success() {
            Ok(value)
        } else {
            Err(peer_error(self.status, &value))
        }
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The error a peer answered with, keeping its rule when it refused.
pub fn peer_error(status: StatusCode, body: &serde_json::Value) -> Error {
    let text = |key: &str| body.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    Error::PeerAnswered {
        status: status.as_u16(),
        message: text("error").unwrap_or_else(|| "no message".to_owned()),
        rule: text("rule"),
    }
}

/// An HTTP client for peers.
#[derive(Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpClient {
    /// A client with connection pooling.
    pub fn new() -> Self {
        Self {
            inner: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply> {
        let mut builder = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let request = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Error::Peer(format!("bad request to `{url}`: {e}")))?;
        let response = self
            .inner
            .request(request)
            .await
            .map_err(|e| Error::Peer(format!("cannot reach `{url}`: {e}")))?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| Error::Peer(format!("`{url}` broke off its answer: {e}")))?
            .to_bytes();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

/// Calls to peers as a participant: every call carries a fresh request token
/// for the callee and our membership credential.
#[derive(Clone)]
pub struct PeerClient {
    http: HttpClient,
    own_id: String,
    credential: String,
    key: std::sync::Arc<KeyPair>,
}

impl PeerClient {
    /// A client acting as `own_id`.
    pub fn new(own_id: &str, credential: &str, key: std::sync::Arc<KeyPair>) -> Self {
        Self {
            http: HttpClient::new(),
            own_id: own_id.to_owned(),
            credential: credential.to_owned(),
            key,
        }
    }

    /// Unauthenticated GET.
    pub async fn get(&self, url: &str) -> Result<Reply> {
        self.http.send(Method::GET, url, &[], None).await
    }

    /// An authenticated call to participant `audience`.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        audience: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply> {
        let token = policy::token::issue_request_token(
            &self.key,
            &self.own_id,
            audience,
            crate::clock::SystemClock.unix(),
            120,
        )?;
        let auth = format!("Bearer {token}");
        let headers = [
            ("authorization", auth.as_str()),
            (CREDENTIAL_HEADER, self.credential.as_str()),
        ];
        let body = body.map(|b| serde_json::to_vec(b).unwrap_or_default());
        self.http.send(method, url, &headers, body).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_peers_refusal_keeps_its_status_message_and_rule() {
        let body = json!({ "error": "column `operator_name` is denied", "rule": "denied_column" });
        let error = peer_error(StatusCode::FORBIDDEN, &body);
        assert!(
            matches!(&error, Error::PeerAnswered { status: 403, message, rule: Some(rule) }
                if message == "column `operator_name` is denied" && rule == "denied_column"),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "peer error: 403: column `operator_name` is denied (rule `denied_column`)"
        );
    }

    #[test]
    fn a_peers_error_without_a_rule_or_message_is_still_named() {
        let error = peer_error(StatusCode::BAD_GATEWAY, &json!({}));
        assert!(
            matches!(
                &error,
                Error::PeerAnswered {
                    status: 502,
                    rule: None,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(error.to_string(), "peer error: 502: no message");
        let named = peer_error(
            StatusCode::FORBIDDEN,
            &json!({ "error": "refused by rule `statement`", "rule": "statement" }),
        );
        assert_eq!(
            named.to_string(),
            "peer error: 403: refused by rule `statement`"
        );
    }
}
