//! Every refusal audited, through the real HTTP service: forged and
//! missing tokens (`access_refused`, never the token's text), a flood of
//! bad tokens within the rate limit with the rest counted, dry runs
//! (`query_checked`), refused negotiations naming their rule.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::{Duration, Instant};

use connector::audit::AuditRecord;
use connector::client::HttpClient;
use hyper::Method;
use policy::document::hash_bytes;
use policy::token::issue_request_token;
use serde_json::json;
use support::{COUNT_SQL, OFFER, World, audit_records, contracted, provider, send_with_token};

fn of_kind<'a>(records: &'a [AuditRecord], kind: &str) -> Vec<&'a AuditRecord> {
    records.iter().filter(|r| r.kind.as_str() == kind).collect()
}

/// `POST /query` at the provider with this exact token and credential.
async fn post_query(url: &str, token: &str, credential: &str, body: &serde_json::Value) -> u16 {
    let body = Some(body.to_string().into_bytes());
    let url = format!("{url}/query");
    send_with_token(Method::POST, &url, token, credential, body)
        .await
        .status
        .as_u16()
}

/// The count of unrecorded refusals a record's detail names
/// (`...; 37 more refusals for this reason ...`).
fn suppressed_in(record: &AuditRecord) -> u64 {
    let detail = record.detail.as_deref().unwrap_or_default();
    detail
        .split("; ")
        .find_map(|part| part.split_once(" more refusals"))
        .map_or(0, |(count, _)| count.trim().parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_missing_tokens_are_audited_without_their_text() {
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
    let credential = consumer.connector.credential().to_owned();
    let body = json!({ "agreement": contract.agreement.jws(), "sql": COUNT_SQL });

    // A real token whose payload was altered: the signature fails.
    let now = chrono::Utc::now().timestamp();
    let token = issue_request_token(
        consumer.connector.key(),
        "sme-south",
        "platform-north",
        now,
        60,
    )
    .unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let other = issue_request_token(
        consumer.connector.key(),
        "sme-south",
        "platform-north",
        now,
        61,
    )
    .unwrap();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        other.split('.').nth(1).unwrap(),
        parts[2]
    );
    assert_eq!(
        post_query(&provider.url, &forged, &credential, &body).await,
        401
    );
    // No token at all.
    let reply = HttpClient::new()
        .send(
            Method::POST,
            &format!("{}/query", provider.url),
            &[],
            Some(body.to_string().into_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 401);
    // A wrong admin token.
    let reply = HttpClient::new()
        .send(
            Method::GET,
            &format!("{}/admin/datasets", provider.url),
            &[("authorization", "Bearer adm-not-the-owner")],
            None,
        )
        .await
        .unwrap();
    assert_eq!(reply.status, 401);

    let all = audit_records(&provider);
    let refused = of_kind(&all, "access_refused");
    let rules: Vec<&str> = refused.iter().filter_map(|r| r.rule.as_deref()).collect();
    for rule in ["token_signature", "token_missing", "admin_token"] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
    let signature = refused
        .iter()
        .find(|r| r.rule.as_deref() == Some("token_signature"))
        .unwrap();
    assert_eq!(signature.decision.as_deref(), Some("refused"));
    let detail = signature.detail.as_deref().unwrap();
    assert!(detail.contains("signature does not verify"), "{detail}");
    assert!(detail.contains("127.0.0.1"), "{detail}");
    // Nothing of the tokens is in the log: neither whole nor any part.
    let log = serde_json::to_string(&all).unwrap();
    for text in [
        forged.as_str(),
        parts[0],
        parts[1],
        parts[2],
        "adm-not-the-owner",
    ] {
        assert!(!log.contains(text), "the log holds token text `{text}`");
    }
    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_bad_tokens_writes_at_most_the_rate_limit_and_counts_the_rest() {
    let world = World::new();
    let provider = provider(&world, |_| {}).await;
    let per_second = u64::from(provider.connector.config().refusal_records_per_sec);
    let before = audit_records(&provider).len();
    let url = provider.url.clone();
    let started = Instant::now();
    let senders: Vec<_> = (0..8)
        .map(|s| {
            let url = url.clone();
            tokio::spawn(async move {
                for i in 0..125 {
                    let status =
                        post_query(&url, &format!("bad-{s}-{i}"), "no-credential", &json!({}))
                            .await;
                    assert_eq!(status, 401);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let elapsed = started.elapsed();
    let all = audit_records(&provider);
    let flood: Vec<&AuditRecord> = all[before..]
        .iter()
        .filter(|r| r.rule.as_deref() == Some("token_malformed"))
        .collect();
    // At most `per_second` records in each one-second window, counted from
    // the first refusal: the windows the flood lasted, plus one.
    let windows = elapsed.as_secs() + 1;
    assert!(
        !flood.is_empty() && flood.len() as u64 <= per_second * windows,
        "{} records for 1,000 refusals in {elapsed:?}",
        flood.len()
    );
    assert_eq!(
        all.len() - before,
        flood.len(),
        "only refusals were recorded"
    );

    // After the window, the next refusal's record carries the count of the
    // refusals not recorded: together, every one of the 1,001.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(post_query(&url, "bad-last", "x", &json!({})).await, 401);
    let all = audit_records(&provider);
    let flood: Vec<&AuditRecord> = all[before..]
        .iter()
        .filter(|r| r.rule.as_deref() == Some("token_malformed"))
        .collect();
    let counted: u64 = flood.iter().map(|r| 1 + suppressed_in(r)).sum();
    assert_eq!(counted, 1001);
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_and_refused_negotiations_are_audited() {
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;

    // A purpose the policy does not list: refused, and the rule named.
    let wrong = consumer
        .connector
        .negotiate(&provider.url, OFFER, "marketing", Duration::from_secs(1))
        .await;
    assert!(wrong.is_err());
    assert_eq!(provider.last_rule().as_deref(), Some("purpose"));

    let peer = consumer.peer();
    let url = format!("{}/query/check", provider.url);
    for sql in [
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site",
        "SELECT operator_name FROM telemetry",
    ] {
        let body = json!({ "agreement": contract.agreement.jws(), "sql": sql });
        let reply = peer
            .call(Method::POST, &url, "platform-north", Some(&body))
            .await
            .unwrap();
        assert_eq!(reply.status, 200);
    }

    let all = audit_records(&provider);
    let requested = of_kind(&all, "contract_requested");
    let refusal = requested
        .iter()
        .find(|r| r.decision.as_deref() == Some("refused"))
        .expect("the refused contract request has a record");
    assert_eq!(refusal.rule.as_deref(), Some("purpose"));
    assert_eq!(refusal.counterparty.as_deref(), Some("sme-south"));

    let checked = of_kind(&all, "query_checked");
    assert_eq!(checked.len(), 2, "{checked:?}");
    assert_eq!(checked[0].decision.as_deref(), Some("accepted"));
    assert_eq!(
        (checked[1].decision.as_deref(), checked[1].rule.as_deref()),
        (Some("refused"), Some("denied_column"))
    );
    for record in &checked {
        assert_eq!(record.agreement.as_deref(), Some(contract.id.as_str()));
        let sql = record.sql.as_deref().unwrap();
        assert_eq!(
            record.sql_hash.as_deref(),
            Some(hash_bytes(sql.as_bytes()).as_str())
        );
    }
    // The officer's filters find the new kinds.
    let (status, body) = provider
        .admin(Method::GET, "/audit/records?kind=query_checked", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"].as_array().map(Vec::len), Some(2), "{body}");
    let (status, body) = provider
        .admin(
            Method::GET,
            "/audit/records?kind=contract_requested&rule=purpose",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["records"].as_array().map(Vec::len), Some(1), "{body}");
    consumer.stop().await;
    provider.stop().await;
}
