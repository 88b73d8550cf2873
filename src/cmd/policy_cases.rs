//! `dataspace policy test` and `dataspace policy check`: the enforcer run on
//! case files, or on one query as a dry run.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use connector::casefile::{CaseRunner, read_cases};
use connector::engine::{ExecutionLimits, GovernedEngine};
use connector::tables::open_table;
use datafusion::catalog::TableProvider;
use policy::document::{DocumentKind, SignedDocument};
use policy::model::UsagePolicy;

use super::files::read_text;

/// Arguments of `dataspace policy test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// A usage policy (JSON, or a signed policy as written by `policy sign`);
    /// repeat for several governed tables.
    #[arg(long = "policy", value_name = "FILE", required = true)]
    policies: Vec<PathBuf>,
    /// A table as NAME=PATH (CSV with header, Parquet or Arrow IPC; a file or
    /// folder). Tables named after a policy's dataset are governed by it.
    #[arg(long = "table", value_name = "NAME=PATH", value_parser = parse_table, required = true)]
    tables: Vec<(String, PathBuf)>,
    /// Case files (TOML, format of `shared/redteam/README.md`).
    #[arg(value_name = "CASES.toml", required = true)]
    cases: Vec<PathBuf>,
}

/// Arguments of `dataspace policy check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A usage policy (JSON, or a signed policy); repeat for several tables.
    #[arg(long = "policy", value_name = "FILE", required = true)]
    policies: Vec<PathBuf>,
    /// A table as NAME=PATH.
    #[arg(long = "table", value_name = "NAME=PATH", value_parser = parse_table, required = true)]
    tables: Vec<(String, PathBuf)>,
    /// The consumer's SQL.
    #[arg(long, value_name = "SQL")]
    sql: String,
}

fn parse_table(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("`{text}` is not NAME=PATH")),
    }
}

/// Reads a policy from JSON, or from a signed policy whose signature verifies.
fn load_policy(path: &Path) -> Result<UsagePolicy> {
    let text = read_text(path)?;
    let trimmed = text.trim();
    let policy = if trimmed.starts_with('{') {
        UsagePolicy::from_json_str(trimmed)?
    } else {
        let signed: SignedDocument<UsagePolicy> =
            SignedDocument::verify(trimmed, DocumentKind::UsagePolicy, None)?;
        let policy = signed.payload().clone();
        policy.validate()?;
        policy
    };
    Ok(policy)
}

struct Loaded {
    engine: GovernedEngine,
    raw_tables: Vec<(String, Arc<dyn TableProvider>)>,
}

async fn load(policies: &[PathBuf], tables: &[(String, PathBuf)]) -> Result<Loaded> {
    let mut policies: Vec<UsagePolicy> = policies
        .iter()
        .map(|p| load_policy(p).with_context(|| format!("policy `{}`", p.display())))
        .collect::<Result<_>>()?;
    let mut engine = GovernedEngine::new(ExecutionLimits::default())?;
    let mut raw_tables = Vec::new();
    for (name, path) in tables {
        // A local tool: each table is confined to its own folder.
        let roots = [connector::rooted::own_folder(path)];
        let provider = open_table(engine.state(), name, path, &roots).await?;
        if let Some(i) = policies.iter().position(|p| p.dataset() == name) {
            engine.register_provider(policies.swap_remove(i), Arc::clone(&provider))?;
        }
        raw_tables.push((name.clone(), provider));
    }
    if let Some(policy) = policies.first() {
        bail!(
            "no `--table` is named `{}`, the dataset of policy `{}`",
            policy.dataset(),
            policy.id
        );
    }
    Ok(Loaded { engine, raw_tables })
}

/// Prints a line; a closed stdout (`| head`) is not an error worth a panic.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Runs case files; fails when any case fails.
pub fn test(args: &TestArgs) -> Result<()> {
    runtime()?.block_on(async {
        let loaded = load(&args.policies, &args.tables).await?;
        let runner = CaseRunner::new(loaded.engine, loaded.raw_tables).await?;
        let (mut passed, mut failed) = (0_usize, 0_usize);
        for file in &args.cases {
            for case in read_cases(file)? {
                let outcome = runner.run(&case).await;
                let rule = outcome
                    .rule
                    .as_deref()
                    .map(|r| format!(" [{r}]"))
                    .unwrap_or_default();
                match outcome.failure {
                    None => {
                        passed += 1;
                        say(format_args!("PASS {}{rule}", outcome.id));
                    }
                    Some(why) => {
                        failed += 1;
                        say(format_args!("FAIL {}{rule}: {why}", outcome.id));
                    }
                }
            }
        }
        say(format_args!("{passed} passed, {failed} failed"));
        if failed > 0 {
            bail!("{failed} of {} cases failed", passed + failed);
        }
        Ok(())
    })
}

/// Plans and enforces one query and prints the decision, without reading rows.
pub fn check(args: &CheckArgs) -> Result<()> {
    runtime()?.block_on(async {
        let loaded = load(&args.policies, &args.tables).await?;
        match loaded.engine.plan(&args.sql, chrono::Utc::now()).await {
            Ok(checked) => {
                say(format_args!("decision: accepted"));
                say(format_args!("rule: none"));
                if let Some(max) = checked.enforced.max_rows {
                    say(format_args!("row limit: {max}"));
                }
                say(format_args!(
                    "enforced plan:\n{}",
                    checked.enforced.plan.display_indent()
                ));
                say(format_args!(
                    "verified physical plan (what runs):\n{}",
                    checked.physical_text()
                ));
                Ok(())
            }
            Err(connector::Error::Refused(refusal)) => {
                say(format_args!("decision: refused"));
                say(format_args!("rule: {}", refusal.rule));
                say(format_args!("reason: {}", refusal.message));
                bail!("the query is refused by rule `{}`", refusal.rule)
            }
            Err(other) => Err(other.into()),
        }
    })
}
