//! Router tests without a socket: bad input gets a clear 4xx JSON error.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use catalog::sample::SampleProvider;
use catalog::store::MemoryStore;
use catalog::{Catalog, CatalogSettings, api};
use chrono::Utc;
use policy::credential::Authority;
use policy::keys::KeyPair;
use serde_json::{Value, json};
use tower::ServiceExt;

const LIMIT: usize = 64 * 1024;

struct Fixture {
    authority: Authority,
    provider: SampleProvider,
    app: Router,
}

fn fixture() -> Fixture {
    let authority = Authority::new("authority", KeyPair::generate().unwrap());
    let catalog = Catalog::open(
        Arc::new(MemoryStore::new()),
        authority.trusted(),
        CatalogSettings::default(),
    )
    .unwrap();
    let provider = SampleProvider::new("platform-north").unwrap();
    let credential = authority
        .issue(&provider.membership(), Utc::now().timestamp(), 3600)
        .unwrap();
    catalog.register(&credential).unwrap();
    let app = api::router(Arc::new(catalog), LIMIT);
    Fixture {
        authority,
        provider,
        app,
    }
}

async fn send(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header(header::CONTENT_TYPE, "application/json");
    }
    let request = request
        .body(Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, content_type, value)
}

/// Asserts a JSON error with `status` whose message mentions `needle`.
async fn expect_error(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    status: StatusCode,
    needle: &str,
) -> Value {
    let (got, content_type, value) = send(app, method, uri, body).await;
    assert_eq!(got, status, "{method} {uri}: {value}");
    assert_eq!(
        content_type.as_deref(),
        Some("application/json"),
        "{method} {uri}"
    );
    let message = value["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no `error` in {value}"));
    assert!(
        message.contains(needle),
        "{method} {uri}: `{message}` lacks `{needle}`"
    );
    assert!(
        !message.contains("Error {") && !message.contains("::"),
        "internal text leaked: {message}"
    );
    value
}

