//! The connector's HTTP API (axum). Handlers extract, call one domain
//! function and map the error; nothing else.

mod auth;
mod error;
mod officer;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

pub use auth::CREDENTIAL_HEADER;
use auth::{Admin, Caller};
pub use catalog::api::reply::ApiError;
use catalog::api::reply::ApiJson;

use crate::answer::{ARROW_STREAM, AnswerFormat};
use crate::datasets::DatasetSpec;
use crate::negotiation::Negotiation;
use crate::provider::QueryRequest;
use crate::service::Connector;

/// Header carrying a query's signed receipt.
pub const RECEIPT_HEADER: &str = "x-dataspace-receipt";
/// Header carrying a query's row count.
pub const ROWS_HEADER: &str = "x-dataspace-rows";

type Api<T> = Result<T, ApiError>;

/// The router of a connector.
pub fn router(connector: Arc<Connector>) -> Router {
    let limit = connector.config().max_body_bytes;
    Router::new()
        .route("/healthz", get(health))
        .route("/identity", get(identity))
        .route("/offers", get(offers))
        .route("/offers/{id}", get(offer))
        .route("/dsp/negotiations", post(request_contract))
        .route("/dsp/negotiations/{id}", get(negotiation))
        .route("/dsp/negotiations/{id}/acceptance", post(accept))
        .route("/query", post(query))
        .route("/query/check", post(check))
        .route("/admin/datasets", get(datasets).post(register_dataset))
        .route(
            "/admin/datasets/{id}",
            axum::routing::delete(remove_dataset),
        )
        .route("/admin/offers", post(create_offer))
        .route("/admin/negotiations", get(negotiations))
        .route("/admin/negotiations/{id}/approve", post(approve))
        .route("/admin/negotiations/{id}/reject", post(reject))
        .route("/admin/agreements/{id}/revoke", post(revoke))
        .merge(officer::routes())
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::map_response(
            catalog::api::kit::close_after_oversized_body,
        ))
        .with_state(connector)
}

/// A request whose body was refused as too large was not read to its end,
/// so the connection cannot carry another request: say so
/// (`Connection: close`), or a pooling client may send its next request on
/// a connection the server is closing.
async fn health(State(c): State<Arc<Connector>>) -> ApiJson<Value> {
    ApiJson(json!({ "status": "ok", "id": c.id() }))
}

async fn identity(State(c): State<Arc<Connector>>) -> ApiJson<Value> {
    ApiJson(json!({ "id": c.id(), "credential": c.credential() }))
}

async fn offers(State(c): State<Arc<Connector>>) -> Api<ApiJson<Value>> {
    let offers: Vec<Value> = c
        .offers()?
        .iter()
        .map(|o| json!({ "id": o.payload().id, "dataset": o.payload().dataset, "offer": o.jws() }))
        .collect();
    Ok(ApiJson(json!({ "offers": offers })))
}

