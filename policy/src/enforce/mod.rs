//! Enforcement of usage policies on DataFusion logical plans.
//!
//! [`enforce_plan`] walks the whole plan, subqueries included, bottom-up. For
//! every node it knows the lineage of each output column (which governed
//! columns, of which class, it derives from) and whether the node's rows are
//! still unaggregated dataset rows. It refuses what the spec forbids, and
//! rewrites what the spec requires: the threshold into every enforced
//! aggregate, as a barrier node ([`crate::barrier::ThresholdNode`]). The
//! row filter is part of every governed table's scan
//! ([`crate::barrier::GovernedTable`]); a scan of any other table is refused.
//!
//! The plan enforced is the one the SQL planner produces, before the
//! analyzer's type coercion, so that casts in it are the consumer's own.

mod aggregate;
mod columns;
mod filter;
mod lineage;
mod literals;
mod nodes;
mod refusal;
mod statement;
#[cfg(test)]
pub(crate) mod test_support;
mod threshold;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};

pub use refusal::{Decision, Refusal, Rule};
pub use statement::{SqlLimits, parse_bounded_select, parse_single_select};

use crate::model::{Access, UsagePolicy};

/// The datasets a caller may query, each with the policy that governs it,
/// under its dataset id (the table name).
#[derive(Debug, Clone, Default)]
pub struct Governed {
    tables: HashMap<String, Arc<UsagePolicy>>,
}

impl Governed {
    /// No datasets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the dataset of `policy`, replacing any earlier policy for it.
    pub fn insert(&mut self, policy: Arc<UsagePolicy>) {
        self.tables.insert(policy.dataset().to_owned(), policy);
    }

    /// The policy governing the table `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<UsagePolicy>> {
        self.tables.get(name)
    }

    /// All governed datasets.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<UsagePolicy>> {
        self.tables.values()
    }

    fn is_aggregate(&self, table: &str) -> bool {
        self.get(table)
            .is_some_and(|p| p.access == Access::Aggregate)
    }
}

/// A plan that obeys every governed dataset's policy.
#[derive(Debug, Clone)]
pub struct EnforcedPlan {
    /// The rewritten plan, standard nodes only.
    pub plan: LogicalPlan,
    /// The largest result allowed (`max_rows_per_query`); the plan fetches at
    /// most one row more, so that the executor can refuse a larger result whole.
    pub max_rows: Option<u64>,
    /// The datasets the query reads.
    pub datasets: Vec<String>,
}

/// Enforces the policies of `governed` on `plan` (as produced by the SQL
/// planner over [`crate::barrier::GovernedTable`]s) at time `now`.
pub fn enforce_plan(
    plan: &LogicalPlan,
    governed: &Governed,
    now: DateTime<Utc>,
) -> Decision<EnforcedPlan> {
    literals::check_literal_arguments(plan)?;
    let mut enforcer = nodes::Enforcer::new(governed, now);
    let (rewritten, rel) = enforcer.visit(plan, &[])?;
    columns::check_columns(&rel.cols)?;
    if rel.unaggregated.iter().any(|t| governed.is_aggregate(t)) {
        return Err(Refusal::new(
            Rule::AggregationRequired,
            "the dataset allows only aggregates: every value must come from `count`, `sum` or `avg` over `GROUP BY` dimensions",
        ));
    }
    let datasets = enforcer.scanned();
    let max_rows = datasets
        .iter()
        .filter_map(|d| governed.get(d).and_then(|p| p.max_rows_per_query()))
        .min();
    let plan = match max_rows {
        Some(max) => {
            let fetch = usize::try_from(max.saturating_add(1)).unwrap_or(usize::MAX);
            LogicalPlanBuilder::from(rewritten)
                .limit(0, Some(fetch))
                .and_then(LogicalPlanBuilder::build)
                .map_err(|e| {
                    Refusal::new(
                        Rule::Structure,
                        format!("the row limit cannot be applied: {e}"),
                    )
                })?
        }
        None => rewritten,
    };
    Ok(EnforcedPlan {
        plan,
        max_rows,
        datasets,
    })
}
