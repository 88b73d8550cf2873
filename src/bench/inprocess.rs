//! The in-process legs: raw DataFusion on the Parquet files, as a user
//! would run it, and the governed engine (plan, enforce, execute) on the
//! same files under each policy.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use connector::engine::{ExecutionLimits, GovernedEngine};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use policy::model::UsagePolicy;

use super::queries::{Mode, policy_json};

/// Raw DataFusion and one governed engine per mode over one table.
pub struct InProcess {
    raw: SessionContext,
    rows: GovernedEngine,
    aggregate: GovernedEngine,
}

impl InProcess {
    /// Opens the Parquet folder `dir` as table `dataset`, raw and governed.
    pub async fn open(dataset: &str, dir: &Path) -> Result<Self> {
        let raw = SessionContext::new();
        let location = format!("{}/", dir.display());
        raw.register_parquet(dataset, &location, ParquetReadOptions::default())
            .await
            .with_context(|| format!("cannot open `{location}` in DataFusion"))?;
        let mut rows = GovernedEngine::new(ExecutionLimits::default())?;
        let roots = [dir.to_path_buf()];
        rows.add_dataset(policy(Mode::Rows, dataset)?, dir, &roots)
            .await?;
        let mut aggregate = GovernedEngine::new(ExecutionLimits::default())?;
        aggregate
            .add_dataset(policy(Mode::Aggregate, dataset)?, dir, &roots)
            .await?;
        Ok(Self {
            raw,
            rows,
            aggregate,
        })
    }

    /// Runs `sql` on the raw table.
    pub async fn raw(&self, sql: &str) -> Result<Vec<RecordBatch>> {
        let frame = self
            .raw
            .sql(sql)
            .await
            .with_context(|| format!("DataFusion cannot plan `{sql}`"))?;
        frame
            .collect()
            .await
            .with_context(|| format!("DataFusion cannot run `{sql}`"))
    }

    /// The governed engine of the `mode` policy.
    pub fn engine(&self, mode: Mode) -> &GovernedEngine {
        match mode {
            Mode::Rows => &self.rows,
            Mode::Aggregate => &self.aggregate,
        }
    }

    /// Runs `sql` governed by the `mode` policy.
    pub async fn governed(&self, mode: Mode, sql: &str) -> Result<Vec<RecordBatch>> {
        answer(self.engine(mode), sql).await
    }

    /// Runs `sql` governed by the `mode` policy on a copy of the engine
    /// with no prepared plans, so that every step of planning is paid.
    pub async fn governed_fresh_plan(&self, mode: Mode, sql: &str) -> Result<Vec<RecordBatch>> {
        answer(&self.engine(mode).clone(), sql).await
    }
}

async fn answer(engine: &GovernedEngine, sql: &str) -> Result<Vec<RecordBatch>> {
    let answer = engine
        .query(sql, Utc::now())
        .await
        .map_err(|e| anyhow!("the governed engine did not answer `{sql}`: {e}"))?;
    Ok(answer.batches)
}

/// The `mode` policy on `dataset`.
pub fn policy(mode: Mode, dataset: &str) -> Result<UsagePolicy> {
    Ok(UsagePolicy::from_json_str(&policy_json(
        mode,
        dataset,
        super::http::PROVIDER,
    ))?)
}

/// The rows of the Parquet folder `dir`, read once and held in memory,
/// spread over as many partitions as there are cores (as a connector holds
/// a dataset under `memory_table_bytes`).
pub async fn cached_table(dir: &Path) -> Result<Arc<MemTable>> {
    let state = policy::sql::governed_state(policy::sql::governed_config());
    let roots = [dir.to_path_buf()];
    let files = connector::tables::open_table(&state, "cached", dir, &roots).await?;
    Ok(connector::tables::in_memory(&state, "cached", files).await?)
}

/// A governed engine over the in-memory `table`, registered as `dataset`
/// under the aggregate policy.
pub fn cached_engine(dataset: &str, table: Arc<MemTable>) -> Result<GovernedEngine> {
    let mut engine = GovernedEngine::new(ExecutionLimits::default())?;
    engine.register_provider(policy(Mode::Aggregate, dataset)?, table)?;
    Ok(engine)
}

/// The answer as text (values, column names, row order): equal text,
/// equal answer.
pub fn canonical(batches: &[RecordBatch]) -> Result<String> {
    Ok(
        datafusion::arrow::util::pretty::pretty_format_batches(batches)
            .context("cannot format an answer")?
            .to_string(),
    )
}
