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
//! The walk is in `walker.rs`; each kind of node has its rule under
//! `rules/`, one per file, behind one trait (`rule.rs`), as DataFusion
//! writes its optimizer rules.
//!
//! The plan enforced is the one the SQL planner produces, before the
//! analyzer's type coercion, so that casts in it are the consumer's own.

mod columns;
mod describe;
mod governed;
mod lineage;
mod literals;
mod rule;
mod rules;
mod statement;
#[cfg(test)]
pub(crate) mod test_support;
mod threshold;
mod walker;

use chrono::{DateTime, Utc};
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder};

pub use crate::refusal::{Decision, Refusal, Rule};
pub use governed::Governed;
pub use statement::{SqlLimits, parse_bounded_select, parse_single_select};

use rule::is_aggregate_rows;

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
    let mut enforcer = walker::Enforcer::new(governed, now);
    let (rewritten, rel) = enforcer.visit(plan, &[])?;
    columns::check_columns(&rel.cols)?;
    if is_aggregate_rows(governed, &rel) {
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
