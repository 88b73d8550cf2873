//! Governed query execution: plan and enforce a consumer's SQL, run the
//! enforced plan under a memory limit and a timeout, refuse results over the
//! row limit whole, and keep engine messages (which can quote data values)
//! out of what the consumer sees.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SessionState;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::DataFrame;
use policy::enforce::{EnforcedPlan, Governed, Refusal, Rule};
use policy::model::UsagePolicy;

use crate::{Error, Result, tables};

/// Limits on one query's execution.
#[derive(Debug, Clone, Copy)]
pub struct ExecutionLimits {
    /// Memory the query may hold, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time the query may take.
    pub timeout: Duration,
}

impl Default for ExecutionLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 1 << 30,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The answer to a governed query.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The result, in Arrow record batches.
    pub batches: Vec<RecordBatch>,
    /// Rows in the result.
    pub rows: usize,
}

/// A session that holds governed tables and answers SQL under their policies.
#[derive(Clone)]
pub struct GovernedEngine {
    state: SessionState,
    governed: Governed,
    limits: ExecutionLimits,
}

impl GovernedEngine {
    /// An engine with no tables yet.
    pub fn new(limits: ExecutionLimits) -> Result<Self> {
        let runtime = RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
            .build_arc()
            .map_err(|e| Error::Execution {
                id: log_engine_error(&e),
            })?;
        let state = SessionStateBuilder::new_from_existing(policy::sql::governed_state(
            policy::sql::governed_config(),
        ))
        .with_runtime_env(runtime)
        .build();
        Ok(Self {
            state,
            governed: Governed::new(),
            limits,
        })
    }

    /// Registers the dataset at `path` under `policy`, after checking the
    /// policy against the dataset's schema.
    pub async fn add_dataset(&mut self, policy: UsagePolicy, path: &Path) -> Result<()> {
        let table = tables::open_table(&self.state, policy.dataset(), path).await?;
        self.register_provider(policy, table)
    }

    /// Registers an already opened table under `policy`.
    pub fn register_provider(
        &mut self,
        policy: UsagePolicy,
        table: Arc<dyn datafusion::catalog::TableProvider>,
    ) -> Result<()> {
        policy.validate_against_schema(&table.schema())?;
        let name = policy.dataset().to_owned();
        let schema = default_schema(&self.state).ok_or_else(|| Error::Table {
            name: name.clone(),
            path: String::new(),
            reason: "the session has no default schema".to_owned(),
        })?;
        schema
            .register_table(name.clone(), table)
            .map_err(|e| Error::Table {
                name,
                path: String::new(),
                reason: e.strip_backtrace(),
            })?;
        self.governed.insert(Arc::new(policy));
        Ok(())
    }

    /// The governed datasets.
    pub fn governed(&self) -> &Governed {
        &self.governed
    }

    /// The session state (for planning only).
    pub fn state(&self) -> &SessionState {
        &self.state
    }

    /// Plans and enforces `sql` at `now`, reading no data rows.
    pub async fn plan(&self, sql: &str, now: DateTime<Utc>) -> Result<EnforcedPlan, Refusal> {
        policy::sql::plan_governed_sql(&self.state, sql, &self.governed, now).await
    }

    /// Plans, enforces and executes `sql` at `now`.
    pub async fn query(&self, sql: &str, now: DateTime<Utc>) -> Result<Answer> {
        let enforced = self.plan(sql, now).await?;
        self.execute(enforced).await
    }

    /// Executes an enforced plan under the engine's limits.
    pub async fn execute(&self, enforced: EnforcedPlan) -> Result<Answer> {
        let frame = DataFrame::new(self.state.clone(), enforced.plan);
        let batches = match tokio::time::timeout(self.limits.timeout, frame.collect()).await {
            Ok(Ok(batches)) => batches,
            Ok(Err(e)) => {
                return Err(Error::Execution {
                    id: log_engine_error(&e),
                });
            }
            Err(_) => {
                let id = new_error_id();
                tracing::warn!(error_id = %id, "query timed out after {:?}", self.limits.timeout);
                return Err(Error::Execution { id });
            }
        };
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        if let Some(max) = enforced.max_rows
            && u64::try_from(rows).unwrap_or(u64::MAX) > max
        {
            return Err(Error::Refused(Refusal::new(
                Rule::RowLimit,
                format!(
                    "the result has more than {max} rows, the most the policy allows per query; no rows are returned"
                ),
            )));
        }
        Ok(Answer { batches, rows })
    }
}

