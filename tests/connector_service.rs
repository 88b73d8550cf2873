//! A provider and a consumer connector on loopback, with an authority:
//! register, offer, negotiate, query (answered with the right numbers, and
//! refused), revoke, quotas under concurrency, hostile tokens and agreements,
//! and the audit chain.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use connector::Error;
use connector::answer::{AnswerFormat, from_arrow_stream};
use connector::casefile::compare_results;
use connector::client::HttpClient;
use datafusion::prelude::{CsvReadOptions, SessionContext};
use hyper::Method;
use policy::token::issue_request_token;
use serde_json::json;
use support::{
    COUNT_SQL, OFFER, PURPOSE, World, contracted, provider, send_with_token, shared, start,
};

async fn raw(sql: &str) -> Vec<datafusion::arrow::record_batch::RecordBatch> {
    let ctx = SessionContext::new();
    ctx.register_csv(
        "telemetry",
        shared("telemetry.csv").to_str().unwrap(),
        CsvReadOptions::new(),
    )
    .await
    .unwrap();
    ctx.sql(sql).await.unwrap().collect().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiate_query_refuse_revoke_and_verify() {
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
    assert_eq!(contract.agreement.payload().dataset, "telemetry");

    // Answered, with the numbers of the policy's semantics.
    let sql = "SELECT site, count(*) AS n, avg(temperature) AS t FROM telemetry GROUP BY site";
    let answer = consumer.ask(&contract.id, sql, AnswerFormat::Arrow).await;
    let got = from_arrow_stream(&answer.body).unwrap();
    let expected = raw(
        "SELECT site, count(*) AS n, avg(temperature) AS t FROM telemetry WHERE site <> 'secret-plant' \
         GROUP BY site HAVING count(*) >= 5 AND count(DISTINCT machine_id) >= 5",
    )
    .await;
    compare_results(&got, &expected, false).unwrap();
    assert_eq!(
        answer.receipt.payload().rows,
        expected.iter().map(|b| b.num_rows() as u64).sum::<u64>()
    );
    assert_eq!(consumer.connector.receipts(&contract.id).unwrap().len(), 1);

    // JSON for people.
    let json_answer = consumer
        .ask(
            &contract.id,
            "SELECT count(*) AS n FROM telemetry",
            AnswerFormat::Json,
        )
        .await;
    let rows: serde_json::Value = serde_json::from_slice(&json_answer.body).unwrap();
    assert_eq!(rows[0]["n"], 777);

    // Refused, with the rule, and without data values.
    let refused = consumer
        .connector
        .query_remote(&contract.id, "SELECT * FROM telemetry", AnswerFormat::Arrow)
        .await
        .unwrap_err();
    assert_eq!(provider.last_rule().as_deref(), Some("denied_column"));
    assert!(refused.to_string().contains("denied_column"), "{refused}");
    assert!(!refused.to_string().contains("Amara"), "{refused}");

    // The dry run says what would happen, reading no rows.
    let peer = consumer.peer();
    let check = |sql: &str| json!({ "agreement": contract.agreement.jws(), "sql": sql });
    let url = format!("{}/query/check", provider.url);
    let accepted = peer
        .call(Method::POST, &url, "platform-north", Some(&check(sql)))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(accepted["decision"], "accepted");
    assert!(
        accepted["plan"]
            .as_str()
            .unwrap()
            .contains("__dataspace_entities")
    );
    let refused = peer
        .call(
            Method::POST,
            &url,
            "platform-north",
            Some(&check("SELECT operator_name FROM telemetry")),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        (refused["decision"].as_str(), refused["rule"].as_str()),
        (Some("refused"), Some("denied_column"))
    );

    // Revocation takes effect for the very next query.
    let (status, body) = provider
        .admin(
            Method::POST,
            &format!("/admin/agreements/{}/revoke", contract.id),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = consumer
        .connector
        .query_remote(&contract.id, sql, AnswerFormat::Arrow)
        .await;
    assert!(after.is_err());
    assert_eq!(provider.last_rule().as_deref(), Some("revoked"));

    // The provider's audit chain verifies and holds every decision.
    let signer = provider.connector.key().public_key();
    let report =
        connector::audit::verify(provider.connector.audit().store().as_ref(), &signer).unwrap();
    assert!(report.first_broken.is_none(), "{report}");
    let records = provider.connector.audit().store().range(0, 1000).unwrap();
    let kinds: Vec<String> = records.iter().map(|r| r.kind.to_string()).collect();
    for kind in [
        "start",
        "agreement_offered",
        "agreement_finalized",
        "query_answered",
        "query_refused",
        "agreement_revoked",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "{kind} missing from {kinds:?}"
        );
    }
    let refusal = records
        .iter()
        .find(|r| r.rule.as_deref() == Some("denied_column"))
        .unwrap();
    assert_eq!(refusal.purpose.as_deref(), Some(PURPOSE));
    assert_eq!(refusal.counterparty.as_deref(), Some("sme-south"));

    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_queries_never_overspend_the_quota() {
    let world = World::new();
    let (provider, consumer, contract) =
        contracted(&world, |p| p["limits"]["max_queries"] = json!(20)).await;
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let c = Arc::clone(&consumer.connector);
            let id = contract.id.clone();
            tokio::spawn(async move { c.query_remote(&id, COUNT_SQL, AnswerFormat::Arrow).await })
        })
        .collect();
    let mut answered = 0;
    for task in tasks {
        if task.await.unwrap().is_ok() {
            answered += 1;
        }
    }
    // Every query not answered was refused for its quota, and audited so.
    let quota = support::audit_records(&provider)
        .iter()
        .filter(|r| r.rule.as_deref() == Some("quota"))
        .count();
    assert_eq!((answered, quota), (20, 12));
    assert_eq!(provider.connector.queries_used(&contract.id).unwrap(), 20);

    // The charges survive a restart: they are rebuilt from the audit log.
    let provider = provider.restart().await;
    assert_eq!(provider.connector.queries_used(&contract.id).unwrap(), 20);
    let again = consumer
        .connector
        .query_remote(&contract.id, COUNT_SQL, AnswerFormat::Arrow)
        .await;
    assert!(again.is_err());
    assert_eq!(provider.last_rule().as_deref(), Some("quota"));
    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tokens_agreements_and_bodies_are_refused() {
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
    let http = HttpClient::new();
    let key = consumer.connector.key();
    let credential = consumer.connector.credential().to_owned();
    let body = json!({ "agreement": contract.agreement.jws(), "sql": COUNT_SQL })
        .to_string()
        .into_bytes();
    let now = chrono::Utc::now().timestamp();
    let url = format!("{}/query", provider.url);
    let post = |token: String, body: Vec<u8>| {
        let (url, credential) = (url.clone(), credential.clone());
        async move { send_with_token(Method::POST, &url, &token, &credential, Some(body)).await }
    };

    let good = issue_request_token(key, "sme-south", "platform-north", now, 60).unwrap();
    assert_eq!(post(good.clone(), body.clone()).await.status, 200);
    let replayed = post(good, body.clone()).await;
    assert_eq!(replayed.status, 401);
    assert_eq!(provider.last_rule().as_deref(), Some("token_replayed"));

    let expired = issue_request_token(key, "sme-south", "platform-north", now - 1000, 60).unwrap();
    assert_eq!(post(expired, body.clone()).await.status, 401);
    let other_audience = issue_request_token(key, "sme-south", "someone-else", now, 60).unwrap();
    assert_eq!(post(other_audience, body.clone()).await.status, 401);
    let stranger = policy::keys::KeyPair::generate().unwrap();
    let forged = issue_request_token(&stranger, "sme-south", "platform-north", now, 60).unwrap();
    assert_eq!(post(forged, body.clone()).await.status, 401);

    // A tampered agreement: change the payload, keep the signature.
    let jws = contract.agreement.jws();
    let parts: Vec<&str> = jws.split('.').collect();
    use base64::Engine as _;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(engine.decode(parts[1]).unwrap())
        .unwrap()
        .replace(PURPOSE, "anything");
    let tampered = format!("{}.{}.{}", parts[0], engine.encode(payload), parts[2]);
    let tampered_body = json!({ "agreement": tampered, "sql": COUNT_SQL })
        .to_string()
        .into_bytes();
    let token = issue_request_token(key, "sme-south", "platform-north", now, 60).unwrap();
    let reply = post(token, tampered_body).await;
    assert!(
        matches!(reply.status.as_u16(), 401 | 403),
        "{}",
        reply.status
    );

    // Another participant presents the agreement (already used, so the
    // provider has verified it before): refused, with its own credential.
    let thief = start(&world, "sme-east", vec![], "sme").await;
    let token =
        issue_request_token(thief.connector.key(), "sme-east", "platform-north", now, 60).unwrap();
    let credential = thief.connector.credential();
    let reply = send_with_token(Method::POST, &url, &token, credential, Some(body.clone())).await;
    assert_eq!(reply.status, 403);
    assert!(String::from_utf8_lossy(&reply.body).contains("another participant"));
    thief.stop().await;

    // Malformed JSON and oversized bodies get JSON errors; nothing changes.
    let token = issue_request_token(key, "sme-south", "platform-north", now, 60).unwrap();
    let reply = post(token, b"{not json".to_vec()).await;
    assert_eq!(reply.status, 400);
    assert!(serde_json::from_slice::<serde_json::Value>(&reply.body).unwrap()["error"].is_string());
    let token = issue_request_token(key, "sme-south", "platform-north", now, 60).unwrap();
    let reply = post(token, vec![b' '; 2 << 20]).await;
    assert_eq!(reply.status, 413);
    // The unread rest of the body ends the connection; the reply says so,
    // so the pooled client does not reuse it for the next request.
    assert_eq!(reply.header("connection"), Some("close"));

    // Owner endpoints need the admin token; paths outside the data roots are refused.
    let reply = http
        .send(
            Method::GET,
            &format!("{}/admin/datasets", provider.url),
            &[],
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    let (status, body) = provider
        .admin(
            Method::POST,
            "/admin/datasets",
            Some(json!({ "id": "passwd", "path": "/etc/passwd" })),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = provider
        .admin(
            Method::POST,
            "/admin/datasets",
            Some(json!({ "id": "x", "path": "/etc/../etc/passwd" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = provider.admin(Method::GET, "/admin/datasets", None).await;
    assert_eq!(
        (status, body["datasets"].as_array().map(Vec::len)),
        (200, Some(1))
    );

    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_approval_waits_for_the_owner() {
    let world = World::new();
    let provider = provider(&world, |_| {}).await;
    let provider = support::reconfigure(provider, "approval", "\"manual\"").await;
    let consumer = start(&world, "sme-south", vec![], "sme").await;
    let waiting = consumer
        .connector
        .negotiate(&provider.url, OFFER, PURPOSE, Duration::from_millis(300))
        .await;
    assert!(waiting.unwrap_err().to_string().contains("REQUESTED"));
    let (_, list) = provider
        .admin(Method::GET, "/admin/negotiations", None)
        .await;
    let id = list["negotiations"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = provider
        .admin(
            Method::POST,
            &format!("/admin/negotiations/{id}/reject"),
            None,
        )
        .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("TERMINATED")));

    let c = Arc::clone(&consumer.connector);
    let url = provider.url.clone();
    let pending = tokio::spawn(async move {
        c.negotiate(&url, OFFER, PURPOSE, Duration::from_secs(10))
            .await
    });
    let mut approved = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (_, list) = provider
            .admin(Method::GET, "/admin/negotiations", None)
            .await;
        let waiting: Vec<String> = list["negotiations"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "REQUESTED")
            .map(|n| n["id"].as_str().unwrap().to_owned())
            .collect();
        if let Some(id) = waiting.first() {
            let (status, _) = provider
                .admin(
                    Method::POST,
                    &format!("/admin/negotiations/{id}/approve"),
                    None,
                )
                .await;
            assert_eq!(status, 200);
            approved = true;
            break;
        }
    }
    assert!(approved);
    let contract = pending.await.unwrap().unwrap();
    consumer.count(&contract.id).await;
    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revocations_take_effect_once() {
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
    let revocations: Vec<_> = (0..8)
        .map(|i| {
            let p = Arc::clone(&provider.connector);
            let id = contract.id.clone();
            tokio::spawn(async move { p.revoke(&id, &format!("revocation {i}")).await })
        })
        .collect();
    let mut won = 0;
    for r in revocations {
        match r.await.unwrap() {
            Ok(n) => {
                won += 1;
                assert_eq!(
                    n.state,
                    connector::negotiation::NegotiationState::Terminated
                );
            }
            Err(Error::Conflict(message)) => assert!(message.contains("already terminated")),
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(won, 1);
    let store = provider.connector.audit().store();
    let records = store.range(0, 1000).unwrap();
    let revoked: Vec<_> = records
        .iter()
        .filter(|r| r.kind == connector::audit::RecordKind::AgreementRevoked)
        .collect();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0].dataset.as_deref(), Some("telemetry"));
    // The refusal of a query under the revoked agreement names what it was for.
    let refused = consumer
        .connector
        .query_remote(&contract.id, COUNT_SQL, AnswerFormat::Arrow)
        .await;
    assert!(refused.is_err());
    let last = store.last().unwrap().unwrap();
    assert_eq!(last.rule.as_deref(), Some("revoked"));
    assert_eq!(last.dataset.as_deref(), Some("telemetry"));
    assert_eq!(last.purpose.as_deref(), Some(PURPOSE));
    consumer.stop().await;
    provider.stop().await;
}
