//! Small governed queries per second with concurrent clients: in process on
//! a table held in memory, and end to end through the provider connector.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::Utc;
use connector::engine::GovernedEngine;
use serde::Serialize;

use super::http::{Loopback, post_query};
use super::queries::Mode;

/// Queries per second of one throughput run.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Where the queries ran: `in_process` or `http`.
    pub path: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Rows in the table.
    pub table_rows: u64,
    /// The query.
    pub sql: String,
    /// Answered queries.
    pub answered: u64,
    /// Queries that failed.
    pub failed: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Answered queries per second.
    pub queries_per_second: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile latency, milliseconds.
    pub p95_ms: f64,
}

/// Runs `clients` loops of `call` for `duration`; counts and times them.
async fn drive<F, Fut>(
    clients: usize,
    duration: Duration,
    call: F,
) -> Result<(u64, u64, f64, Vec<Duration>)>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (call, answered, failed) =
                (call.clone(), Arc::clone(&answered), Arc::clone(&failed));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let ok = call().await;
                    latencies.push(sent.elapsed());
                    let counter = if ok { &answered } else { &failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.context("a client task failed")?);
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok((
        answered.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
        seconds,
        latencies,
    ))
}

#[expect(clippy::too_many_arguments, reason = "a plain record of one run")]
fn figures(
    path: &str,
    clients: usize,
    table_rows: u64,
    sql: &str,
    answered: u64,
    failed: u64,
    seconds: f64,
    mut latencies: Vec<Duration>,
) -> Throughput {
    latencies.sort();
    let at = |q: f64| {
        let n = latencies.len().saturating_sub(1) as f64;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "an index in range"
        )]
        let i = (n * q).round() as usize;
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    Throughput {
        path: path.to_owned(),
        clients,
        table_rows,
        sql: sql.to_owned(),
        answered,
        failed,
        seconds,
        queries_per_second: answered as f64 / seconds.max(1e-9),
        p50_ms: at(0.5),
        p95_ms: at(0.95),
    }
}

/// Governed queries per second through `engine` (no HTTP, no audit);
/// `path` names the run.
pub async fn in_process(
    path: &str,
    engine: Arc<GovernedEngine>,
    sql: &str,
    table_rows: u64,
    clients: usize,
    duration: Duration,
) -> Result<Throughput> {
    let text: Arc<str> = Arc::from(sql);
    let call = move || {
        let (engine, text) = (Arc::clone(&engine), Arc::clone(&text));
        async move { engine.query(&text, Utc::now()).await.is_ok() }
    };
    let (answered, failed, seconds, latencies) = drive(clients, duration, call).await?;
    Ok(figures(
        path, clients, table_rows, sql, answered, failed, seconds, latencies,
    ))
}

/// Governed queries per second through the provider connector over HTTP
/// (token, agreement, quota, enforcement, execution, Arrow IPC, receipt,
/// durable audit records).
pub async fn over_http(
    world: &Loopback,
    dataset: &str,
    sql: &str,
    table_rows: u64,
    clients: usize,
    duration: Duration,
) -> Result<Throughput> {
    let body = Arc::new(world.request(dataset, Mode::Aggregate, sql)?);
    let url: Arc<str> = Arc::from(world.query_url());
    let client = Arc::new(world.client());
    let call = move || {
        let (body, url, client) = (Arc::clone(&body), Arc::clone(&url), Arc::clone(&client));
        async move { post_query(&client, &url, &body).await.is_ok() }
    };
    let (answered, failed, seconds, latencies) = drive(clients, duration, call).await?;
    Ok(figures(
        "http", clients, table_rows, sql, answered, failed, seconds, latencies,
    ))
}
