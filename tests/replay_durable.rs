//! Durable replay protection: a request token used once is refused after
//! the provider restarts on the same home, whether it was stopped cleanly
//! (in process) or killed with SIGKILL (a real `dataspace connector serve`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use connector::client::{HttpClient, Reply};
use hyper::Method;
use policy::token::issue_request_token;
use support::{Running, World, provider, serve_home, spawn_provider, start, wait_healthy};

const OFFER: &str = "telemetry_quality";
const PURPOSE: &str = "quality-analysis";

/// `GET /dsp/negotiations/{id}` at `url` with exactly this token.
async fn get_with(url: &str, id: &str, token: &str, credential: &str) -> Reply {
    let auth = format!("Bearer {token}");
    HttpClient::new()
        .send(
            Method::GET,
            &format!("{url}/dsp/negotiations/{id}"),
            &[
                ("authorization", auth.as_str()),
                ("x-dataspace-credential", credential),
            ],
            None,
        )
        .await
        .unwrap()
}

fn token_of(consumer: &Running) -> String {
    let now = chrono::Utc::now().timestamp();
    issue_request_token(
        consumer.connector.key(),
        "sme-south",
        "platform-north",
        now,
        120,
    )
    .unwrap()
}

fn assert_replayed(reply: &Reply) {
    let body = String::from_utf8_lossy(&reply.body);
    assert_eq!(reply.status, 401, "{body}");
    assert!(body.contains("already used"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_token_is_refused_after_a_restart() {
    let world = World::new();
    let provider = provider(&world, |_| {}).await;
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let contract = consumer.contract(&provider.url, OFFER, PURPOSE).await;
    let credential = consumer.connector.credential().to_owned();
    let token = token_of(&consumer);
    let first = get_with(&provider.url, &contract.id, &token, &credential).await;
    assert_eq!(
        first.status,
        200,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_replayed(&get_with(&provider.url, &contract.id, &token, &credential).await);

    let (home, url) = (provider.home.clone(), provider.url.clone());
    provider.stop().await;
    let listener = tokio::net::TcpListener::bind(url.trim_start_matches("http://"))
        .await
        .unwrap();
    let provider = serve_home(home, listener).await;
    assert_replayed(&get_with(&provider.url, &contract.id, &token, &credential).await);
    // A fresh token still works.
    let fresh = get_with(
        &provider.url,
        &contract.id,
        &token_of(&consumer),
        &credential,
    )
    .await;
    assert_eq!(fresh.status, 200);
    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_used_token_is_refused_after_the_provider_is_killed() {
    let world = World::new();
    let in_process = provider(&world, |_| {}).await;
    let (home, url) = (in_process.home.clone(), in_process.url.clone());
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let contract = consumer.contract(&url, OFFER, PURPOSE).await;
    in_process.stop().await;
    let credential = consumer.connector.credential().to_owned();

    let mut child = spawn_provider(&home);
    wait_healthy(&url).await;
    let tokens: Vec<String> = (0..20).map(|_| token_of(&consumer)).collect();
    for token in &tokens {
        let reply = get_with(&url, &contract.id, token, &credential).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    // SIGKILL right after the last answer: nothing runs at exit.
    child.kill().unwrap();
    let _ = child.wait();

    let mut child = spawn_provider(&home);
    wait_healthy(&url).await;
    for token in &tokens {
        assert_replayed(&get_with(&url, &contract.id, token, &credential).await);
    }
    child.kill().unwrap();
    let _ = child.wait();
    consumer.stop().await;
}
