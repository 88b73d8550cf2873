//! The data officer's API on a live provider connector holding real audit
//! records (a negotiation, answered and refused queries): who may read the
//! log, filters and pages, verification (and the first tampered record),
//! exports, read-only SQL, usage figures, the dashboard's assets, and the
//! `dataspace audit` commands against the running connector.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::Arc;

use connector::answer::AnswerFormat;
use connector::audit::AuditRecord;
use connector::client::{HttpClient, PeerClient};
use connector::home::admin_token;
use hyper::Method;
use policy::credential::{Attributes, Membership};
use policy::keys::KeyPair;
use serde_json::{Value, json};
use support::{PURPOSE, Running, World, contracted, start};

/// A refused query whose text is markup: the dashboard must show it as text.
pub const HOSTILE_SQL: &str = "SELECT '<img src=x onerror=alert(1)>' AS x, * FROM telemetry";

/// A provider with records of two answered queries and one refused, and the
/// consumer that made them.
async fn provider_with_records(world: &World) -> (Running, Running) {
    let (provider, consumer, contract) = contracted(world, |_| {}).await;
    for sql in [
        "SELECT site, count(*) AS n FROM telemetry GROUP BY site",
        "SELECT count(*) AS n FROM telemetry",
    ] {
        consumer.ask(&contract.id, sql, AnswerFormat::Json).await;
    }
    let refused = consumer
        .connector
        .query_remote(&contract.id, HOSTILE_SQL, AnswerFormat::Json)
        .await;
    assert!(refused.is_err());
    assert_eq!(provider.last_rule().as_deref(), Some("denied_column"));
    (provider, consumer)
}

/// A key and a credential with `role` for `subject`, issued by the authority.
fn credential(world: &World, subject: &str, role: &str) -> PeerClient {
    let key = KeyPair::generate().unwrap();
    let mut attributes = Attributes::default();
    attributes.set("role", role).unwrap();
    let member = Membership {
        participant_id: subject.to_owned(),
        name: subject.to_owned(),
        public_key: key.public_key(),
        attributes,
    };
    let jws = world
        .authority
        .issue(&member, chrono::Utc::now().timestamp(), 3600)
        .unwrap();
    PeerClient::new(subject, &jws, Arc::new(key))
}

async fn get(client: &PeerClient, url: &str) -> (u16, Value) {
    let reply = client
        .call(Method::GET, url, "platform-north", None)
        .await
        .unwrap();
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status.as_u16(), body)
}

async fn plain(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (u16, Value) {
    let reply = HttpClient::new()
        .send(
            method,
            url,
            headers,
            body.map(|b| b.to_string().into_bytes()),
        )
        .await
        .unwrap();
    let body = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status.as_u16(), body)
}

