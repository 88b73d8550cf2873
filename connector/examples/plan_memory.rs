//! How much memory a prepared plan holds, in figures (a measurement, not a
//! test): for several shapes of large SQL text, within the default SQL
//! bounds, 100 distinct queries are run on an engine whose plan cache keeps
//! everything, and the growth of the process's resident memory (VmRSS in
//! `/proc/self/status`) is divided by the plans kept and by their SQL
//! bytes. This is where `engine::PLAN_BYTES_PER_SQL_BYTE` comes from. Then
//! the same 100 queries of the densest shape run on an engine with the
//! default budget, and the cache's bytes and the process's RSS are shown.
//!
//! Run: `cargo run -p dataspace-connector --example plan_memory`
//! (`PLAN_QUERIES` sets the queries per shape, default 100).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use chrono::Utc;
use connector::engine::{
    DEFAULT_PLAN_CACHE_BYTES, ExecutionLimits, GovernedEngine, Plans, plan_weight,
};
use datafusion::arrow::array::{Float64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use policy::model::UsagePolicy;

/// Resident memory of this process, in bytes.
fn rss() -> usize {
    status_bytes("VmRSS:")
}

/// The peak of resident memory since [`reset_peak`], in bytes.
fn peak() -> usize {
    status_bytes("VmHWM:")
}

/// Starts a new peak (Linux: `5` to `/proc/self/clear_refs`).
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn table() -> Arc<MemTable> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("site", DataType::Utf8, true),
        Field::new("value", DataType::Float64, true),
    ]));
    let sites: Vec<&str> = (0..100)
        .map(|i| if i % 2 == 0 { "a" } else { "b" })
        .collect();
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(sites)),
            Arc::new(Float64Array::from(values)),
        ],
    )
    .unwrap();
    Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
}

fn engine(plans: Arc<Plans>) -> GovernedEngine {
    let policy = UsagePolicy::from_json_str(
        r#"{"type": "UsagePolicy", "version": 1, "id": "p", "issuer": "x",
            "target": {"dataset": "readings"}, "purposes": ["test"],
            "validity": {"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"},
            "access": "rows",
            "columns": {"site": "dimension", "value": "measure"},
            "limits": {"max_rows_per_query": 1000000}}"#,
    )
    .unwrap();
    let mut engine = GovernedEngine::with_plans(ExecutionLimits::default(), plans).unwrap();
    engine.register_provider(policy, table()).unwrap();
    engine
}

/// `n` comparisons joined by `OR` in a balanced tree; `q` makes it distinct.
fn any_of(n: usize, q: usize) -> String {
    if n <= 1 {
        return format!("value > {q}");
    }
    format!("({} OR {})", any_of(n / 2, q), any_of(n - n / 2, q + n / 2))
}

/// Makes the `q`-th distinct query of a shape.
type Shape = fn(usize) -> String;

/// The shapes measured: each close to one of the SQL bounds.
fn shapes() -> Vec<(&'static str, Shape)> {
    vec![
        ("1,900 comparisons (`max_sql_nodes`)", |q| {
            format!("SELECT site FROM readings WHERE {}", any_of(1900, q))
        }),
        ("`IN` list of 9,000 numbers", |q| {
            let items: Vec<String> = (0..9000)
                .map(|i| if i == 0 { q } else { i }.to_string())
                .collect();
            format!(
                "SELECT site FROM readings WHERE value IN ({})",
                items.join(",")
            )
        }),
        ("60 `UNION ALL` arms of 30 comparisons", |q| {
            let arms: Vec<String> = (0..60)
                .map(|a| {
                    format!(
                        "SELECT site FROM readings WHERE {}",
                        any_of(30, q * 100 + a)
                    )
                })
                .collect();
            arms.join(" UNION ALL ")
        }),
        ("60 `IN` subqueries of 30 comparisons", |q| {
            let arms: Vec<String> = (0..60)
                .map(|a| {
                    format!(
                        "value IN (SELECT value FROM readings WHERE {})",
                        any_of(30, q * 100 + a)
                    )
                })
                .collect();
            format!("SELECT site FROM readings WHERE {}", arms.join(" OR "))
        }),
        ("one 60 KB string literal", |q| {
            format!(
                "SELECT site FROM readings WHERE site <> '{q}{}'",
                "x".repeat(60_000)
            )
        }),
    ]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let queries: usize = std::env::var("PLAN_QUERIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    println!(
        "| shape | SQL bytes | plans kept | RSS growth per kept plan | per SQL byte | planning peak | plan_weight |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, make) in shapes() {
        let plans = Arc::new(Plans::new(usize::MAX));
        let engine = engine(Arc::clone(&plans));
        // One query first, so that lazily built state is not counted.
        if let Err(e) = engine.query(&make(queries + 1), Utc::now()).await {
            println!("| {name} | refused: {e} |");
            continue;
        }
        let before = rss();
        reset_peak();
        engine.plan(&make(queries + 2), Utc::now()).await.unwrap();
        let planning = peak().saturating_sub(before);
        for q in 0..queries {
            engine.query(&make(q), Utc::now()).await.unwrap();
        }
        let grown = rss().saturating_sub(before);
        let sql = make(0).len();
        let per_plan = grown / queries;
        println!(
            "| {name} | {sql} | {} | {:.2} MiB | {} | {:.1} MiB | {:.1} MiB |",
            plans.len(),
            per_plan as f64 / f64::from(1 << 20),
            per_plan / sql,
            planning as f64 / f64::from(1 << 20),
            plan_weight(&make(0)) as f64 / f64::from(1 << 20),
        );
        drop(engine);
    }
    let plans = Arc::new(Plans::new(DEFAULT_PLAN_CACHE_BYTES));
    let engine = engine(Arc::clone(&plans));
    let make = shapes()[0].1;
    for q in 0..queries {
        engine
            .query(&make(q + 1_000_000), Utc::now())
            .await
            .unwrap();
    }
    println!(
        "\n{queries} distinct queries of the first shape, default budget ({} MiB): {} plans kept, {:.1} MiB by weight; process RSS {:.0} MiB",
        DEFAULT_PLAN_CACHE_BYTES >> 20,
        plans.len(),
        plans.bytes() as f64 / f64::from(1 << 20),
        rss() as f64 / f64::from(1 << 20),
    );
}