fn default_schema(state: &SessionState) -> Option<Arc<dyn datafusion::catalog::SchemaProvider>> {
    let options = state.config_options();
    state
        .catalog_list()
        .catalog(&options.catalog.default_catalog)?
        .schema(&options.catalog.default_schema)
}

/// Logs an engine error under a fresh id and returns the id.
pub fn log_engine_error(e: &dyn std::fmt::Display) -> String {
    let id = new_error_id();
    tracing::error!(error_id = %id, "query execution failed: {e}");
    id
}

fn new_error_id() -> String {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0_u8; 8];
    let _ = SystemRandom::new().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::catalog::MemTable;

    const SECRET: &str = "Zebulon-7";

    fn table() -> Arc<MemTable> {
        let schema = Arc::new(Schema::new(vec![
            Field::new("site", DataType::Utf8, true),
            Field::new("label", DataType::Utf8, true),
            Field::new("value", DataType::Float64, true),
        ]));
        let sites: Vec<&str> = (0..20)
            .map(|i| if i < 10 { "north" } else { "south" })
            .collect();
        let labels: Vec<&str> = (0..20)
            .map(|i| if i == 3 { SECRET } else { "42" })
            .collect();
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(sites)),
                Arc::new(StringArray::from(labels)),
                Arc::new(Float64Array::from(values)),
            ],
        )
        .unwrap();
        Arc::new(MemTable::try_new(schema, vec![vec![batch]]).unwrap())
    }

    fn engine(max_rows: u64) -> GovernedEngine {
        let policy = UsagePolicy::from_json_str(&format!(
            r#"{{"type": "UsagePolicy", "version": 1, "id": "p", "issuer": "x",
                "target": {{"dataset": "readings"}}, "purposes": ["test"],
                "validity": {{"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"}},
                "access": "rows",
                "columns": {{"site": "dimension", "label": "dimension", "value": "measure"}},
                "limits": {{"max_rows_per_query": {max_rows}}}}}"#
        ))
        .unwrap();
        let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
        engine.register_provider(policy, table()).unwrap();
        engine
    }

    #[tokio::test]
    async fn execution_errors_are_generic_and_quote_no_value() {
        let error = engine(100)
            .query("SELECT CAST(label AS INT) FROM readings", Utc::now())
            .await
            .unwrap_err();
        let text = error.to_string();
        assert!(matches!(error, Error::Execution { .. }), "{text}");
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("error id"), "{text}");
    }

    #[tokio::test]
    async fn results_over_the_row_limit_are_refused_whole() {
        let engine = engine(10);
        let answer = engine
            .query(
                "SELECT site, value FROM readings WHERE site = 'north'",
                Utc::now(),
            )
            .await
            .unwrap();
        assert_eq!(answer.rows, 10);
        let error = engine
            .query("SELECT site, value FROM readings", Utc::now())
            .await
            .unwrap_err();
        assert!(
            matches!(&error, Error::Refused(r) if r.rule == Rule::RowLimit),
            "{error}"
        );
    }

    #[tokio::test]
    async fn a_policy_naming_a_missing_column_is_refused_at_registration() {
        let policy = UsagePolicy::from_json_str(
            r#"{"type": "UsagePolicy", "version": 1, "id": "p", "issuer": "x",
                "target": {"dataset": "readings"}, "purposes": ["test"],
                "validity": {"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"},
                "access": "rows", "columns": {"site": "dimension", "pressure": "measure"}}"#,
        )
        .unwrap();
        let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
        let error = engine.register_provider(policy, table()).unwrap_err();
        assert!(error.to_string().contains("columns.pressure"), "{error}");
    }
}