#[tokio::test]
async fn health_answers() {
    let f = fixture();
    let (status, _, value) = send(&f.app, "GET", "/healthz", None).await;
    assert_eq!((status, value), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn malformed_and_mistyped_bodies_are_4xx() {
    let f = fixture();
    let app = &f.app;
    let cases = [
        (
            "/datasets",
            "{not json",
            StatusCode::BAD_REQUEST,
            "invalid request body",
        ),
        (
            "/datasets",
            r#"{"description": 5}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "description",
        ),
        (
            "/datasets",
            r#"{"jws": "x"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "jws",
        ),
        (
            "/datasets",
            r#"{"description": "not.a.jws"}"#,
            StatusCode::BAD_REQUEST,
            "malformed",
        ),
        (
            "/participants",
            "[]",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
        ),
    ];
    for (uri, body, status, needle) in cases {
        expect_error(app, "POST", uri, Some(body), status, needle).await;
    }
    let (status, _, _) = send(app, "POST", "/datasets", None).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let f = fixture();
    let body = json!({"description": "x".repeat(LIMIT + 1)}).to_string();
    let value = expect_error(
        &f.app,
        "POST",
        "/datasets",
        Some(&body),
        StatusCode::PAYLOAD_TOO_LARGE,
        "larger than the limit",
    )
    .await;
    assert_eq!(value["field"], "body");
    // The unread rest of the body ends the connection, and the reply says so.
    let request = Request::builder()
        .method("POST")
        .uri("/datasets")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = f.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.headers().get(header::CONNECTION).unwrap(), "close");
}

#[tokio::test]
async fn unknown_things_are_404() {
    let f = fixture();
    let app = &f.app;
    let not_found = StatusCode::NOT_FOUND;
    let cases = [
        (
            "GET",
            "/datasets/platform-north/missing",
            not_found,
            "`platform-north/missing`",
        ),
        ("GET", "/participants/nobody", not_found, "`nobody`"),
        ("GET", "/providers/nobody/openness", not_found, "`nobody`"),
        (
            "GET",
            "/providers/nobody/openness.html",
            not_found,
            "`nobody`",
        ),
        ("GET", "/no/such/endpoint", not_found, "no such endpoint"),
        (
            "PUT",
            "/healthz",
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed",
        ),
    ];
    for (method, uri, status, needle) in cases {
        expect_error(app, method, uri, None, status, needle).await;
    }
    let request = f.provider.unpublish("missing", 1).unwrap();
    let body = json!({"request": request.jws()}).to_string();
    expect_error(
        app,
        "DELETE",
        "/datasets/platform-north/missing",
        Some(&body),
        StatusCode::NOT_FOUND,
        "missing",
    )
    .await;
}

#[tokio::test]
async fn bad_search_parameters_name_the_problem() {
    let f = fixture();
    let app = &f.app;
    let value = expect_error(
        app,
        "GET",
        "/datasets?limit=abc",
        None,
        StatusCode::BAD_REQUEST,
        "limit",
    )
    .await;
    assert_eq!(value["field"], "query");
    let value = expect_error(
        app,
        "GET",
        "/datasets?limit=1000",
        None,
        StatusCode::BAD_REQUEST,
        "between 1 and 100",
    )
    .await;
    assert_eq!(value["field"], "limit");
    expect_error(
        app,
        "GET",
        "/datasets?access=everything",
        None,
        StatusCode::BAD_REQUEST,
        "everything",
    )
    .await;
    expect_error(
        app,
        "GET",
        "/datasets?colour=red",
        None,
        StatusCode::BAD_REQUEST,
        "colour",
    )
    .await;
    let (status, _, value) = send(app, "GET", "/datasets?q=anything&limit=5", None).await;
    assert_eq!(
        (status, value["total"].as_u64(), value["limit"].as_u64()),
        (StatusCode::OK, Some(0), Some(5))
    );
}

#[tokio::test]
async fn untrusted_credentials_and_unsigned_documents_are_refused() {
    let f = fixture();
    let rogue = Authority::new("authority", KeyPair::generate().unwrap());
    let stranger = SampleProvider::new("mallory").unwrap();
    let credential = rogue
        .issue(&stranger.membership(), Utc::now().timestamp(), 3600)
        .unwrap();
    let body = json!({"credential": credential}).to_string();
    expect_error(
        &f.app,
        "POST",
        "/participants",
        Some(&body),
        StatusCode::UNAUTHORIZED,
        "membership credential",
    )
    .await;

    let description = f
        .provider
        .description("telemetry", "Telemetry", &[])
        .unwrap();
    let plain = json!({"description": serde_json::to_string(&description).unwrap()}).to_string();
    expect_error(
        &f.app,
        "POST",
        "/datasets",
        Some(&plain),
        StatusCode::BAD_REQUEST,
        "malformed dataset description",
    )
    .await;
    let body = json!({"request": "a.b.c"}).to_string();
    expect_error(
        &f.app,
        "DELETE",
        "/datasets/platform-north/telemetry",
        Some(&body),
        StatusCode::BAD_REQUEST,
        "unpublish request",
    )
    .await;

    let good = f
        .authority
        .issue(&stranger.membership(), Utc::now().timestamp(), 3600)
        .unwrap();
    let (status, _, value) = send(
        &f.app,
        "POST",
        "/participants",
        Some(&json!({"credential": good}).to_string()),
    )
    .await;
    assert_eq!(
        (status, value["id"].as_str()),
        (StatusCode::CREATED, Some("mallory"))
    );
}

#[tokio::test]
async fn publication_answers_201_then_200_and_html_is_escaped() {
    let f = fixture();
    let mut description = f
        .provider
        .description(
            "telemetry",
            "<script>alert('x')</script> & co",
            &["spindle"],
        )
        .unwrap();
    let body = |d| json!({"description": f.provider.sign(d).unwrap().jws()}).to_string();
    let app = &f.app;
    let publish = |d| {
        let body = body(d);
        async move { send(app, "POST", "/datasets", Some(&body)).await }
    };
    let (status, _, receipt) = publish(description.clone()).await;
    assert_eq!(
        (status, receipt["version"].as_u64()),
        (StatusCode::CREATED, Some(1))
    );
    description.version = 2;
    let (status, _, receipt) = publish(description.clone()).await;
    assert_eq!(
        (status, receipt["replaced"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    expect_error(
        &f.app,
        "POST",
        "/datasets",
        Some(&body(description)),
        StatusCode::CONFLICT,
        "not above version 2",
    )
    .await;

    let response = f
        .app
        .clone()
        .oneshot(
            Request::get("/providers/platform-north/openness.html")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(
        response.headers()[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = String::from_utf8(
        to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"),
        "{html}"
    );
    assert!(!html.contains("<script") && !html.contains("src=") && !html.contains("href="));

    let (status, content_type, dcat) = send(&f.app, "GET", "/.well-known/dcat", None).await;
    assert_eq!(
        (status, content_type.as_deref()),
        (StatusCode::OK, Some("application/ld+json"))
    );
    assert_eq!(dcat["@type"], "dcat:Catalog");
}
