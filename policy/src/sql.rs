//! The SQL entry point: one `SELECT`, planned by DataFusion over the governed
//! tables only, then enforced.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::catalog::Session;
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
    let plan = state
        .statement_to_plan(statement)
        .await
        .map_err(planning_refusal)?;
    datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(&plan)
        .map_err(|_| Refusal::new(Rule::Statement, "only `SELECT` queries are allowed"))?;
    Ok(plan)
}

/// Maps a planning error to a refusal. Planning reads no data, so its
/// messages quote only the query and the schema; the list of valid fields
/// that DataFusion appends is cut off.
fn planning_refusal(e: datafusion::error::DataFusionError) -> Refusal {
    let text = e.strip_backtrace();
    let first = text.lines().next().unwrap_or_default();
    let first = first.split(". Valid fields are").next().unwrap_or(first);
    let first = first.split(", Valid fields are").next().unwrap_or(first);
    let lower = first.to_ascii_lowercase();
    if lower.contains("table") && (lower.contains("not found") || lower.contains("not exist")) {
        Refusal::new(
            Rule::Table,
            format!("only the datasets of your agreements can be queried: {first}"),
        )
    } else {
        Refusal::new(
            Rule::Statement,
            format!("the query cannot be planned: {first}"),
        )
    }
}
