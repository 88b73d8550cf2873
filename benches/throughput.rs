//! Governed small aggregate queries per second over loopback HTTP, with 16
//! concurrent clients, against a provider connector holding the red-team
//! fixture (a benchmark, not a test).
//!
//! Run: `cargo bench --bench throughput` (`BENCH_SECONDS` sets the duration).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::too_many_lines)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::Method;
use serde_json::json;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let seconds: u64 = std::env::var("BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let clients = 16;
    let world = support::World::new();
    let (provider, consumer, contract) = support::contracted(&world, |p| {
        p["limits"]["max_queries"] = json!(100_000_000);
    })
    .await;
    let body = json!({ "agreement": contract.agreement.jws(), "sql": "SELECT site, avg(temperature) AS t FROM telemetry GROUP BY site" });
    let url = format!("{}/query", provider.url);
    let answered = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut latencies = Vec::new();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let peer = consumer.peer();
            let (url, body, answered, failed) = (
                url.clone(),
                body.clone(),
                Arc::clone(&answered),
                Arc::clone(&failed),
            );
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    let reply = peer
                        .call(Method::POST, &url, "platform-north", Some(&body))
                        .await
                        .unwrap();
                    mine.push(start.elapsed());
                    if reply.status == 200 {
                        answered.fetch_add(1, Ordering::Relaxed)
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed)
                    };
                }
                mine
            })
        })
        .collect();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    latencies.sort();
    let n = answered.load(Ordering::Relaxed);
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "governed small aggregate queries over loopback HTTP, {clients} clients, {seconds} s:"
    );
    println!("  answered {n}, failed {}", failed.load(Ordering::Relaxed));
    println!("  throughput {:.0} queries/s", n as f64 / seconds as f64);
    println!(
        "  latency p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
        p(0.5),
        p(0.95),
        p(0.99)
    );
    consumer.stop().await;
    provider.stop().await;
}
