//! The TPC-H benchmark suite, checked for correctness (never for speed):
//! every governed query and its raw twin give identical answers in both
//! modes, and `dataspace bench` writes a report with every figure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../src/bench/mod.rs"]
#[allow(dead_code)]
mod bench;
#[path = "../src/served.rs"]
#[allow(dead_code)]
mod served;

use bench::inprocess::{InProcess, canonical};
use bench::queries::{self, Mode};
use serde_json::Value;

/// TPC-H scale factor 0.1: 600,000 `lineitem` rows.
const SCALE: f64 = 0.1;

fn quiet(_: &str) {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn governed_queries_and_their_raw_twins_give_identical_answers() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("lineitem");
    let table = tokio::task::spawn_blocking(move || {
        bench::tpch::lineitem(&dir, SCALE, bench::tpch::Layout::Generated, &quiet)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(
        (590_000..610_000).contains(&table.rows),
        "{} rows",
        table.rows
    );
    let local = InProcess::open(bench::LINEITEM, &table.dir).await.unwrap();
    let all = queries::all();
    assert_eq!(
        all.iter().filter(|q| q.mode == Mode::Rows).count(),
        2,
        "Q1 and Q6 in rows mode"
    );
    for query in &all {
        let raw = local.raw(&query.raw).await.unwrap();
        let governed = local.governed(query.mode, &query.governed).await.unwrap();
        let rows: usize = raw.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0, "{}: the raw twin has no rows", query.name);
        assert_eq!(
            canonical(&governed).unwrap(),
            canonical(&raw).unwrap(),
            "{}: governed and raw answers differ",
            query.name
        );
        let first = local.raw(&query.raw_filter_first).await.unwrap();
        assert_eq!(
            canonical(&first).unwrap(),
            canonical(&raw).unwrap(),
            "{}: the row filter's place changed the raw answer",
            query.name
        );
        // The governed answer is not the unfiltered one: the row filter
        // (and the threshold) took effect.
        let unfiltered = local.raw(&query.governed).await.unwrap();
        assert_ne!(
            canonical(&unfiltered).unwrap(),
            canonical(&governed).unwrap(),
            "{}: the policy changed nothing",
            query.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_policies_refuse_what_they_deny() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().join("lineitem");
    let table = tokio::task::spawn_blocking(move || {
        bench::tpch::lineitem(&dir, 0.001, bench::tpch::Layout::ByShipDate, &quiet)
    })
    .await
    .unwrap()
    .unwrap();
    let local = InProcess::open(bench::LINEITEM, &table.dir).await.unwrap();
    let refused = [
        (Mode::Rows, "SELECT l_comment FROM lineitem"),
        (Mode::Aggregate, "SELECT l_quantity FROM lineitem"),
        (
            Mode::Aggregate,
            "SELECT l_suppkey, count(*) FROM lineitem GROUP BY l_suppkey",
        ),
    ];
    for (mode, sql) in refused {
        let error = local.governed(mode, sql).await.unwrap_err();
        assert!(error.to_string().contains("did not answer"), "{error}");
    }
}

#[test]
fn bench_command_writes_a_report_with_every_figure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dataspace"))
        .args([
            "bench",
            "--allow-debug-build",
            "--scale",
            "0.01",
            "--runs",
            "2",
        ])
        .arg("--data")
        .arg(dir.path().join("data"))
        .args([
            "--throughput-rows",
            "20000",
            "--throughput-seconds",
            "1",
            "--audit-seconds",
            "1",
            "--catalog-datasets",
            "40",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("part 1 of 1 written"), "{stderr}");
    assert!(stderr.contains("sorted by l_shipdate written"), "{stderr}");
    assert!(stdout.contains("| q1 | rows |"), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(report["scale"], 0.01);
    assert!(report["machine"]["cores"].as_u64().unwrap() >= 1);
    let queries = report["queries"].as_array().unwrap();
    let names: Vec<&str> = queries
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "q1",
            "q6",
            "q1_aggregate",
            "q6_aggregate",
            "daily_aggregate",
            "monthly_aggregate"
        ]
    );
    for q in queries {
        assert_eq!(q["answers_match"], true, "{q}");
        for leg in [
            "raw",
            "raw_filter_first",
            "governed",
            "governed_fresh_plan",
            "http",
        ] {
            assert!(q[leg]["median_ms"].as_f64().unwrap() > 0.0, "{q}");
        }
        let ratio =
            q["governed"]["median_ms"].as_f64().unwrap() / q["raw"]["median_ms"].as_f64().unwrap();
        assert!(
            (q["governed_over_raw"].as_f64().unwrap() - ratio).abs() < 1e-9,
            "{q}"
        );
        assert!(q["http_over_raw"].as_f64().unwrap() > 0.0, "{q}");
        assert!(
            q["governed_fresh_plan_over_raw"].as_f64().unwrap() > 0.0,
            "{q}"
        );
    }
    let small = &report["small_query"];
    assert_eq!(small["answers_match"], true, "{small}");
    for leg in [
        "raw",
        "raw_filter_first",
        "raw_parquet",
        "plan_and_enforce",
        "governed",
        "governed_parquet",
        "http",
    ] {
        assert!(small[leg]["median_ms"].as_f64().unwrap() > 0.0, "{small}");
    }
    let throughput = report["throughput"].as_array().unwrap();
    let paths: Vec<&str> = throughput
        .iter()
        .map(|t| t["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["in_process_memory", "in_process_parquet", "http"]);
    for t in throughput {
        assert_eq!(t["clients"], 16);
        assert!(t["answered"].as_u64().unwrap() > 0, "{t}");
        assert_eq!(t["failed"], 0, "{t}");
    }
    assert!(report["audit"]["records"].as_u64().unwrap() > 0);
    assert!(report["audit"]["records_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(report["catalog"]["datasets"], 40);
    assert!(
        report["catalog"]["publications_per_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    let goals = report["goals"].as_array().unwrap();
    assert_eq!(goals.len(), 6 * 2 + 2);
    assert!(goals.iter().all(|g| g["met"].is_boolean()));
}
