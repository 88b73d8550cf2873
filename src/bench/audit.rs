//! Durable audit appends per second: concurrent appenders on a sled store,
//! each append returning only once its record is flushed (group commit
//! shares one flush among the appenders waiting at that moment).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use connector::audit::{
    AuditEntry, AuditLog, AuditStore, DEFAULT_CHECKPOINT_EVERY, HEAD_FILE, HeadWriter, RecordKind,
    SledAuditStore,
};
use policy::keys::KeyPair;
use serde::Serialize;

/// The audit figure.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRate {
    /// Concurrent appenders.
    pub appenders: u64,
    /// Durable records appended.
    pub records: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Durable records per second.
    pub records_per_second: f64,
}

/// A query record as the connector writes it.
fn entry(n: u64) -> AuditEntry {
    AuditEntry::new(RecordKind::QueryAnswered, "platform-tpch")
        .with_counterparty("sme-bench")
        .with_dataset("lineitem")
        .with_agreement("urn:agreement:7f3c2a1e-5b2d-4c8e-9a61-0d3e2f1b9c44")
        .with_purpose("benchmarking")
        .with_sql("SELECT l_returnflag, sum(l_quantity) FROM lineitem GROUP BY l_returnflag")
        .with_decision("answered")
        .with_rows(n % 100)
        .with_bytes(4096)
        .with_duration_ms(3)
        .with_result_hash("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
}

/// Appends up to `limit` records with `appenders` concurrent tasks, for at
/// most `duration`.
pub async fn append_rate(appenders: u64, limit: u64, duration: Duration) -> Result<AuditRate> {
    let dir = tempfile::tempdir().context("cannot create a temporary folder")?;
    let store: Arc<dyn AuditStore> = Arc::new(SledAuditStore::open(&dir.path().join("audit"))?);
    let key = Arc::new(KeyPair::generate()?);
    // As the connector runs it: a signed head replaced after every batch.
    let head = HeadWriter::new(dir.path().join(HEAD_FILE), Arc::clone(&key));
    let log = Arc::new(AuditLog::open_with_head(
        Arc::clone(&store),
        key,
        DEFAULT_CHECKPOINT_EVERY,
        Some(head),
    )?);
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let (log, claimed) = (Arc::clone(&log), Arc::clone(&claimed));
            tokio::spawn(async move {
                let mut done = 0_u64;
                while Instant::now() < deadline {
                    let n = claimed.fetch_add(1, Ordering::Relaxed);
                    if n >= limit {
                        break;
                    }
                    log.append(entry(n)).await?;
                    done += 1;
                }
                Ok::<u64, connector::audit::AuditError>(done)
            })
        })
        .collect();
    let mut records = 0;
    for task in tasks {
        records += task.await.context("an appender task failed")??;
    }
    let seconds = start.elapsed().as_secs_f64();
    drop(store);
    Arc::into_inner(log)
        .ok_or_else(|| anyhow!("the audit log is still in use"))?
        .close()
        .await;
    Ok(AuditRate {
        appenders,
        records,
        seconds,
        records_per_second: records as f64 / seconds.max(1e-9),
    })
}
