//! What the audit log costs, in figures (a benchmark, not a test):
//!
//! 1. durable appends per second through `AuditLog::append` on a sled store
//!    in a temporary folder, with 1, 16, 64 and 256 concurrent appenders
//!    (each append returns only once its record is flushed; group commit
//!    shares a flush between the appenders waiting at that moment);
//! 2. the time `verify` takes over a log of a million records (hashes,
//!    links, sequence numbers and every checkpoint signature);
//! 3. the time the data officer's SQL (`officer::run_audit_sql`, the table
//!    `audit` read from the same sled store) takes over that log.
//!
//! Run: `cargo bench -p dataspace-connector --bench audit`. Environment:
//! `BENCH_RECORDS` (records verified, default 1,000,000), `BENCH_APPENDS`
//! (appends per scenario, default 100,000) and `BENCH_SECONDS` (time limit
//! of one append scenario, default 10); `BENCH_ONLY=append` or
//! `BENCH_ONLY=verify` runs one half.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::too_many_lines)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use connector::audit::{
    AuditEntry, AuditLog, AuditStore, Chain, DEFAULT_CHECKPOINT_EVERY, HEAD_FILE, HeadWriter,
    RecordKind, SledAuditStore, VERIFY_CHUNK, verify,
};
use connector::officer::{SqlLimits, run_audit_sql};
use policy::keys::KeyPair;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A query record as the connector writes it.
fn entry(n: u64) -> AuditEntry {
    AuditEntry::new(RecordKind::QueryAnswered, "platform-north")
        .with_counterparty("sme-south")
        .with_dataset("telemetry")
        .with_agreement("urn:agreement:7f3c2a1e-5b2d-4c8e-9a61-0d3e2f1b9c44")
        .with_purpose("predictive-maintenance")
        .with_sql("SELECT region, avg(temperature) FROM telemetry GROUP BY region")
        .with_decision("answered")
        .with_rows(n % 100)
        .with_bytes(4096)
        .with_duration_ms(3)
        .with_result_hash("sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
}

/// CPU time (user + system) of the whole process so far, from
/// `/proc/self/stat` (clock ticks, taken as 100 per second).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which ends with `)`: utime is the
    // 12th and stime the 13th of them.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn rss_mib() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.trim_start_matches(name).trim().to_owned())
            .unwrap_or_default()
    };
    format!("rss {}, peak {}", field("VmRSS:"), field("VmHWM:"))
}

