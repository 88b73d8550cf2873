//! A client of the catalog's HTTP API (hyper, plain HTTP), for connectors
//! that publish automatically and for the command line.
//!
//! A refusal by the catalog is [`Error::Refused`] with its status, message
//! and field; anything else that goes wrong on the way is
//! [`Error::Unreachable`], [`Error::Timeout`] or [`Error::BadAnswer`], each
//! with the URL and, where there is one, the typed fault as its source.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use policy::document::SignedDocument;
use policy::model::Access;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::model::{
    DatasetDescription, Participant, PublishReceipt, PublishRequest, PublishedDataset,
    RegisterRequest, Unpublish, UnpublishReceipt, UnpublishRequest,
};
use crate::openness::OpennessList;
use crate::search::{SearchPage, SearchQuery};
use crate::{Error, Result};

/// Largest answer read, in bytes (the DCAT export of a large catalog).
pub const MAX_RESPONSE_BYTES: usize = 512 << 20;
/// Default time a call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one catalog.
#[derive(Clone)]
pub struct CatalogClient {
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for CatalogClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl CatalogClient {
    /// A client of the catalog at `base_url` (`http://host:port`).
    pub fn new(base_url: &str) -> Result<Self> {
        let base = base_url.trim().trim_end_matches('/');
        let rest = base.strip_prefix("http://").ok_or_else(|| {
            Error::invalid("catalog", format!("`{base_url}` is not an `http://` URL"))
        })?;
        if rest.is_empty() || rest.contains(['?', '#']) || rest.chars().any(char::is_whitespace) {
            return Err(Error::invalid(
                "catalog",
                format!("`{base_url}` is not a base URL"),
            ));
        }
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(Self {
            base: base.to_owned(),
            http,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The same client with another time limit per call.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The catalog's base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Whether the catalog answers `GET /healthz`.
    pub async fn health(&self) -> Result<()> {
        self.call::<Value>(Method::GET, "/healthz", None)
            .await
            .map(|_| ())
    }

    /// Registers the participant of a membership credential (a JWS).
    pub async fn register(&self, credential: &str) -> Result<Participant> {
        let body = json_body(&RegisterRequest {
            credential: credential.to_owned(),
        })?;
        self.call(Method::POST, "/participants", Some(body)).await
    }

    /// A registered participant.
    pub async fn participant(&self, id: &str) -> Result<Participant> {
        self.call(
            Method::GET,
            &format!("/participants/{}", encode_component(id)),
            None,
        )
        .await
    }

    /// Publishes a signed description (or a new version of it).
    pub async fn publish(
        &self,
        description: &SignedDocument<DatasetDescription>,
    ) -> Result<PublishReceipt> {
        self.publish_jws(description.jws()).await
    }

    /// Publishes a signed description given as its JWS.
    pub async fn publish_jws(&self, jws: &str) -> Result<PublishReceipt> {
        let body = json_body(&PublishRequest {
            description: jws.to_owned(),
        })?;
        self.call(Method::POST, "/datasets", Some(body)).await
    }

    /// Searches the catalog.
    pub async fn search(&self, query: &SearchQuery) -> Result<SearchPage> {
        self.call(
            Method::GET,
            &format!("/datasets{}", query_string(query)),
            None,
        )
        .await
    }

    /// One published dataset; [`PublishedDataset::verify`] checks the
    /// provider's signatures.
    pub async fn show(&self, provider: &str, id: &str) -> Result<PublishedDataset> {
        self.call(Method::GET, &dataset_path(provider, id), None)
            .await
    }

    /// Withdraws a dataset with the provider's signed request.
    pub async fn unpublish(&self, request: &SignedDocument<Unpublish>) -> Result<UnpublishReceipt> {
        let payload = request.payload();
        self.unpublish_jws(&payload.provider, &payload.dataset, request.jws())
            .await
    }

    /// Withdraws dataset `id` of `provider` with a signed request given as
    /// its JWS.
    pub async fn unpublish_jws(
        &self,
        provider: &str,
        id: &str,
        jws: &str,
    ) -> Result<UnpublishReceipt> {
        let body = json_body(&UnpublishRequest {
            request: jws.to_owned(),
        })?;
        self.call(Method::DELETE, &dataset_path(provider, id), Some(body))
            .await
    }

    /// The openness list of a provider.
    pub async fn openness(&self, provider: &str) -> Result<OpennessList> {
        let path = format!("/providers/{}/openness", encode_component(provider));
        self.call(Method::GET, &path, None).await
    }

    /// The openness list of a provider as an HTML page.
    pub async fn openness_html(&self, provider: &str) -> Result<String> {
        let path = format!("/providers/{}/openness.html", encode_component(provider));
        let bytes = self.send(Method::GET, &path, None).await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| Error::BadAnswer {
            url: format!("{}{path}", self.base),
            source: Box::new(e),
        })
    }

    /// The whole catalog as DCAT 3 JSON-LD.
    pub async fn dcat(&self) -> Result<Value> {
        self.call(Method::GET, "/.well-known/dcat", None).await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let bytes = self.send(method, path, body).await?;
        serde_json::from_slice(&bytes).map_err(|e| Error::BadAnswer {
            url: format!("{}{path}", self.base),
            source: Box::new(e),
        })
    }

    /// Sends a request; a success status gives the body, any other status
    /// [`Error::Refused`].
    async fn send(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes> {
        let uri = format!("{}{path}", self.base);
        let mut request = Request::builder()
            .method(method)
            .uri(&uri)
            .header(header::ACCEPT, "application/json");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|source| Error::Request {
                url: uri.clone(),
                source,
            })?;
        let exchange = async {
            let response =
                self.http
                    .request(request)
                    .await
                    .map_err(|source| Error::Unreachable {
                        url: uri.clone(),
                        source,
                    })?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|source| Error::BadAnswer {
                    url: uri.clone(),
                    source,
                })?
                .to_bytes();
            Ok::<_, Error>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| Error::Timeout {
                url: uri.clone(),
                after: self.timeout,
            })??;
        if status.is_success() {
            Ok(bytes)
        } else {
            Err(refusal(status, &bytes))
        }
    }
}

fn refusal(status: StatusCode, body: &[u8]) -> Error {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let text = |name: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(name))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Error::Refused {
        status: status.as_u16(),
        message: text("error")
            .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
        field: text("field"),
    }
}

fn json_body(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|source| Error::Encode {
        what: "request body",
        source,
    })
}

