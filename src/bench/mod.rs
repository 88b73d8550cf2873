//! `dataspace bench`: what governance costs, measured on TPC-H data.
//!
//! Each query runs three ways: raw DataFusion on the Parquet files, the
//! governed engine in process (plan, enforce, execute), and end to end
//! through a provider connector over loopback HTTP with an Arrow IPC
//! answer. The raw twin of a governed query has the policy written in by
//! hand, and the run checks that all three answers are identical. The same
//! report holds small-query throughput, the durable audit append rate and
//! catalog figures. See `docs/performance.md`.

pub mod audit;
pub mod catalog;
pub mod http;
pub mod inprocess;
pub mod queries;
pub mod report;
pub mod small;
pub mod throughput;
pub mod tpch;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, anyhow};

use self::http::Loopback;
use self::inprocess::{InProcess, canonical};
use self::queries::BenchQuery;
use self::report::{Machine, QueryFigures, Report, Timing, timed};
use self::small::SmallLegs;

/// The dataset id of the full table.
pub const LINEITEM: &str = "lineitem";
/// The dataset id of the small-query throughput table.
pub const LINEITEM_SMALL: &str = "lineitem_small";

/// What to measure and how long.
#[derive(Debug, Clone)]
pub struct Options {
    /// TPC-H scale factor of `lineitem`.
    pub scale: f64,
    /// Timed runs per query and leg.
    pub runs: usize,
    /// Where the Parquet files are (generated if missing).
    pub data: PathBuf,
    /// Rows of the throughput table (about).
    pub throughput_rows: u64,
    /// Concurrent clients of the throughput runs.
    pub clients: usize,
    /// Length of each throughput run.
    pub throughput_time: Duration,
    /// Concurrent audit appenders.
    pub audit_appenders: u64,
    /// Length of the audit run.
    pub audit_time: Duration,
    /// Datasets published in the catalog run (0: no catalog run).
    pub catalog_datasets: usize,
}

/// The generated tables.
#[derive(Debug, Clone)]
pub struct Tables {
    /// `lineitem` at the chosen scale.
    pub lineitem: tpch::Table,
    /// `lineitem_small` for the throughput runs.
    pub small: tpch::Table,
}

/// Generates (or reuses) the Parquet tables under `options.data`.
pub fn prepare(options: &Options, progress: &(dyn Fn(&str) + Sync)) -> Result<Tables> {
    let lineitem = tpch::lineitem(
        &options
            .data
            .join(format!("sf{}", options.scale))
            .join(LINEITEM),
        options.scale,
        tpch::Layout::Generated,
        progress,
    )?;
    let small_scale = options.throughput_rows as f64 / tpch::LINEITEM_ROWS_PER_SCALE;
    let small = tpch::lineitem(
        &options
            .data
            .join(format!("rows{}", options.throughput_rows))
            .join(LINEITEM_SMALL),
        small_scale,
        tpch::Layout::ByShipDate,
        progress,
    )?;
    for table in [&lineitem, &small] {
        if table.reused {
            progress(&format!(
                "reusing {} rows in `{}`",
                table.rows,
                table.dir.display()
            ));
        }
    }
    Ok(Tables { lineitem, small })
}

/// Runs every measurement; `progress` is told what is going on.
pub async fn run(
    options: &Options,
    tables: &Tables,
    progress: &(dyn Fn(&str) + Sync),
) -> Result<Report> {
    let mut machine = Machine::describe();
    let local = InProcess::open(LINEITEM, &tables.lineitem.dir).await?;
    progress("starting a provider and a consumer connector on loopback");
    let world = Loopback::start(
        &options.data,
        &[
            (LINEITEM, tables.lineitem.dir.as_path()),
            (LINEITEM_SMALL, tables.small.dir.as_path()),
        ],
    )
    .await?;
    let mut figures = Vec::new();
    for query in queries::all() {
        progress(&format!(
            "query {} ({} runs per leg)",
            query.name, options.runs
        ));
        figures.push(measure(&local, &world, &query, options.runs).await?);
    }
    let small = SmallLegs::open(LINEITEM_SMALL, &tables.small, &world).await?;
    progress("small query, one client at a time");
    let small_query = small.one_client_at_a_time().await?;
    let throughput = small
        .throughput(options.clients, options.throughput_time, progress)
        .await?;
    world.stop().await?;
    progress("durable audit appends");
    let audit = audit::append_rate(options.audit_appenders, u64::MAX, options.audit_time).await?;
    let catalog = if options.catalog_datasets > 0 {
        progress(&format!(
            "catalog with {} datasets",
            options.catalog_datasets
        ));
        let count = options.catalog_datasets;
        Some(tokio::task::spawn_blocking(move || catalog::figures(count)).await??)
    } else {
        None
    };
    machine.load_average_at_end = report::load_average();
    let mut report = Report {
        generated_at: chrono::Utc::now().to_rfc3339(),
        machine,
        scale: options.scale,
        lineitem_rows: tables.lineitem.rows,
        runs: options.runs,
        queries: figures,
        small_query,
        throughput,
        audit,
        catalog,
        goals: Vec::new(),
    };
    report.goals = report::goals(&report);
    Ok(report)
}

/// One query: a warm-up run of each leg whose answers must agree, then
/// `runs` timed runs of the legs, interleaved so that a change of
/// load on the machine touches all of them alike.
async fn measure(
    local: &InProcess,
    world: &Loopback,
    query: &BenchQuery,
    runs: usize,
) -> Result<QueryFigures> {
    let client = world.client();
    let body = world.request(LINEITEM, query.mode, &query.governed)?;
    let raw = local.raw(&query.raw).await?;
    let first = local.raw(&query.raw_filter_first).await?;
    let governed = local.governed(query.mode, &query.governed).await?;
    let remote = world.query(&client, &body).await?;
    let expected = canonical(&raw)?;
    let answers_match = canonical(&first)? == expected
        && canonical(&governed)? == expected
        && canonical(&remote)? == expected;
    let rows = raw.iter().map(|b| b.num_rows()).sum();
    let mut samples = [(); 5].map(|()| Vec::new());
    for _ in 0..runs.max(1) {
        timed(&mut samples[0], local.raw(&query.raw)).await?;
        timed(&mut samples[1], local.raw(&query.raw_filter_first)).await?;
        timed(&mut samples[2], local.governed(query.mode, &query.governed)).await?;
        let fresh = local.governed_fresh_plan(query.mode, &query.governed);
        timed(&mut samples[3], fresh).await?;
        timed(&mut samples[4], world.query(&client, &body)).await?;
    }
    let [raw, first, governed, fresh, http] = samples.map(|s| Timing::of(&s));
    let ratio = |t: &Timing, base: &Timing| t.median_ms / base.median_ms.max(1e-9);
    Ok(QueryFigures {
        name: query.name.to_owned(),
        mode: query.mode,
        governed_sql: query.governed.clone(),
        raw_sql: query.raw.clone(),
        raw_filter_first_sql: query.raw_filter_first.clone(),
        rows,
        answers_match,
        governed_over_raw: ratio(&governed, &raw),
        governed_fresh_plan_over_raw: ratio(&fresh, &raw),
        http_over_raw: ratio(&http, &raw),
        governed_over_raw_filter_first: ratio(&governed, &first),
        raw,
        raw_filter_first: first,
        governed,
        governed_fresh_plan: fresh,
        http,
    })
}

/// Writes the report as JSON to `path`.
pub fn write_json(report: &Report, path: &Path) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, format!("{text}\n"))
        .map_err(|e| anyhow!("cannot write `{}`: {e}", path.display()))
}