async fn append_rate(appenders: u64, total: u64, limit: Duration, with_head: bool) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn AuditStore> =
        Arc::new(SledAuditStore::open(&dir.path().join("audit")).unwrap());
    let key = Arc::new(KeyPair::generate().unwrap());
    // The connector replaces a signed head after every batch.
    let head = with_head.then(|| HeadWriter::new(dir.path().join(HEAD_FILE), key.clone()));
    let log = Arc::new(
        AuditLog::open_with_head(store.clone(), key, DEFAULT_CHECKPOINT_EVERY, head).unwrap(),
    );
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + limit;
    let tasks: Vec<_> = (0..appenders)
        .map(|_| {
            let (log, claimed) = (log.clone(), claimed.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < deadline {
                    let n = claimed.fetch_add(1, Ordering::Relaxed);
                    if n >= total {
                        break;
                    }
                    log.append(entry(n)).await.unwrap();
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut appended = 0;
    for task in tasks {
        appended += task.await.unwrap();
    }
    let elapsed = start.elapsed();
    println!(
        "append{}, {appenders:>3} appenders: {appended:>7} durable records in {:>6.2} s = {:>7.0} records/s ({} stored with checkpoints)",
        if with_head { " + signed head" } else { "" },
        elapsed.as_secs_f64(),
        appended as f64 / elapsed.as_secs_f64(),
        store.len().unwrap(),
    );
    drop(store);
    Arc::into_inner(log).unwrap().close().await;
}

/// Writes `count` entries (and their checkpoints) straight through
/// [`Chain`] in large batches: the same records the log writes, faster.
fn build_log(path: &Path, count: u64, key: Arc<KeyPair>) {
    let store = SledAuditStore::open(path).unwrap();
    let mut chain = Chain::resume(None, key, DEFAULT_CHECKPOINT_EVERY).unwrap();
    let mut records = Vec::new();
    for n in 0..count {
        chain.seal(entry(n), &mut records).unwrap();
        if records.len() >= 20_000 {
            store.append_batch(&records).unwrap();
            records.clear();
        }
    }
    store.append_batch(&records).unwrap();
}

/// Where verification time goes: reading and decoding alone, hashing alone.
fn read_and_hash_time(store: &SledAuditStore) {
    let (mut from, mut read, mut hash) = (0, Duration::ZERO, Duration::ZERO);
    loop {
        let start = Instant::now();
        let chunk = store.range(from, VERIFY_CHUNK).unwrap();
        read += start.elapsed();
        let Some(last) = chunk.last() else { break };
        from = last.seq + 1;
        let start = Instant::now();
        for record in &chunk {
            std::hint::black_box(record.compute_hash().unwrap());
        }
        hash += start.elapsed();
    }
    println!(
        "breakdown over {from} records: read + decode {:.2} s, hash {:.2} s",
        read.as_secs_f64(),
        hash.as_secs_f64()
    );
}

/// Officer SQL over the whole log: a group-by over every record and a
/// filtered count.
fn sql_time(store: Arc<dyn AuditStore>, runtime: &tokio::runtime::Runtime) {
    for sql in [
        "SELECT counterparty, purpose, decision, count(*) AS n, sum(\"rows\") AS r FROM audit GROUP BY 1, 2, 3",
        "SELECT count(*) AS n FROM audit WHERE kind = 'checkpoint'",
    ] {
        let start = Instant::now();
        let answer = runtime
            .block_on(run_audit_sql(store.clone(), sql, SqlLimits::default()))
            .unwrap();
        println!(
            "audit sql over {} records in {:.2} s: {sql} -> {}",
            answer.records,
            start.elapsed().as_secs_f64(),
            serde_json::to_string(&answer.rows).unwrap()
        );
    }
}

fn verify_time(count: u64, runtime: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit");
    let key = Arc::new(KeyPair::generate().unwrap());
    let start = Instant::now();
    build_log(&path, count, key.clone());
    println!(
        "build: {count} entries sealed and stored in {:.2} s",
        start.elapsed().as_secs_f64()
    );
    let store = SledAuditStore::open(&path).unwrap();
    read_and_hash_time(&store);
    println!("before verify: {}", rss_mib());
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let report = verify(&store, &key.public_key()).unwrap();
    let (elapsed, cpu) = (start.elapsed(), cpu_seconds() - cpu);
    assert!(report.is_intact(), "{report}");
    println!(
        "verify: {report} in {:.2} s = {:.0} records/s ({cpu:.2} s of CPU); {}",
        elapsed.as_secs_f64(),
        report.records as f64 / elapsed.as_secs_f64(),
        rss_mib()
    );
    sql_time(Arc::new(store), runtime);
}

fn main() {
    let records = env_u64("BENCH_RECORDS", 1_000_000);
    let appends = env_u64("BENCH_APPENDS", 100_000);
    let limit = Duration::from_secs(env_u64("BENCH_SECONDS", 10));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "audit bench on {} cores, load average {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load().trim()
    );
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    if only != "verify" {
        for appenders in [1, 16, 64, 256] {
            runtime.block_on(append_rate(appenders, appends, limit, false));
            runtime.block_on(append_rate(appenders, appends, limit, true));
        }
    }
    if only != "append" {
        verify_time(records, &runtime);
    }
    println!("load average at the end {}", load().trim());
}