fn dataset_path(provider: &str, id: &str) -> String {
    format!(
        "/datasets/{}/{}",
        encode_component(provider),
        encode_component(id)
    )
}

/// `?name=value&...` of the set members of `query`, percent-encoded.
fn query_string(query: &SearchQuery) -> String {
    let access = query.access.map(|access| match access {
        Access::Aggregate => "aggregate".to_owned(),
        Access::Rows => "rows".to_owned(),
    });
    let pairs = [
        ("q", query.q.clone()),
        ("provider", query.provider.clone()),
        ("sector", query.sector.clone()),
        ("column", query.column.clone()),
        ("purpose", query.purpose.clone()),
        ("access", access),
        ("limit", query.limit.map(|n| n.to_string())),
        ("offset", query.offset.map(|n| n.to_string())),
    ];
    let parts: Vec<String> = pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name}={}", encode_component(&v))))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

/// The bytes [`encode_component`] percent-encodes: all but RFC 3986's
/// unreserved characters (`A-Z a-z 0-9 - . _ ~`); bytes outside ASCII are
/// always encoded.
pub const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything but the unreserved characters of RFC 3986
/// (UTF-8 bytes, upper-case hex): safe as a path segment, a query name or
/// value, and a part of a URN.
pub fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_components_and_queries() {
        assert_eq!(encode_component("a b/ü?&"), "a%20b%2F%C3%BC%3F%26");
        for byte in 0..=127u8 {
            let text = char::from(byte).to_string();
            let unreserved = byte.is_ascii_alphanumeric() || b"-._~".contains(&byte);
            let expected = match unreserved {
                true => text.clone(),
                false => format!("%{byte:02X}"),
            };
            assert_eq!(encode_component(&text), expected, "byte {byte}");
        }
        let query = SearchQuery {
            q: Some("spindle vibration".into()),
            access: Some(Access::Aggregate),
            limit: Some(5),
            ..SearchQuery::default()
        };
        assert_eq!(
            query_string(&query),
            "?q=spindle%20vibration&access=aggregate&limit=5"
        );
        assert_eq!(query_string(&SearchQuery::default()), "");
    }

    #[test]
    fn refuses_base_urls_that_are_not_plain_http() {
        for url in ["https://catalog", "catalog:8090", "http://", "http://a b"] {
            assert!(CatalogClient::new(url).is_err(), "{url}");
        }
        assert_eq!(
            CatalogClient::new("http://127.0.0.1:8090/")
                .unwrap()
                .base_url(),
            "http://127.0.0.1:8090"
        );
    }
}
