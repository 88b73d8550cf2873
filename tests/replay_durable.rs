//! Durable replay protection: a request token used once is refused after
//! the provider restarts on the same home, whether it was stopped cleanly
//! (in process) or killed with SIGKILL (a real `dataspace connector serve`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use connector::client::Reply;
use hyper::Method;
use policy::token::issue_request_token;
use support::{Running, World, contracted, kill, send_with_token, serve_in_child};

/// `GET /dsp/negotiations/{id}` at `url` with exactly this token.
async fn get_with(url: &str, id: &str, token: &str, credential: &str) -> Reply {
    let url = format!("{url}/dsp/negotiations/{id}");
    send_with_token(Method::GET, &url, token, credential, None).await
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
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
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

    let provider = provider.restart().await;
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
    let (in_process, consumer, contract) = contracted(&world, |_| {}).await;
    let (home, url) = (in_process.home.clone(), in_process.url.clone());
    in_process.stop().await;
    let credential = consumer.connector.credential().to_owned();

    let child = serve_in_child(&home, &url).await;
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
    kill(child);

    let child = serve_in_child(&home, &url).await;
    for token in &tokens {
        assert_replayed(&get_with(&url, &contract.id, token, &credential).await);
    }
    kill(child);
    consumer.stop().await;
}
