//! The data officer's API and dashboard: audit records with filters and
//! pages, chain verification, exports, read-only SQL, usage figures, and the
//! page at `/officer`. Every `/audit/...` endpoint takes an [`Officer`]: the
//! owner's admin token, or a request token with a `data_officer` credential
//! of this participant (see `officer::is_officer_of`).

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{CREDENTIAL_HEADER, Caller, bearer, peer};
use crate::audit::AuditStore;
use crate::officer::{
    AuditFilter, Bucket, JsonLinesExport, Order, PageRequest, SqlLimits, export_parquet,
    is_officer_of, list_records, run_audit_sql, usage_figures,
};
use crate::refusals::AccessReason;
use crate::service::Connector;
use crate::{Error, Result};
use catalog::api::reply::ApiError;
use catalog::api::reply::ApiJson;

type Api<T> = std::result::Result<T, ApiError>;

/// The officer's routes, merged into the connector's router.
pub(super) fn routes() -> Router<Arc<Connector>> {
    Router::new()
        .route("/officer", get(page))
        .route("/officer/officer.js", get(script))
        .route("/officer/officer.css", get(style))
        .route("/audit/records", get(records))
        .route("/audit/verify", get(verify))
        .route("/audit/export", get(export))
        .route("/audit/usage", get(usage))
        .route("/audit/sql", post(sql))
}

/// Someone allowed to read the audit log: the owner or a data officer.
pub enum Officer {
    /// The owner's admin token.
    Owner,
    /// A participant with a `data_officer` credential of this connector.
    Credential(String),
}

impl Officer {
    /// Notes in the service log who read what (the audit log itself records
    /// only data use, not its own reading).
    fn reads(&self, what: &str) {
        match self {
            Self::Owner => tracing::info!(officer = "owner", "audit {what}"),
            Self::Credential(id) => tracing::info!(officer = %id, "audit {what}"),
        }
    }
}

fn unauthorized() -> ApiError {
    ApiError::client(
        StatusCode::UNAUTHORIZED,
        format!(
            "the owner's admin token, or a request token with a data officer credential (`{CREDENTIAL_HEADER}`), is required"
        ),
        None,
    )
}

impl FromRequestParts<Arc<Connector>> for Officer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        connector: &Arc<Connector>,
    ) -> std::result::Result<Self, Self::Rejection> {
        let admin = bearer(parts).is_some_and(|token| connector.is_admin(token));
        if admin {
            return Ok(Self::Owner);
        }
        if bearer(parts).is_none() || !parts.headers.contains_key(CREDENTIAL_HEADER) {
            connector
                .refuse_access(AccessReason::AdminToken, peer(parts), None)
                .await;
            return Err(unauthorized());
        }
        let Caller(caller) = Caller::from_request_parts(parts, connector).await?;
        if is_officer_of(&caller.credential, connector.id()) {
            Ok(Self::Credential(caller.participant_id))
        } else {
            connector
                .refuse_access(
                    AccessReason::NotOfficer,
                    peer(parts),
                    Some(&caller.participant_id),
                )
                .await;
            Err(ApiError::client(
                StatusCode::FORBIDDEN,
                format!(
                    "forbidden: the audit log of `{}` is open to its owner and its data officers only",
                    connector.id()
                ),
                None,
            ))
        }
    }
}

/// Query parameters of the `/audit/...` endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    kind: Option<String>,
    counterparty: Option<String>,
    dataset: Option<String>,
    agreement: Option<String>,
    purpose: Option<String>,
    decision: Option<String>,
    rule: Option<String>,
    cursor: Option<u64>,
    limit: Option<usize>,
    order: Option<Order>,
    bucket: Option<Bucket>,
    format: Option<ExportFormat>,
}

impl Params {
    fn filter(&self) -> AuditFilter {
        AuditFilter {
            from: self.from,
            to: self.to,
            kind: self.kind.clone(),
            counterparty: self.counterparty.clone(),
            dataset: self.dataset.clone(),
            agreement: self.agreement.clone(),
            purpose: self.purpose.clone(),
            decision: self.decision.clone(),
            rule: self.rule.clone(),
        }
    }
}

/// [`Params`] from the query string, refused as this API's JSON errors.
struct ApiQuery(Params);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> std::result::Result<Self, Self::Rejection> {
        Query::<Params>::try_from_uri(&parts.uri)
            .map(|Query(params)| Self(params))
            .map_err(|e| {
                ApiError::client(
                    StatusCode::BAD_REQUEST,
                    format!("invalid query parameters: {}", e.body_text()),
                    None,
                )
            })
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ExportFormat {
    #[default]
    Jsonl,
    Parquet,
}

/// Runs blocking work on the blocking pool.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Storage(format!("an audit reader stopped: {e}")))?
}

