//! What enforcement costs, in figures (a benchmark, not a test):
//!
//! 1. the time `enforce_plan` takes per query over the shared red-team cases
//!    (and parse + plan + enforce together);
//! 2. the execution time of an enforced grouped aggregate over ten million
//!    generated rows against the same SQL on the raw table, with a plain
//!    entity threshold (`min_entities` 1) and a distinct-entity threshold (5).
//!
//! Run: `cargo bench -p dataspace-connector --bench enforcement`
//! (set `BENCH_ROWS` to change the row count).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![warn(clippy::too_many_lines)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use connector::casefile::read_cases;
use connector::engine::{ExecutionLimits, GovernedEngine};
use datafusion::arrow::array::{Float64Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use policy::enforce::enforce_plan;
use policy::model::UsagePolicy;

fn shared() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/redteam")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

async fn enforcement_per_query() {
    let dir = shared();
    let policy = UsagePolicy::from_json_str(
        &std::fs::read_to_string(dir.join("telemetry.policy.json")).unwrap(),
    )
    .unwrap();
    let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
    engine
        .add_dataset(
            policy,
            &dir.join("telemetry.csv"),
            std::slice::from_ref(&dir),
        )
        .await
        .unwrap();
    let cases = read_cases(&dir.join("cases.toml")).unwrap();
    let (mut enforce_times, mut total_times) = (Vec::new(), Vec::new());
    let now = Utc::now();
    for case in &cases {
        let Ok(plan) = policy::sql::plan_sql(engine.state(), &case.sql).await else {
            continue; // refused before planning (statement rule): nothing to enforce
        };
        let mut runs = Vec::new();
        let mut totals = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            let _ = std::hint::black_box(enforce_plan(&plan, engine.governed(), now));
            runs.push(start.elapsed());
            let start = Instant::now();
            let _ = std::hint::black_box(engine.plan(&case.sql, now).await);
            totals.push(start.elapsed());
        }
        enforce_times.push(median(runs));
        total_times.push(median(totals));
    }
    println!(
        "enforcement over {} red-team queries (median of 200 runs each):",
        enforce_times.len()
    );
    println!(
        "  enforce_plan:             median {:>8.3} ms   p95 {:>8.3} ms   max {:>8.3} ms",
        ms(median(enforce_times.clone())),
        ms(percentile(enforce_times.clone(), 0.95)),
        ms(*enforce_times.iter().max().unwrap())
    );
    println!(
        "  parse + plan + enforce:   median {:>8.3} ms   p95 {:>8.3} ms   max {:>8.3} ms",
        ms(median(total_times.clone())),
        ms(percentile(total_times.clone(), 0.95)),
        ms(*total_times.iter().max().unwrap())
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Ten million readings: 10,000 machines over 8 sites and 3 shifts.
fn generate(rows: usize, partitions: usize) -> (Arc<Schema>, Vec<Vec<RecordBatch>>) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, false),
        Field::new("site", DataType::Utf8, false),
        Field::new("shift", DataType::Utf8, false),
        Field::new("temperature", DataType::Float64, false),
        Field::new("vibration", DataType::Float64, false),
    ]));
    let sites: Vec<String> = (0..8).map(|i| format!("site-{i}")).collect();
    let shifts = ["early", "late", "night"];
    let batch_rows = 65_536;
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); partitions];
    let mut made = 0;
    let mut p = 0;
    while made < rows {
        let n = batch_rows.min(rows - made);
        let mut machine = Vec::with_capacity(n);
        let mut site = Vec::with_capacity(n);
        let mut shift = Vec::with_capacity(n);
        let mut temp = Vec::with_capacity(n);
        let mut vib = Vec::with_capacity(n);
        for _ in 0..n {
            let r = next();
            let m = (r % 10_000) as usize;
            machine.push(format!("M-{m:05}"));
            site.push(sites[m % sites.len()].clone());
            shift.push(shifts[((r >> 20) % 3) as usize]);
            temp.push(60.0 + ((r >> 32) % 4000) as f64 / 100.0);
            vib.push(((r >> 44) % 3000) as f64 / 1000.0);
        }
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(machine)),
                Arc::new(StringArray::from(site)),
                Arc::new(StringArray::from(shift)),
                Arc::new(Float64Array::from(temp)),
                Arc::new(Float64Array::from(vib)),
            ],
        )
        .unwrap();
        parts[p % partitions].push(batch);
        p += 1;
        made += n;
    }
    (schema, parts)
}

fn readings_policy(min_entities: u64) -> UsagePolicy {
    let json = serde_json::json!({
        "type": "UsagePolicy", "version": 1, "id": "bench", "issuer": "bench",
        "target": { "dataset": "readings" }, "purposes": ["benchmark"],
        "validity": { "not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z" },
        "access": "aggregate",
        "columns": { "machine_id": "entity", "site": "dimension", "shift": "dimension",
                     "temperature": "measure", "vibration": "measure" },
        "aggregation": { "min_rows": 5, "min_entities": min_entities, "functions": ["count", "sum", "avg"] }
    });
    UsagePolicy::from_json_str(&json.to_string()).unwrap()
}

const AGGREGATE_SQL: &str = "SELECT site, shift, avg(temperature) AS t, sum(vibration) AS v, count(*) AS n \
                             FROM readings GROUP BY site, shift";

async fn time_raw(ctx: &SessionContext, runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let batches = ctx
            .sql(AGGREGATE_SQL)
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        times.push(start.elapsed());
        std::hint::black_box(batches);
    }
    median(times)
}

async fn time_governed(engine: &GovernedEngine, runs: usize) -> Duration {
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let answer = engine.query(AGGREGATE_SQL, Utc::now()).await.unwrap();
        times.push(start.elapsed());
        assert_eq!(answer.rows, 24);
    }
    median(times)
}

async fn grouped_aggregate() {
    let rows: usize = std::env::var("BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let partitions = std::thread::available_parallelism().map_or(2, |n| n.get());
    let start = Instant::now();
    let (schema, parts) = generate(rows, partitions);
    println!(
        "\ngrouped aggregate over {rows} generated rows ({partitions} partitions, generated in {:.1} s):",
        start.elapsed().as_secs_f64()
    );
    println!("  {AGGREGATE_SQL}");
    let table = Arc::new(MemTable::try_new(Arc::clone(&schema), parts).unwrap());
    let raw = SessionContext::new();
    raw.register_table("readings", table.clone()).unwrap();
    let runs = 7;
    let _ = time_raw(&raw, 1).await; // warm-up
    let raw_time = time_raw(&raw, runs).await;
    let mut report = vec![("raw DataFusion".to_owned(), raw_time)];
    for min_entities in [1, 5] {
        let mut engine = GovernedEngine::new(ExecutionLimits {
            memory_bytes: 8 << 30,
            timeout: Duration::from_secs(600),
            ..ExecutionLimits::default()
        })
        .unwrap();
        engine
            .register_provider(readings_policy(min_entities), table.clone())
            .unwrap();
        let _ = time_governed(&engine, 1).await;
        let label = if min_entities == 1 {
            "governed, min_entities 1 (count)".to_owned()
        } else {
            format!("governed, min_entities {min_entities} (count DISTINCT)")
        };
        report.push((label, time_governed(&engine, runs).await));
    }
    for (label, time) in &report {
        println!(
            "  {label:<42} median {:>8.1} ms   {:>5.2}x raw",
            ms(*time),
            time.as_secs_f64() / raw_time.as_secs_f64()
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        enforcement_per_query().await;
        grouped_aggregate().await;
    });
}
