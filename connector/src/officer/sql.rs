//! Read-only SQL over the audit log: one `SELECT` (or `WITH ... SELECT`)
//! over the table `audit`, planned like a governed query (no DDL, no DML,
//! no statements, no table functions, no `information_schema`), run under a
//! memory limit and a timeout, its answer cut at a row limit.
//!
//! Errors from parsing and planning name what is wrong with the query (they
//! quote the officer's own SQL and the schema, never stored values); errors
//! while executing are logged under an opaque id.

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use policy::enforce::Rule;
use serde::Serialize;

use super::table::{AUDIT_TABLE, audit_table};
use crate::audit::AuditStore;
use crate::engine::execution_error;
use crate::{Error, Result};

/// Limits on one audit query.
#[derive(Debug, Clone, Copy)]
pub struct SqlLimits {
    /// Rows returned at most; the answer says when it was cut.
    pub max_rows: usize,
    /// Memory the query may hold, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock time the query may take.
    pub timeout: Duration,
    /// Partitions the log is read on.
    pub partitions: usize,
    /// Longest query text, in bytes.
    pub max_sql_bytes: usize,
}

impl Default for SqlLimits {
    fn default() -> Self {
        Self {
            max_rows: 10_000,
            memory_bytes: 512 << 20,
            timeout: Duration::from_secs(60),
            partitions: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            max_sql_bytes: 64 * 1024,
        }
    }
}

/// The answer to an audit query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditSqlAnswer {
    /// The column names, in order.
    pub columns: Vec<String>,
    /// The rows, as JSON objects (null values left out).
    pub rows: Vec<serde_json::Value>,
    /// Whether rows were left out past [`SqlLimits::max_rows`].
    pub truncated: bool,
    /// Records the table held (a snapshot taken when the query started).
    pub records: u64,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: "sql".into(),
        reason: reason.into(),
    }
}

/// A session holding only the table `audit` over `store`.
fn session(store: Arc<dyn AuditStore>, limits: &SqlLimits) -> Result<(SessionContext, u64)> {
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(limits.memory_bytes)))
        .build_arc()
        .map_err(execution_error)?;
    let config = policy::sql::governed_config().with_target_partitions(limits.partitions.max(1));
    let state = SessionStateBuilder::new_from_existing(policy::sql::governed_state(config))
        .with_runtime_env(runtime)
        .build();
    let ctx = SessionContext::new_with_state(state);
    let len = store.len()?;
    let table = audit_table(store, len, limits.partitions)?;
    ctx.register_table(AUDIT_TABLE, Arc::new(table))
        .map_err(execution_error)?;
    Ok((ctx, len))
}

/// Runs `sql` over the audit log in `store`.
pub async fn run_audit_sql(
    store: Arc<dyn AuditStore>,
    sql: &str,
    limits: SqlLimits,
) -> Result<AuditSqlAnswer> {
    if sql.len() > limits.max_sql_bytes {
        return Err(invalid(format!(
            "the query is longer than {} bytes",
            limits.max_sql_bytes
        )));
    }
    let (ctx, records) = session(store, &limits)?;
    let plan = policy::sql::plan_sql(&ctx.state(), sql)
        .await
        .map_err(|refusal| match refusal.rule {
            Rule::Table => invalid(format!("only the table `{AUDIT_TABLE}` can be queried")),
            _ => invalid(refusal.message),
        })?;
    let frame = ctx
        .execute_logical_plan(plan)
        .await
        .map_err(execution_error)?;
    let columns = frame
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let limited = frame
        .limit(0, Some(limits.max_rows.saturating_add(1)))
        .map_err(execution_error)?;
    let batches = tokio::time::timeout(limits.timeout, limited.collect())
        .await
        .map_err(|_| {
            invalid(format!(
                "the query took longer than {} s",
                limits.timeout.as_secs()
            ))
        })?
        .map_err(execution_error)?;
    let mut rows: Vec<serde_json::Value> =
        serde_json::from_slice(&crate::answer::to_json_rows(&batches)?).map_err(execution_error)?;
    let truncated = rows.len() > limits.max_rows;
    rows.truncate(limits.max_rows);
    Ok(AuditSqlAnswer {
        columns,
        rows,
        truncated,
        records,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditRecord, GENESIS_HASH, MemoryAuditStore, RecordKind};

    fn store(count: u64) -> Arc<dyn AuditStore> {
        let store = MemoryAuditStore::new();
        let mut prev = GENESIS_HASH.to_owned();
        for seq in 0..count {
            let (kind, decision) = if seq % 4 == 0 {
                (RecordKind::QueryRefused, "refused")
            } else {
                (RecordKind::QueryAnswered, "answered")
            };
            let entry = AuditEntry::new(kind, "p")
                .with_dataset("telemetry")
                .with_decision(decision)
                .with_rows(seq);
            let record = AuditRecord::seal(entry, seq, prev.clone()).unwrap();
            prev.clone_from(&record.hash);
            store.append_batch(&[record]).unwrap();
        }
        Arc::new(store)
    }

    async fn run(sql: &str) -> Result<AuditSqlAnswer> {
        run_audit_sql(store(10_000), sql, SqlLimits::default()).await
    }

    #[tokio::test]
    async fn answers_selects_over_every_partition() {
        let answer = run("SELECT decision, count(*) AS n, sum(\"rows\") AS r FROM audit GROUP BY decision ORDER BY decision")
            .await
            .unwrap();
        assert_eq!(answer.columns, ["decision", "n", "r"]);
        assert_eq!(answer.rows[0]["decision"], "answered");
        assert_eq!(answer.rows[0]["n"], 7500);
        assert_eq!(answer.rows[1]["n"], 2500);
        assert_eq!(answer.records, 10_000);
        let with = run("WITH r AS (SELECT seq FROM audit WHERE kind = 'query_refused') SELECT max(seq) AS m FROM r")
            .await
            .unwrap();
        assert_eq!(with.rows[0]["m"], 9996);
    }

    #[tokio::test]
    async fn cuts_long_answers() {
        let limits = SqlLimits {
            max_rows: 10,
            ..SqlLimits::default()
        };
        let answer = run_audit_sql(store(100), "SELECT seq FROM audit", limits)
            .await
            .unwrap();
        assert_eq!((answer.rows.len(), answer.truncated), (10, true));
    }

    #[tokio::test]
    async fn refuses_anything_but_one_select_over_audit() {
        for sql in [
            "DROP TABLE audit",
            "DELETE FROM audit",
            "INSERT INTO audit (seq) VALUES (1)",
            "CREATE TABLE x AS SELECT * FROM audit",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "SELECT 1; SELECT 2",
            "SET datafusion.execution.batch_size = 1",
            "SELECT * FROM information_schema.tables",
            "SELECT * FROM other",
            "SELECT * FROM read_csv('/etc/passwd')",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "EXPLAIN SELECT 1",
            "not sql at all",
        ] {
            let err = run(sql).await.unwrap_err();
            assert!(matches!(err, Error::Invalid { .. }), "{sql}: {err}");
        }
    }
}
