//! The provider's connector publishes to the shared catalog whenever its
//! datasets or offers change; a consumer finds the offer there, contracts for
//! it at the endpoint the catalog names, and queries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use catalog::client::CatalogClient;
use catalog::config::CatalogConfig;
use catalog::search::SearchQuery;
use catalog::server::{RunningCatalog, open_catalog};
use hyper::Method;
use support::{World, provider, start};

async fn catalog(world: &World) -> (RunningCatalog, CatalogClient) {
    let home = world.dir.path().join("catalog");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::copy(world.authority_file(), home.join("authority.json")).unwrap();
    let config = CatalogConfig {
        authority_key: Some("authority.json".into()),
        ..CatalogConfig::default()
    };
    let opened = open_catalog(&home, &config).unwrap();
    let running = RunningCatalog::start(Arc::new(opened), "127.0.0.1:0", config.max_body_bytes)
        .await
        .unwrap();
    let client = CatalogClient::new(&running.url()).unwrap();
    (running, client)
}

fn words(q: &str) -> SearchQuery {
    SearchQuery {
        q: Some(q.to_owned()),
        ..SearchQuery::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_published_found_contracted_and_withdrawn() {
    let world = World::new();
    let (running_catalog, client) = catalog(&world).await;
    *world.catalog_url.lock().unwrap() = Some(running_catalog.url());
    let provider = provider(&world, |_| {}).await;

    let page = client.search(&words("telemetry")).await.unwrap();
    assert_eq!(page.total, 1, "{page:?}");
    let hit = &page.hits[0];
    assert_eq!(
        (hit.provider.as_str(), hit.id.as_str()),
        ("platform-north", "telemetry")
    );
    assert_eq!(hit.purposes, vec!["quality-analysis".to_owned()]);

    let shown = client.show("platform-north", "telemetry").await.unwrap();
    let description = shown.verify().unwrap();
    let d = description.payload();
    assert!(
        d.columns.iter().all(|c| c.name != "operator_name"),
        "denied columns stay unlisted"
    );
    assert!(d.columns.iter().any(|c| c.name == "temperature"));
    assert_eq!(d.row_count, 897);
    let offer = d.offers[0].payload().clone();

    // The consumer contracts at the endpoint the catalog names.
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let contract = consumer
        .contract(&offer.endpoint, &offer.id, "quality-analysis")
        .await;
    consumer.count(&contract.id).await;

    // Removing the dataset withdraws it from the catalog.
    let (status, _) = provider
        .admin(Method::DELETE, "/admin/datasets/telemetry", None)
        .await;
    assert_eq!(status, 204);
    assert_eq!(client.search(&words("telemetry")).await.unwrap().total, 0);

    consumer.stop().await;
    provider.stop().await;
    running_catalog.stop().await.unwrap();
}
