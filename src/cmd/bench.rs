//! `dataspace bench`: the performance report on TPC-H data (see
//! `docs/performance.md`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;

use crate::bench::{self, Options};

/// Flags of `dataspace bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// TPC-H scale factor of `lineitem` (1 is six million rows).
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    scale: f64,
    /// Timed runs per query and leg; medians are reported.
    #[arg(long, default_value_t = 7, value_name = "N")]
    runs: usize,
    /// Where to write the JSON report.
    #[arg(long, default_value = "bench-report.json", value_name = "FILE")]
    out: PathBuf,
    /// Folder of generated Parquet files, reused across runs (generated if missing).
    #[arg(long, default_value = "target/tpch", value_name = "DIR")]
    data: PathBuf,
    /// Rows of the small-query throughput table.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    throughput_rows: u64,
    /// Concurrent clients of the throughput runs.
    #[arg(long, default_value_t = 16, value_name = "N")]
    clients: usize,
    /// Seconds of each throughput run.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    throughput_seconds: f64,
    /// Concurrent appenders of the audit run.
    #[arg(long, default_value_t = 64, value_name = "N")]
    audit_appenders: u64,
    /// Seconds of the audit run.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    audit_seconds: f64,
    /// Datasets published in the catalog run (0 skips it).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    catalog_datasets: usize,
    /// Run even though this is not a release build (the figures then say
    /// nothing about the product; for checking the command itself).
    #[arg(long)]
    allow_debug_build: bool,
}

/// Generates the data, measures, prints the table and writes the report.
pub fn run(args: &BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) && !args.allow_debug_build {
        anyhow::bail!(
            "`dataspace bench` measures a release build, and this one is a debug build: \
             run `cargo run --release -- bench ...` (the first release build takes about 21 \
             minutes on 2 cores), or pass `--allow-debug-build` to check the command alone"
        );
    }
    std::fs::create_dir_all(&args.data)
        .with_context(|| format!("cannot create `{}`", args.data.display()))?;
    let data = args
        .data
        .canonicalize()
        .with_context(|| format!("cannot resolve `{}`", args.data.display()))?;
    let seconds = |s: f64, flag: &str| {
        Duration::try_from_secs_f64(s)
            .with_context(|| format!("`--{flag}` must be a positive number of seconds"))
    };
    let options = Options {
        scale: args.scale,
        runs: args.runs,
        data,
        throughput_rows: args.throughput_rows,
        clients: args.clients,
        throughput_time: seconds(args.throughput_seconds, "throughput-seconds")?,
        audit_appenders: args.audit_appenders,
        audit_time: seconds(args.audit_seconds, "audit-seconds")?,
        catalog_datasets: args.catalog_datasets,
    };
    let progress = |line: &str| eprintln!("bench: {line}");
    let tables = bench::prepare(&options, &progress)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(bench::run(&options, &tables, &progress))?;
    bench::write_json(&report, &args.out)?;
    println!("{}", bench::report::table(&report));
    println!("report written to `{}`", args.out.display());
    Ok(())
}