fn store(c: &Connector) -> Arc<dyn AuditStore> {
    Arc::clone(c.audit().store())
}

async fn records(
    State(c): State<Arc<Connector>>,
    officer: Officer,
    ApiQuery(params): ApiQuery,
) -> Api<ApiJson<Value>> {
    officer.reads("records");
    let store = store(&c);
    let filter = params.filter();
    let request = PageRequest {
        cursor: params.cursor,
        limit: params.limit,
        order: params.order.unwrap_or_default(),
    };
    let page = blocking(move || list_records(store.as_ref(), &filter, request)).await?;
    Ok(ApiJson(json!(page)))
}

async fn verify(State(c): State<Arc<Connector>>, officer: Officer) -> Api<ApiJson<Value>> {
    officer.reads("verify");
    let store = store(&c);
    let signer = c.key().public_key();
    let head_path = c.audit.head_path().map(ToOwned::to_owned);
    let report = blocking(move || {
        let check = || -> crate::audit::Result<crate::audit::VerifyReport> {
            // The head is read first: the log read after it is at least as long.
            let head = head_path.map(|path| crate::audit::read_head(&path, &signer));
            let mut report = crate::audit::verify(store.as_ref(), &signer)?;
            if let (None, Some(head)) = (&report.first_broken, &head) {
                report.first_broken =
                    crate::audit::check_head(store.as_ref(), head, &report, true)?;
            }
            Ok(report)
        };
        check().map_err(crate::Error::from)
    })
    .await?;
    let mut body = json!(report);
    body["intact"] = json!(report.is_intact());
    body["summary"] = json!(report.to_string());
    Ok(ApiJson(body))
}

async fn usage(
    State(c): State<Arc<Connector>>,
    officer: Officer,
    ApiQuery(params): ApiQuery,
) -> Api<ApiJson<Value>> {
    officer.reads("usage");
    let store = store(&c);
    let filter = params.filter();
    let bucket = params.bucket.unwrap_or_default();
    let report = blocking(move || usage_figures(store.as_ref(), &filter, bucket)).await?;
    Ok(ApiJson(json!(report)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SqlBody {
    sql: String,
}

async fn sql(
    State(c): State<Arc<Connector>>,
    officer: Officer,
    ApiJson(body): ApiJson<SqlBody>,
) -> Api<ApiJson<Value>> {
    officer.reads("sql");
    let answer = run_audit_sql(store(&c), &body.sql, SqlLimits::default()).await?;
    Ok(ApiJson(json!(answer)))
}

async fn export(
    State(c): State<Arc<Connector>>,
    officer: Officer,
    ApiQuery(params): ApiQuery,
) -> Api<Response> {
    officer.reads("export");
    let store = store(&c);
    let filter = params.filter();
    match params.format.unwrap_or_default() {
        ExportFormat::Parquet => {
            let file = blocking(move || export_parquet(store.as_ref(), &filter)).await?;
            Ok(attachment(
                "application/vnd.apache.parquet",
                "audit.parquet",
                Body::from(file),
            ))
        }
        ExportFormat::Jsonl => {
            let chunks =
                futures::stream::unfold(Some(JsonLinesExport::new(filter)), move |state| {
                    let store = Arc::clone(&store);
                    async move {
                        let mut export = state?;
                        let next = blocking(move || {
                            let chunk = export.next_chunk(store.as_ref());
                            Ok((chunk, export))
                        })
                        .await;
                        match next {
                            Ok((Ok(Some(chunk)), export)) => {
                                Some((Ok::<_, Error>(Bytes::from(chunk)), Some(export)))
                            }
                            Ok((Ok(None), _)) => None,
                            Ok((Err(e), _)) | Err(e) => {
                                tracing::error!("the audit export stopped: {e}");
                                Some((Err(e), None))
                            }
                        }
                    }
                });
            Ok(attachment(
                "application/x-ndjson",
                "audit.jsonl",
                Body::from_stream(chunks),
            ))
        }
    }
}

fn attachment(content_type: &'static str, name: &'static str, body: Body) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The dashboard's content security policy: its own script and style only,
/// calls to this connector only, no frames, no inline script.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn page() -> Response {
    asset("text/html; charset=utf-8", include_str!("officer.html"))
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", include_str!("officer.js"))
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", include_str!("officer.css"))
}
