//! The SQL entry point: one `SELECT`, planned by DataFusion over the governed
//! tables only, then enforced.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::catalog::Session;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::execution::context::QueryPlanner;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

use crate::barrier::{BarrierPlanner, SafeDateArguments};
use datafusion::execution::SessionState;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement;

use crate::enforce::{
    EnforcedPlan, Governed, SqlLimits, enforce_plan, parse_bounded_select, parse_single_select,
};
use crate::refusal::{Decision, Refusal, Rule};

/// Session settings for governed queries: no `information_schema`, no URL
/// tables, no table functions, SQL identifiers normalised as usual.
pub fn governed_config() -> SessionConfig {
    SessionConfig::new()
        .with_information_schema(false)
        .with_create_default_catalog_and_schema(true)
}

/// A session state for governed planning: the standard functions, no table
/// functions, and the physical planner of the barrier nodes. Register the
/// governed tables on it (as [`crate::barrier::GovernedTable`]s) and nothing
/// else.
pub fn governed_state(config: SessionConfig) -> SessionState {
    SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_table_functions(Default::default())
        .with_analyzer_rule(Arc::new(SafeDateArguments))
        .with_query_planner(Arc::new(BarrierQueryPlanner))
        .build()
}

/// The default physical planner with the barrier nodes' planner.
#[derive(Debug)]
struct BarrierQueryPlanner;

#[async_trait::async_trait]
impl QueryPlanner for BarrierQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session_state: &dyn Session,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(BarrierPlanner)])
            .create_physical_plan(logical_plan, session_state)
            .await
    }
}

/// Parses, plans and enforces `sql`. `state` must know the governed tables
/// (under their dataset ids) and nothing else.
pub async fn plan_governed_sql(
    state: &SessionState,
    sql: &str,
    governed: &Governed,
    now: DateTime<Utc>,
    limits: &SqlLimits,
) -> Decision<EnforcedPlan> {
    let statement = parse_bounded_select(sql, limits)?;
    let plan = plan_statement(state, statement).await?;
    enforce_plan(&plan, governed, now)
}

/// Parses and plans `sql` (one `SELECT`, within the default limits) without
/// enforcing anything.
pub async fn plan_sql(state: &SessionState, sql: &str) -> Decision<LogicalPlan> {
    let statement = parse_single_select(sql)?;
    plan_statement(state, statement).await
}

async fn plan_statement(state: &SessionState, statement: Statement) -> Decision<LogicalPlan> {
    check_tables_exist(state, &statement)?;
    let plan = state
        .statement_to_plan(statement)
        .await
        .map_err(|e| planning_refusal(&e))?;
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|_| Refusal::new(Rule::Statement, "only `SELECT` queries are allowed"))?;
    Ok(plan)
}

/// Refuses (rule `table`) a statement that names a table, file or table
/// function the session does not hold: the decision is taken on the
/// statement's table references (common table expressions excluded),
/// resolved as the planner resolves them, not on the planner's message.
fn check_tables_exist(state: &SessionState, statement: &Statement) -> Decision<()> {
    let references = state.resolve_table_references(statement).map_err(|e| {
        Refusal::new(
            Rule::Statement,
            format!("the query cannot be planned: {}", first_line(&e)),
        )
    })?;
    let defaults = &state.config_options().catalog;
    for reference in references {
        let resolved = reference
            .clone()
            .resolve(&defaults.default_catalog, &defaults.default_schema);
        let exists = state
            .catalog_list()
            .catalog(&resolved.catalog)
            .and_then(|catalog| catalog.schema(&resolved.schema))
            .is_some_and(|schema| schema.table_exist(&resolved.table));
        if !exists {
            return Err(Refusal::new(
                Rule::Table,
                format!(
                    "only the datasets of your agreements can be queried: `{reference}` is not one"
                ),
            ));
        }
    }
    Ok(())
}

/// Maps a planning error to a refusal (rule `statement`). Planning reads no
/// data, so its messages quote only the query and the schema; a column
/// that is not found is named alone, without the list of valid fields
/// DataFusion appends.
fn planning_refusal(e: &DataFusionError) -> Refusal {
    let detail = match e.find_root() {
        DataFusionError::SchemaError(schema, _) => match schema.as_ref() {
            SchemaError::FieldNotFound { field, .. } => {
                format!("no column `{}`", field.flat_name())
            }
            _ => first_line(e),
        },
        _ => first_line(e),
    };
    Refusal::new(
        Rule::Statement,
        format!("the query cannot be planned: {detail}"),
    )
}

/// The first line of what DataFusion says, without a backtrace.
fn first_line(e: &DataFusionError) -> String {
    e.strip_backtrace()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use crate::enforce::test_support::refusal;
    use crate::refusal::Rule;

    #[test]
    fn unknown_tables_files_and_table_functions_are_refused_by_rule_table() {
        for (sql, named) in [
            ("SELECT count(*) FROM other", "`other`"),
            ("SELECT count(*) FROM '/etc/passwd'", "`/etc/passwd`"),
            (
                "SELECT count(*) FROM information_schema.tables",
                "`information_schema.tables`",
            ),
            ("SELECT * FROM generate_series(1, 3)", "`generate_series`"),
            (
                "WITH t AS (SELECT 1 AS x) SELECT x FROM t JOIN missing ON true",
                "`missing`",
            ),
        ] {
            let r = refusal(sql);
            assert_eq!(r.rule, Rule::Table, "{sql}: {r}");
            assert!(r.message.contains(named), "{sql}: {r}");
        }
    }

    #[test]
    fn a_common_table_expression_is_not_an_unknown_table() {
        let r = refusal("WITH t AS (SELECT 1 AS x) SELECT y FROM t");
        assert_eq!(r.rule, Rule::Statement, "{r}");
    }

    #[test]
    fn an_unknown_column_is_named_without_the_valid_fields() {
        let r = refusal("SELECT count(nope) FROM telemetry");
        assert_eq!(r.rule, Rule::Statement, "{r}");
        assert!(r.message.contains("no column `nope`"), "{r}");
        assert!(!r.message.contains("operator_name"), "{r}");
    }

    #[test]
    fn other_planning_errors_are_statement_refusals() {
        let r = refusal("SELECT no_such_function(site) FROM telemetry");
        assert_eq!(r.rule, Rule::Statement, "{r}");
        assert!(r.message.contains("cannot be planned"), "{r}");
    }
}
