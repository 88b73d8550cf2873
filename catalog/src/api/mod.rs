//! The catalog's HTTP API (axum): each handler extracts its inputs, calls
//! one domain function of [`Catalog`] and maps the error.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/healthz` | liveness |
//! | POST | `/participants` | register with a membership credential |
//! | GET | `/participants/{id}` | a registered participant |
//! | POST | `/datasets` | publish a signed description (201 new, 200 update) |
//! | GET | `/datasets?q=&provider=&sector=&column=&purpose=&access=&limit=&offset=` | search |
//! | GET | `/datasets/{provider}/{id}` | one dataset, with the signed description |
//! | DELETE | `/datasets/{provider}/{id}` | withdraw, with a signed request |
//! | GET | `/providers/{id}/openness` | the provider's openness list (JSON) |
//! | GET | `/providers/{id}/openness.html` | the same as an HTML page |
//! | GET | `/.well-known/dcat` | the whole catalog, DCAT 3 + ODRL, JSON-LD |
//!
//! [`kit`] and [`reply`] hold what the connector's API shares with this
//! one: the status of each error class and of each [`policy::Error`], the
//! JSON error bodies, the error type and the extractors that answer with
//! them, the `Connection: close` after an oversized body.

mod error;
pub mod kit;
pub mod reply;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

pub use self::error::error_class;
pub use self::reply::ApiError;
use self::reply::{ApiJson, ApiPath, ApiQuery};
use crate::Result;
use crate::dcat::JSON_LD;
use crate::model::{
    Participant, PublishReceipt, PublishRequest, PublishedDataset, RegisterRequest,
    UnpublishReceipt, UnpublishRequest,
};
use crate::openness::OpennessList;
use crate::search::{SearchPage, SearchQuery};
use crate::service::Catalog;

type Shared = State<Arc<Catalog>>;
type Answer<T> = std::result::Result<T, ApiError>;

/// The API over `catalog`; bodies over `max_body_bytes` get 413.
pub fn router(catalog: Arc<Catalog>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/participants", post(register))
        .route("/participants/{id}", get(participant))
        .route("/datasets", post(publish).get(search))
        .route("/datasets/{provider}/{id}", get(show).delete(unpublish))
        .route("/providers/{id}/openness", get(openness))
        .route("/providers/{id}/openness.html", get(openness_html))
        .route("/.well-known/dcat", get(dcat))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::map_response(
            kit::close_after_oversized_body,
        ))
        .with_state(catalog)
}

/// Runs a blocking domain call (signature checks, store writes) off the
/// async workers.
async fn blocking<T: Send + 'static>(
    catalog: Arc<Catalog>,
    call: impl FnOnce(&Catalog) -> Result<T> + Send + 'static,
) -> Answer<T> {
    match tokio::task::spawn_blocking(move || call(&catalog)).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(&e)),
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn register(
    State(catalog): Shared,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Answer<(StatusCode, Json<Participant>)> {
    let participant = blocking(catalog, move |c| c.register(&body.credential)).await?;
    Ok((StatusCode::CREATED, Json(participant)))
}

async fn participant(
    State(catalog): Shared,
    ApiPath(id): ApiPath<String>,
) -> Answer<Json<Participant>> {
    Ok(Json(catalog.participant(&id)?))
}

async fn publish(
    State(catalog): Shared,
    ApiJson(body): ApiJson<PublishRequest>,
) -> Answer<(StatusCode, Json<PublishReceipt>)> {
    let receipt = blocking(catalog, move |c| c.publish(&body.description)).await?;
    let status = match receipt.replaced {
        Some(_) => StatusCode::OK,
        None => StatusCode::CREATED,
    };
    Ok((status, Json(receipt)))
}

async fn search(
    State(catalog): Shared,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Answer<Json<SearchPage>> {
    Ok(Json(catalog.search(&query)?))
}

async fn show(
    State(catalog): Shared,
    ApiPath((provider, id)): ApiPath<(String, String)>,
) -> Answer<Json<PublishedDataset>> {
    Ok(Json(catalog.dataset(&provider, &id)?))
}

async fn unpublish(
    State(catalog): Shared,
    ApiPath((provider, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<UnpublishRequest>,
) -> Answer<Json<UnpublishReceipt>> {
    let receipt = blocking(catalog, move |c| c.unpublish(&provider, &id, &body.request)).await?;
    Ok(Json(receipt))
}

async fn openness(
    State(catalog): Shared,
    ApiPath(id): ApiPath<String>,
) -> Answer<Json<OpennessList>> {
    Ok(Json(catalog.openness(&id)?))
}

async fn openness_html(
    State(catalog): Shared,
    ApiPath(id): ApiPath<String>,
) -> Answer<impl IntoResponse> {
    let page = catalog.openness_html(&id)?;
    let headers = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'unsafe-inline'",
        ),
    ];
    Ok((headers, page))
}

async fn dcat(State(catalog): Shared) -> Answer<impl IntoResponse> {
    let document = blocking(catalog, Catalog::dcat).await?;
    Ok(([(header::CONTENT_TYPE, JSON_LD)], Json(document)))
}

async fn no_route() -> ApiError {
    ApiError::client(StatusCode::NOT_FOUND, "no such endpoint", None)
}

async fn method_not_allowed() -> ApiError {
    ApiError::client(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
        None,
    )
}
