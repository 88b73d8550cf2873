//! The SQL of a query is kept in the audit log only up to
//! `audit_sql_bytes`, with the hash of the whole text: a 1 MB query,
//! through the real HTTP service, adds at most that bound (plus a fixed
//! overhead) to each of its records.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use connector::answer::AnswerFormat;
use connector::audit::AuditRecord;
use policy::document::hash_bytes;
use support::{World, audit_records, contracted, reconfigure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_of_sql_adds_only_its_bound_to_the_audit_log() {
    let world = World::new();
    let (provider, consumer, contract) = contracted(&world, |_| {}).await;
    // Bodies of 4 MiB let a 1 MB query through to the SQL bounds.
    let provider = reconfigure(provider, "max_body_bytes", "4194304").await;
    let bound = provider.connector.config().audit_sql_bytes;
    let before = audit_records(&provider).len();
    let sql = format!(
        "SELECT site, count(*) AS n FROM telemetry WHERE site <> '{}é' GROUP BY site",
        "x".repeat(1 << 20)
    );
    let refused = consumer
        .connector
        .query_remote(&contract.id, &sql, AnswerFormat::Arrow)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("max_sql_bytes"), "{refused}");

    // (The restart's `start` record may be written meanwhile.)
    let added: Vec<AuditRecord> = audit_records(&provider)
        .split_off(before)
        .into_iter()
        .filter(|r| r.kind.as_str() != "start")
        .collect();
    assert!(!added.is_empty());
    // What the store holds per record: its JSON.
    let growth: usize = added
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap().len())
        .sum();
    const OVERHEAD: usize = 1024;
    assert!(
        growth <= added.len() * (bound + OVERHEAD),
        "{growth} bytes in {} records for {} bytes of SQL",
        added.len(),
        sql.len()
    );
    for record in &added {
        let kept = record
            .sql
            .as_deref()
            .unwrap_or_else(|| panic!("{record:?}"));
        assert!(kept.len() <= bound + 64, "{}", kept.len());
        assert!(kept.contains("[truncated:"), "{kept:.100}");
        assert_eq!(
            record.sql_hash.as_deref(),
            Some(hash_bytes(sql.as_bytes()).as_str())
        );
    }
    println!(
        "a query of {} bytes added {growth} bytes in {} records (bound {bound})",
        sql.len(),
        added.len()
    );
    consumer.stop().await;
    provider.stop().await;
}
