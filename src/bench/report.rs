//! The benchmark report: figures per query (medians of raw, governed and
//! end-to-end runs, and their ratios), throughput, audit and catalog
//! figures, the goals met or missed; as JSON and as a readable table.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::Result;

use serde::Serialize;

use super::audit::AuditRate;
use super::catalog::CatalogFigures;
use super::queries::Mode;
use super::throughput::Throughput;

/// Everything one `dataspace bench` run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// When the run ended (RFC 3339).
    pub generated_at: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// TPC-H scale factor.
    pub scale: f64,
    /// Rows of `lineitem`.
    pub lineitem_rows: u64,
    /// Timed runs per query and leg (after one warm-up run).
    pub runs: usize,
    /// Figures per query.
    pub queries: Vec<QueryFigures>,
    /// The small query, one client at a time.
    pub small_query: SmallQuery,
    /// Small-query throughput.
    pub throughput: Vec<Throughput>,
    /// Durable audit appends.
    pub audit: AuditRate,
    /// Catalog figures, when measured.
    pub catalog: Option<CatalogFigures>,
    /// The goals of the benchmark, met or missed.
    pub goals: Vec<Goal>,
}

/// The machine a report was taken on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical cores available to the process.
    pub cores: usize,
    /// The processor, from `/proc/cpuinfo`.
    pub cpu: String,
    /// Memory, GiB, from `/proc/meminfo`.
    pub memory_gib: f64,
    /// Load average when the run started, from `/proc/loadavg`.
    pub load_average_at_start: String,
    /// Load average when the run ended.
    pub load_average_at_end: String,
}

impl Machine {
    /// Reads what the system says about itself (Linux; blanks elsewhere).
    pub fn describe() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib: f64 = meminfo
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            memory_gib: (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            load_average_at_start: load_average(),
            load_average_at_end: String::new(),
        }
    }
}

/// The 1, 5 and 15 minute load averages.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// One query's figures.
#[derive(Debug, Clone, Serialize)]
pub struct QueryFigures {
    /// Its name.
    pub name: String,
    /// The policy's mode.
    pub mode: Mode,
    /// The consumer's SQL.
    pub governed_sql: String,
    /// The raw twin (row filter last).
    pub raw_sql: String,
    /// The raw twin with the row filter first.
    pub raw_filter_first_sql: String,
    /// Rows in the answer.
    pub rows: usize,
    /// Whether raw, governed and end-to-end answers are identical.
    pub answers_match: bool,
    /// Raw DataFusion in process.
    pub raw: Timing,
    /// Raw DataFusion, the row filter written first.
    pub raw_filter_first: Timing,
    /// Governed in process (plan, enforce, execute); after the warm-up run
    /// the engine reuses the query's prepared plan.
    pub governed: Timing,
    /// Governed in process with no prepared plan: parse, plan, enforce,
    /// optimise and plan physically on every run.
    pub governed_fresh_plan: Timing,
    /// Governed through the provider connector over loopback HTTP.
    pub http: Timing,
    /// Median governed over median raw.
    pub governed_over_raw: f64,
    /// Median governed with a fresh plan over median raw.
    pub governed_fresh_plan_over_raw: f64,
    /// Median governed over the median of the raw twin with the row
    /// filter first: the cost of governance beyond evaluation order.
    pub governed_over_raw_filter_first: f64,
    /// Median end to end over median raw.
    pub http_over_raw: f64,
}

/// The small query of the throughput runs, one client at a time: where
/// its time goes.
#[derive(Debug, Clone, Serialize)]
pub struct SmallQuery {
    /// The consumer's SQL.
    pub sql: String,
    /// The raw twin.
    pub raw_sql: String,
    /// Rows in the table (held in memory for the in-process legs).
    pub table_rows: u64,
    /// Runs per leg.
    pub runs: usize,
    /// Whether raw, governed and end-to-end answers are identical.
    pub answers_match: bool,
    /// Raw DataFusion on the table in memory.
    pub raw: Timing,
    /// The same, the row filter written first.
    pub raw_filter_first: Timing,
    /// Raw DataFusion on the Parquet file.
    pub raw_parquet: Timing,
    /// Parse, plan and enforce only.
    pub plan_and_enforce: Timing,
    /// Governed in process: plan, enforce, execute.
    pub governed: Timing,
    /// Governed in process on the Parquet files (as the connector reads them).
    pub governed_parquet: Timing,
    /// Through the provider connector over HTTP (Parquet).
    pub http: Timing,
}

/// Times of one leg, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Median.
    pub median_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// Slowest run.
    pub max_ms: f64,
}

impl Timing {
    /// The median, minimum and maximum of `samples` (milliseconds).
    pub fn of(samples: &[f64]) -> Self {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => 0.0,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            median_ms: median,
            min_ms: sorted.first().copied().unwrap_or(0.0),
            max_ms: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

/// A goal of the benchmark.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What is measured.
    pub what: String,
    /// The target, as text (`<= 1.05`, `>= 1000`).
    pub target: String,
    /// The measured figure.
    pub measured: f64,
    /// Whether it is met.
    pub met: bool,
}

impl Goal {
    /// A goal that `measured` stays at most `limit`.
    pub fn at_most(what: String, limit: f64, measured: f64) -> Self {
        Self {
            what,
            target: format!("<= {limit}"),
            measured,
            met: measured <= limit,
        }
    }

