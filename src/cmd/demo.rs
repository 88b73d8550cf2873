//! `dataspace demo`: the whole data space on this machine, narrated.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::demo::{DemoOptions, run as run_demo};

/// Arguments of `dataspace demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Telemetry rows to generate (at least one per machine: fewer become 240).
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    rows: usize,
    /// Keep the authority, catalog and connectors running afterwards and
    /// print their URLs and commands to try, until Ctrl-C.
    #[arg(long)]
    serve: bool,
    /// Folder for the homes, stores and generated data; it must be new or
    /// empty, and is kept. Default: a temporary folder, removed at the end.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Runs the demo on a multi-threaded runtime.
pub fn run(args: &DemoArgs) -> Result<()> {
    if args.rows == 0 || args.rows > 100_000_000 {
        bail!("--rows must be between 1 and 100000000");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_demo(&DemoOptions {
        rows: args.rows,
        serve: args.serve,
        dir: args.dir.clone(),
    }))
}
