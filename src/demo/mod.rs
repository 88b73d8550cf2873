//! `dataspace demo`: the whole mission on real services, narrated.
//!
//! An authority admits a platform and an SME; a catalog and both connectors
//! run on loopback with sled stores in one folder; the platform publishes
//! generated telemetry (aggregates only) and supplier figures (rows); the
//! SME finds them, contracts, queries, is refused, loses access when the
//! platform revokes; the data officer verifies the audit chain.

mod data;
mod narrator;
mod policies;
mod serve;
mod space;
mod steps;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use self::narrator::{Narrator, millis};
use self::serve::serve_until_interrupted;
use self::space::Space;
use crate::served::Served;

/// Steps of the walk-through.
const STEPS: usize = 10;

/// What `dataspace demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Telemetry rows to generate.
    pub rows: usize,
    /// Keep everything running afterwards, until Ctrl-C.
    pub serve: bool,
    /// Folder for homes, stores and data; a temporary one when absent.
    pub dir: Option<PathBuf>,
}

/// Runs the demo; `Err` names the step that failed.
pub async fn run(options: &DemoOptions) -> Result<()> {
    let temporary;
    let dir = match &options.dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                bail!(
                    "`{}` is not empty; give a new or empty folder",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("dataspace-demo-")
                .tempdir()
                .context("cannot create a temporary folder")?;
            temporary.path().to_path_buf()
        }
    };
    println!(
        "A trusted data space on this machine, in `{}`.",
        dir.display()
    );
    println!("Everything below runs on real services over loopback HTTP, with embedded storage.");
    if cfg!(debug_assertions) {
        println!(
            "This is a debug build: the times shown are those of unoptimised code, about ten \
             times a release build's (`cargo run --release -- demo`); benchmark figures are in \
             the README's Performance section."
        );
    }
    let mut n = Narrator::new(STEPS);
    walk(&mut n, &dir, options).await
}

async fn walk(n: &mut Narrator, dir: &Path, options: &DemoOptions) -> Result<()> {
    let (space, catalog) = steps::found_the_space(n, dir).await?;
    let data = dir.join("data");
    let (platform, sme) = steps::admit_the_members(n, &space, &data).await?;
    let outcome = story(n, &space, &platform, &sme, &data, options.rows).await;
    if outcome.is_ok() {
        println!(
            "\nDone in {}: every step above was enforced and audited.",
            millis(n.elapsed())
        );
    }
    if let (Ok(live), true) = (&outcome, options.serve) {
        serve_until_interrupted(&space, &platform, &sme, live, options.dir.is_some()).await?;
    }
    let stopped = async {
        sme.shut_down().await?;
        platform.shut_down().await?;
        catalog.stop().await.context("cannot stop the catalog")
    }
    .await;
    outcome.map(drop).and(stopped)
}

/// Steps 3 to 10; returns the agreement still in force (the supplier one).
async fn story(
    n: &mut Narrator,
    space: &Space,
    platform: &Served,
    sme: &Served,
    data: &Path,
    rows: usize,
) -> Result<String> {
    let (p, s) = (&platform.connector, &sme.connector);
    let rows = steps::publish_the_data(n, p, data, rows).await?;
    let offer = steps::search_the_catalog(n, space).await?;
    let contract = steps::contract_for_the_telemetry(n, s, &offer).await?;
    steps::ask_a_useful_question(n, s, &contract.id, rows).await?;
    steps::ask_what_the_policy_refuses(n, s, &contract.id).await?;
    let suppliers = steps::read_supplier_rows(n, s, &platform.url).await?;
    steps::revoke_the_telemetry(n, p, s, &contract.id).await?;
    steps::read_the_audit_log(n, p).await?;
    Ok(suppliers)
}