async fn offer(State(c): State<Arc<Connector>>, Path(id): Path<String>) -> Api<ApiJson<Value>> {
    Ok(ApiJson(json!({ "offer": c.offer(&id)?.jws() })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContractBody {
    request: String,
}

fn negotiation_json(n: &Negotiation) -> Value {
    json!({
        "id": n.id,
        "state": n.state,
        "agreement": n.agreement.as_ref().map(|a| a.jws()),
        "reason": n.reason,
    })
}

async fn request_contract(
    State(c): State<Arc<Connector>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<ContractBody>,
) -> Api<Response> {
    let n = c.request_contract(&caller, &body.request).await?;
    Ok((StatusCode::CREATED, ApiJson(negotiation_json(&n))).into_response())
}

async fn negotiation(
    State(c): State<Arc<Connector>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Api<ApiJson<Value>> {
    Ok(ApiJson(negotiation_json(&c.negotiation_for(&caller, &id)?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptanceBody {
    acceptance: String,
}

async fn accept(
    State(c): State<Arc<Connector>>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AcceptanceBody>,
) -> Api<ApiJson<Value>> {
    Ok(ApiJson(negotiation_json(
        &c.accept(&caller, &id, &body.acceptance).await?,
    )))
}

async fn query(
    State(c): State<Arc<Connector>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<QueryRequest>,
) -> Api<Response> {
    let answer = c.query(&caller, &body).await?;
    let content_type = match answer.format {
        AnswerFormat::Arrow => ARROW_STREAM,
        AnswerFormat::Json => "application/json",
    };
    let headers = [
        (header::CONTENT_TYPE, content_type.to_owned()),
        (
            header::HeaderName::from_static(RECEIPT_HEADER),
            answer.receipt,
        ),
        (
            header::HeaderName::from_static(ROWS_HEADER),
            answer.rows.to_string(),
        ),
    ];
    Ok((headers, answer.body).into_response())
}

async fn check(
    State(c): State<Arc<Connector>>,
    Caller(caller): Caller,
    ApiJson(body): ApiJson<QueryRequest>,
) -> Api<ApiJson<Value>> {
    let outcome = c.check(&caller, &body).await?;
    Ok(ApiJson(serde_json::to_value(outcome).unwrap_or_default()))
}

async fn datasets(State(c): State<Arc<Connector>>, _: Admin) -> Api<ApiJson<Value>> {
    Ok(ApiJson(json!({ "datasets": c.datasets()? })))
}

async fn register_dataset(
    State(c): State<Arc<Connector>>,
    _: Admin,
    ApiJson(spec): ApiJson<DatasetSpec>,
) -> Api<Response> {
    let (dataset, publication_error) = c.register_and_publish(spec).await?;
    let mut body = json!(dataset);
    body["publication_error"] = json!(publication_error);
    Ok((StatusCode::CREATED, ApiJson(body)).into_response())
}

async fn remove_dataset(
    State(c): State<Arc<Connector>>,
    _: Admin,
    Path(id): Path<String>,
) -> Api<StatusCode> {
    c.remove_and_withdraw(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfferBody {
    id: String,
    dataset: String,
    policy: Value,
}

async fn create_offer(
    State(c): State<Arc<Connector>>,
    _: Admin,
    ApiJson(body): ApiJson<OfferBody>,
) -> Api<Response> {
    let policy = policy::model::UsagePolicy::from_json_str(&body.policy.to_string())
        .map_err(crate::Error::from)?;
    let (offer, publication_error) = c.offer_and_publish(&body.id, &body.dataset, policy).await?;
    let answer = json!({ "id": offer.payload().id, "offer": offer.jws(), "publication_error": publication_error });
    Ok((StatusCode::CREATED, ApiJson(answer)).into_response())
}

async fn negotiations(State(c): State<Arc<Connector>>, _: Admin) -> Api<ApiJson<Value>> {
    let all: Vec<Value> = c.negotiations()?.iter().map(negotiation_json).collect();
    Ok(ApiJson(json!({ "negotiations": all })))
}

async fn approve(
    State(c): State<Arc<Connector>>,
    _: Admin,
    Path(id): Path<String>,
) -> Api<ApiJson<Value>> {
    Ok(ApiJson(negotiation_json(&c.decide(&id, true).await?)))
}

async fn reject(
    State(c): State<Arc<Connector>>,
    _: Admin,
    Path(id): Path<String>,
) -> Api<ApiJson<Value>> {
    Ok(ApiJson(negotiation_json(&c.decide(&id, false).await?)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    reason: String,
}

async fn revoke(
    State(c): State<Arc<Connector>>,
    _: Admin,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Api<ApiJson<Value>> {
    let reason = if body.is_empty() {
        String::new()
    } else {
        serde_json::from_slice::<RevokeBody>(&body)
            .map_err(|e| {
                ApiError::client(
                    StatusCode::BAD_REQUEST,
                    format!("invalid request body: {e}"),
                    None,
                )
            })?
            .reason
    };
    Ok(ApiJson(negotiation_json(&c.revoke(&id, &reason).await?)))
}