    /// A goal that `measured` reaches at least `floor`.
    pub fn at_least(what: String, floor: f64, measured: f64) -> Self {
        Self {
            what,
            target: format!(">= {floor}"),
            measured,
            met: measured >= floor,
        }
    }
}

/// The goals of the issue, checked against `report`.
pub fn goals(report: &Report) -> Vec<Goal> {
    let mut goals = Vec::new();
    for q in &report.queries {
        let limit = match q.mode {
            Mode::Rows => 1.05,
            Mode::Aggregate => 1.3,
        };
        goals.push(Goal::at_most(
            format!("{} governed/raw (median)", q.name),
            limit,
            q.governed_over_raw,
        ));
        goals.push(Goal::at_most(
            format!("{} http/raw (median, scale {})", q.name, report.scale),
            1.2,
            q.http_over_raw,
        ));
    }
    for t in report.throughput.iter().filter(|t| t.path == "http") {
        goals.push(Goal::at_least(
            format!("governed small queries/s over HTTP, {} clients", t.clients),
            1000.0,
            t.queries_per_second,
        ));
    }
    goals.push(Goal::at_least(
        format!(
            "durable audit records/s, {} appenders",
            report.audit.appenders
        ),
        20_000.0,
        report.audit.records_per_second,
    ));
    goals
}

/// Runs `leg` and adds the time it took, in milliseconds, to `samples`.
pub async fn timed<T>(samples: &mut Vec<f64>, leg: impl Future<Output = Result<T>>) -> Result<()> {
    let start = Instant::now();
    leg.await?;
    samples.push(start.elapsed().as_secs_f64() * 1e3);
    Ok(())
}

/// The report as a readable table.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    for section in [
        header_line,
        queries_table,
        small_query_line,
        throughput_table,
        audit_and_catalog_lines,
        goals_table,
    ] {
        if !out.is_empty() {
            let _ = writeln!(out);
        }
        section(&mut out, report);
    }
    out
}

/// The run and its machine.
fn header_line(out: &mut String, report: &Report) {
    let m = &report.machine;
    let _ = writeln!(
        out,
        "TPC-H scale {} ({} lineitem rows), {} runs per leg; {} cores, {}, {} GiB; load {} -> {}",
        report.scale,
        report.lineitem_rows,
        report.runs,
        m.cores,
        m.cpu,
        m.memory_gib,
        m.load_average_at_start,
        m.load_average_at_end
    );
}

/// A row a query: its medians and ratios.
fn queries_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "| query | mode | rows | raw ms | raw, filter first ms | governed ms | governed, fresh plan ms | http ms | governed/raw | fresh plan/raw | http/raw | governed/raw filter first | same answer |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for q in &report.queries {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            q.name,
            q.mode.as_str(),
            q.rows,
            q.raw.median_ms,
            q.raw_filter_first.median_ms,
            q.governed.median_ms,
            q.governed_fresh_plan.median_ms,
            q.http.median_ms,
            q.governed_over_raw,
            q.governed_fresh_plan_over_raw,
            q.http_over_raw,
            q.governed_over_raw_filter_first,
            if q.answers_match { "yes" } else { "NO" }
        );
    }
}

/// The small query, one client at a time.
fn small_query_line(out: &mut String, report: &Report) {
    let sq = &report.small_query;
    let _ = writeln!(
        out,
        "small query, one client, {} rows (median ms): raw in memory {:.2}, raw in memory filter first {:.2}, raw on Parquet {:.2}, plan + enforce {:.2}, governed in memory {:.2}, governed on Parquet {:.2}, http {:.2}; same answer: {}",
        sq.table_rows,
        sq.raw.median_ms,
        sq.raw_filter_first.median_ms,
        sq.raw_parquet.median_ms,
        sq.plan_and_enforce.median_ms,
        sq.governed.median_ms,
        sq.governed_parquet.median_ms,
        sq.http.median_ms,
        if sq.answers_match { "yes" } else { "NO" }
    );
}

/// A row a throughput run.
fn throughput_table(out: &mut String, report: &Report) {
    let _ = writeln!(
        out,
        "| throughput | clients | table rows | queries/s | p50 ms | p95 ms | failed |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|");
    for t in &report.throughput {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {} |",
            t.path, t.clients, t.table_rows, t.queries_per_second, t.p50_ms, t.p95_ms, t.failed
        );
    }
}

/// The audit append rate and, when measured, the catalog figures.
fn audit_and_catalog_lines(out: &mut String, report: &Report) {
    let a = &report.audit;
    let _ = writeln!(
        out,
        "audit: {} durable records in {:.2} s with {} appenders = {:.0} records/s",
        a.records, a.seconds, a.appenders, a.records_per_second
    );
    if let Some(c) = &report.catalog {
        let _ = writeln!(
            out,
            "catalog at {} datasets: {:.0} publications/s, search p50 {:.3} ms, p95 {:.3} ms, restart {:.2} s",
            c.datasets,
            c.publications_per_second,
            c.search_p50_ms,
            c.search_p95_ms,
            c.restart_seconds
        );
    }
}

/// The goals, met or missed.
fn goals_table(out: &mut String, report: &Report) {
    let _ = writeln!(out, "| goal | target | measured | met |");
    let _ = writeln!(out, "|---|---|---:|---|");
    for g in &report.goals {
        let _ = writeln!(
            out,
            "| {} | {} | {:.2} | {} |",
            g.what,
            g.target,
            g.measured,
            if g.met { "yes" } else { "no" }
        );
    }
}