const ENDPOINTS: [&str; 5] = [
    "/audit/records",
    "/audit/verify",
    "/audit/usage",
    "/audit/export?format=jsonl",
    "/audit/export?format=parquet",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_and_its_data_officers_read_the_log() {
    let world = World::new();
    let (provider, consumer) = provider_with_records(&world).await;
    let officer = credential(&world, "platform-north/officer", "data_officer");
    let other_officer = credential(&world, "sme-south/officer", "data_officer");
    let not_officer = credential(&world, "platform-north/analyst", "analyst");
    let participant = consumer.peer();
    for path in ENDPOINTS {
        let url = format!("{}{path}", provider.url);
        let (status, body) = plain(Method::GET, &url, &[], None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
        let (status, _) = plain(Method::GET, &url, &[("authorization", "Bearer nope")], None).await;
        assert_eq!(status, 401, "{path}");
        for (who, client) in [
            ("consumer", &participant),
            ("other's officer", &other_officer),
            ("analyst", &not_officer),
        ] {
            let (status, body) = get(client, &url).await;
            assert_eq!(status, 403, "{who} on {path}: {body}");
        }
        let (status, body) = get(&officer, &url).await;
        assert_eq!(status, 200, "officer on {path}: {body}");
        let token = format!("Bearer {}", admin_token(&provider.home).unwrap());
        let (status, _) = plain(Method::GET, &url, &[("authorization", &token)], None).await;
        assert_eq!(status, 200, "owner on {path}");
    }
    // SQL too, by POST.
    let url = format!("{}/audit/sql", provider.url);
    let body = json!({ "sql": "SELECT count(*) AS n FROM audit" });
    let (status, _) = plain(Method::POST, &url, &[], Some(body.clone())).await;
    assert_eq!(status, 401);
    let refused = participant
        .call(Method::POST, &url, "platform-north", Some(&body))
        .await
        .unwrap();
    assert_eq!(refused.status.as_u16(), 403);
    let answered = officer
        .call(Method::POST, &url, "platform-north", Some(&body))
        .await
        .unwrap()
        .json()
        .unwrap();
    assert!(
        answered["rows"][0]["n"].as_u64().unwrap() >= 7,
        "{answered}"
    );
    consumer.stop().await;
    provider.stop().await;
}

async fn admin(p: &Running, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    p.admin(method, path, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_pages_usage_sql_and_exports() {
    let world = World::new();
    let (provider, consumer) = provider_with_records(&world).await;
    let all = provider.connector.audit().store().range(0, 10_000).unwrap();

    // Filter: the one refusal, with its rule, purpose and consumer.
    let (status, page) = admin(
        &provider,
        Method::GET,
        "/audit/records?decision=refused&dataset=telemetry",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{page}");
    assert_eq!(records[0]["rule"], "denied_column");
    assert_eq!(records[0]["counterparty"], "sme-south");
    assert_eq!(records[0]["purpose"], PURPOSE);
    assert_eq!(records[0]["sql"], HOSTILE_SQL);
    let (_, none) = admin(
        &provider,
        Method::GET,
        "/audit/records?counterparty=nobody",
        None,
    )
    .await;
    assert_eq!(none["records"], json!([]));
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, later) = admin(
        &provider,
        Method::GET,
        &format!("/audit/records?from={future}"),
        None,
    )
    .await;
    assert_eq!(later["records"], json!([]));
    let (_, answered) = admin(
        &provider,
        Method::GET,
        "/audit/records?kind=query_answered&order=asc",
        None,
    )
    .await;
    let rows: Vec<u64> = answered["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rows"].as_u64().unwrap())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1], 1, "count(*) answers one row");

    // Pages of 2, newest first, cover every record once.
    let mut seqs = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = admin(
            &provider,
            Method::GET,
            &format!("/audit/records?limit=2{cursor}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{page}");
        seqs.extend(
            page["records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["seq"].as_u64().unwrap()),
        );
        match page["next_cursor"].as_u64() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let expected: Vec<u64> = all.iter().rev().map(|r| r.seq).collect();
    assert_eq!(seqs, expected);
    for bad in [
        "limit=0",
        "limit=5000",
        "order=sideways",
        "from=yesterday",
        "colour=red",
        "cursor=-1",
    ] {
        let (status, body) = admin(
            &provider,
            Method::GET,
            &format!("/audit/records?{bad}"),
            None,
        )
        .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }

    // Verify.
    let (status, report) = admin(&provider, Method::GET, "/audit/verify", None).await;
    assert_eq!(status, 200);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["records"].as_u64().unwrap(), all.len() as u64);

    // Usage figures.
    let (status, usage) = admin(&provider, Method::GET, "/audit/usage?bucket=hour", None).await;
    assert_eq!(status, 200, "{usage}");
    let telemetry = usage["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["dataset"] == "telemetry")
        .unwrap();
    assert_eq!(
        (
            telemetry["answered"].as_u64(),
            telemetry["refused"].as_u64()
        ),
        (Some(2), Some(1)),
        "{usage}"
    );
    assert_eq!(telemetry["distinct_consumers"], 1);
    let released: u64 = all
        .iter()
        .filter(|r| r.kind.as_str() == "query_answered")
        .filter_map(|r| r.rows)
        .sum();
    assert_eq!(telemetry["rows_released"].as_u64(), Some(released));
    assert_eq!(telemetry["consumers"][0]["consumer"], "sme-south");
    assert_eq!(telemetry["consumers"][0]["purpose"], PURPOSE);
    assert!(telemetry["last_use"].is_string());
    assert_eq!(usage["refusals_by_rule"]["denied_column"], 1);
    assert_eq!(
        usage["timeline"][0]["answered"].as_u64().unwrap()
            + usage["timeline"][0]["refused"].as_u64().unwrap(),
        3
    );

    // SQL: answered, and refused for anything but one read-only query.
    let sql = |q: &str| json!({ "sql": q });
    let (status, answer) = admin(&provider, Method::POST, "/audit/sql",
        Some(sql("SELECT rule, counterparty, count(*) AS n FROM audit WHERE decision = 'refused' GROUP BY rule, counterparty"))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["rows"],
        json!([{ "rule": "denied_column", "counterparty": "sme-south", "n": 1 }])
    );
    for bad in [
        "DROP TABLE audit",
        "DELETE FROM audit",
        "SELECT 1; SELECT 2",
        "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
        "SELECT * FROM telemetry",
        "COPY audit TO '/tmp/x'",
    ] {
        let (status, body) = admin(&provider, Method::POST, "/audit/sql", Some(sql(bad))).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["field"], "sql", "{body}");
    }

    // JSON Lines: every stored record, as stored (its hash still matches).
    let token = format!("Bearer {}", admin_token(&provider.home).unwrap());
    let export = |q: &str| {
        let url = format!("{}/audit/export?{q}", provider.url);
        let token = token.clone();
        async move {
            HttpClient::new()
                .send(Method::GET, &url, &[("authorization", &token)], None)
                .await
                .unwrap()
        }
    };
    let reply = export("format=jsonl").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<AuditRecord> = std::str::from_utf8(&reply.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, all);
    assert!(lines.iter().all(|r| r.hash_matches().unwrap()));
    let refused_only = export("format=jsonl&decision=refused").await;
    assert_eq!(
        std::str::from_utf8(&refused_only.body)
            .unwrap()
            .lines()
            .count(),
        1
    );

    // Parquet: read back with DataFusion.
    let reply = export("format=parquet").await;
    assert_eq!(reply.status, 200);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.parquet");
    std::fs::write(&file, &reply.body).unwrap();
    let ctx = datafusion::prelude::SessionContext::new();
    ctx.register_parquet("exported", file.to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT count(*) AS n, max(seq) AS m FROM exported WHERE rule = 'denied_column'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, 1);
    let total = ctx
        .sql("SELECT count(*) FROM exported")
        .await
        .unwrap()
        .count()
        .await
        .unwrap();
    assert_eq!(total, 1);
    let rows = ctx.table("exported").await.unwrap().count().await.unwrap();
    assert_eq!(rows, all.len());
    let (status, _) = admin(&provider, Method::GET, "/audit/export?format=xml", None).await;
    assert_eq!(status, 400);

    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_altered_record() {
    let world = World::new();
    let (provider, consumer) = provider_with_records(&world).await;
    let store = provider.connector.audit().store();
    let mut refusal = store
        .range(0, 1000)
        .unwrap()
        .into_iter()
        .find(|r| r.rule.is_some())
        .unwrap();
    refusal.rule = Some("nothing_to_see".into());
    store.append_batch(std::slice::from_ref(&refusal)).unwrap();
    let (status, report) = admin(&provider, Method::GET, "/audit/verify", None).await;
    assert_eq!(status, 200);
    assert_eq!(report["intact"], false, "{report}");
    assert_eq!(report["first_broken"]["seq"], refusal.seq);
    assert_eq!(report["records"], refusal.seq);
    consumer.stop().await;
    provider.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_is_self_contained() {
    let world = World::new();
    let provider = start(&world, "platform-north", vec![], "platform").await;
    for (path, kind) in [
        ("/officer", "text/html"),
        ("/officer/officer.js", "text/javascript"),
        ("/officer/officer.css", "text/css"),
    ] {
        let reply = HttpClient::new()
            .send(Method::GET, &format!("{}{path}", provider.url), &[], None)
            .await
            .unwrap();
        assert_eq!(reply.status, 200, "{path}");
        assert!(reply.header("content-type").unwrap().starts_with(kind));
        let csp = reply.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        let text = std::str::from_utf8(&reply.body).unwrap();
        // No resource from elsewhere (the SVG namespace is a name, not a fetch).
        let outside = text.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !outside.contains("http://")
                && !outside.contains("https://")
                && !outside.contains("//cdn"),
            "{path}"
        );
        assert!(
            !text.contains("innerHTML")
                && !text.contains("insertAdjacentHTML")
                && !text.contains("document.write"),
            "{path}"
        );
    }
    provider.stop().await;
}

fn dataspace(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_verifies_queries_and_exports_through_the_connector() {
    let world = World::new();
    let (provider, consumer) = provider_with_records(&world).await;
    let home = provider.home.to_str().unwrap().to_owned();
    let url = provider.url.clone();
    let out = tempfile::tempdir().unwrap();
    let jsonl = out.path().join("audit.jsonl");
    let parquet = out.path().join("audit.parquet");
    let (jsonl_s, parquet_s) = (
        jsonl.to_str().unwrap().to_owned(),
        parquet.to_str().unwrap().to_owned(),
    );
    let token = admin_token(&provider.home).unwrap();
    let outputs = tokio::task::spawn_blocking(move || {
        vec![
            dataspace(&["audit", "list", "--home", &home, "--decision", "refused"]),
            dataspace(&["audit", "verify", "--connector", &url, "--token", &token]),
            dataspace(&[
                "audit",
                "sql",
                "--home",
                &home,
                "SELECT kind, count(*) AS n FROM audit WHERE kind = 'query_answered' GROUP BY kind",
            ]),
            dataspace(&[
                "audit", "export", "--home", &home, "--format", "jsonl", "--out", &jsonl_s,
            ]),
            dataspace(&[
                "audit", "export", "--home", &home, "--format", "parquet", "--out", &parquet_s,
            ]),
            dataspace(&["audit", "usage", "--home", &home]),
            dataspace(&["audit", "sql", "--home", &home, "DROP TABLE audit"]),
            dataspace(&["audit", "list", "--connector", &url, "--token", "wrong"]),
        ]
    })
    .await
    .unwrap();
    let text = |i: usize| String::from_utf8_lossy(&outputs[i].stdout).into_owned();
    let err = |i: usize| String::from_utf8_lossy(&outputs[i].stderr).into_owned();
    for (i, output) in outputs.iter().enumerate().take(6) {
        assert!(
            output.status.success(),
            "command {i}: {}{}",
            text(i),
            err(i)
        );
    }
    assert!(
        text(0).contains("denied_column") && text(0).contains("1 records"),
        "{}",
        text(0)
    );
    assert!(text(1).starts_with("chain intact"), "{}", text(1));
    assert!(
        text(2).contains("query_answered") && text(2).contains(" 2"),
        "{}",
        text(2)
    );
    let exported = std::fs::read_to_string(&jsonl).unwrap();
    // The wrong token of the last command was refused after the export,
    // and that refusal is audited too.
    let records = provider.connector.audit().store().range(0, 10_000).unwrap();
    let refused: Vec<&AuditRecord> = records
        .iter()
        .filter(|r| r.kind.as_str() == "access_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].rule.as_deref(), Some("admin_token"));
    assert_eq!(exported.lines().count(), records.len() - 1);
    assert!(std::fs::read(&parquet).unwrap().starts_with(b"PAR1"));
    assert!(
        text(5).contains("telemetry") && text(5).contains("refused by `denied_column`: 1"),
        "{}",
        text(5)
    );
    assert!(
        !outputs[6].status.success() && err(6).contains("sql"),
        "{}",
        err(6)
    );
    assert!(
        !outputs[7].status.success() && err(7).contains("401"),
        "{}",
        err(7)
    );
    consumer.stop().await;
    provider.stop().await;
}
