//! Shared fixtures for the rule tests: the red-team table's schema (no rows
//! are needed to plan) under an aggregate-mode and a rows-mode policy.

use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::datatypes::Schema;
use datafusion::catalog::MemTable;
use datafusion::execution::SessionState;

use super::{EnforcedPlan, Governed};
use crate::barrier::GovernedTable;
use crate::model::UsagePolicy;
use crate::refusal::{Decision, Refusal};
use crate::sql::{governed_config, governed_state, plan_governed_sql};

pub const AGGREGATE_POLICY: &str = r#"{
  "type": "UsagePolicy", "version": 1, "id": "p1", "issuer": "platform-north",
  "target": { "dataset": "telemetry" }, "purposes": ["quality-analysis"],
  "validity": { "not_before": "2026-01-01T00:00:00Z", "not_after": "2099-12-31T23:59:59Z" },
  "access": "aggregate",
  "columns": { "machine_id": "entity", "site": "dimension", "shift": "dimension", "ts": "dimension",
               "defect": "dimension", "temperature": "measure", "vibration": "measure", "operator_name": "denied" },
  "row_filter": "site <> 'secret-plant'",
  "aggregation": { "min_rows": 5, "min_entities": 5, "functions": ["count", "sum", "avg"] },
  "joins": "none",
  "limits": { "max_queries": 500, "max_rows_per_query": 10000 }
}"#;

pub fn schema() -> Arc<Schema> {
    crate::sample::telemetry_schema()
}

/// The aggregate-mode policy with `edit` applied to its JSON value.
pub fn policy_with(edit: impl FnOnce(&mut serde_json::Value)) -> UsagePolicy {
    let mut value: serde_json::Value = serde_json::from_str(AGGREGATE_POLICY).unwrap_or_default();
    edit(&mut value);
    match UsagePolicy::from_json_str(&value.to_string()) {
        Ok(policy) => policy,
        Err(e) => unreachable!("test policy is invalid: {e}"),
    }
}

/// A rows-mode variant of the policy.
pub fn rows_policy() -> UsagePolicy {
    policy_with(|v| {
        v["access"] = "rows".into();
        if let Some(o) = v.as_object_mut() {
            o.remove("aggregation");
        }
    })
}

fn state_and_governed(policy: UsagePolicy) -> (SessionState, Governed) {
    let state = governed_state(governed_config());
    let policy = Arc::new(policy);
    let table = MemTable::try_new(schema(), vec![vec![]])
        .ok()
        .and_then(|t| GovernedTable::try_new(&state, Arc::clone(&policy), Arc::new(t)).ok());
    let options = state.config_options().catalog.clone();
    let schema_provider = state
        .catalog_list()
        .catalog(&options.default_catalog)
        .and_then(|c| c.schema(&options.default_schema));
    if let (Some(table), Some(schema_provider)) = (table, schema_provider) {
        let _ = schema_provider.register_table("telemetry".to_owned(), Arc::new(table));
    }
    let mut governed = Governed::new();
    governed.insert(policy);
    (state, governed)
}

/// Plans and enforces `sql` under `policy`.
pub fn enforce_with(policy: UsagePolicy, sql: &str) -> Decision<EnforcedPlan> {
    let (state, governed) = state_and_governed(policy);
    let runtime = tokio::runtime::Builder::new_current_thread().build();
    match runtime {
        Ok(rt) => rt.block_on(plan_governed_sql(
            &state,
            sql,
            &governed,
            Utc::now(),
            &super::SqlLimits::default(),
        )),
        Err(e) => unreachable!("no runtime: {e}"),
    }
}

/// Enforces under the aggregate-mode policy.
pub fn enforce(sql: &str) -> Decision<EnforcedPlan> {
    enforce_with(policy_with(|_| {}), sql)
}

/// The refusal of `sql` under the aggregate-mode policy (fails if accepted).
pub fn refusal(sql: &str) -> Refusal {
    match enforce(sql) {
        Err(r) => r,
        Ok(plan) => unreachable!("`{sql}` was accepted:\n{}", plan.plan.display_indent()),
    }
}

/// The enforced plan of `sql` under the aggregate-mode policy (fails if refused).
pub fn accepted(sql: &str) -> EnforcedPlan {
    match enforce(sql) {
        Ok(plan) => plan,
        Err(r) => unreachable!("`{sql}` was refused: {r}"),
    }
}

/// The physical plan of `sql` under `policy`, after every optimizer rule (not
/// yet verified).
pub fn physical_with(
    policy: UsagePolicy,
    sql: &str,
) -> std::sync::Arc<dyn datafusion::physical_plan::ExecutionPlan> {
    let (state, governed) = state_and_governed(policy);
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => unreachable!("no runtime: {e}"),
    };
    runtime.block_on(async {
        let enforced = match plan_governed_sql(
            &state,
            sql,
            &governed,
            Utc::now(),
            &super::SqlLimits::default(),
        )
        .await
        {
            Ok(plan) => plan,
            Err(r) => unreachable!("`{sql}` was refused: {r}"),
        };
        match state.create_physical_plan(&enforced.plan).await {
            Ok(plan) => plan,
            Err(e) => unreachable!("`{sql}` cannot be planned: {e}"),
        }
    })
}
