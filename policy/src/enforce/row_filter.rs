//! The row filter: planned from the policy's expression against each scan
//! of the dataset (never pasted into SQL text) and put directly above it.
//!
//! When the query holds a predicate that could raise an error (division,
//! casts, functions), the optimizer may evaluate it beside the row filter
//! on rows the filter removes. Then every column of the scan is also
//! guarded: `CASE WHEN <row filter> THEN c END`, so no consumer expression
//! ever sees a value of a filtered row.

use std::sync::Arc;

use datafusion::common::Column;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, Filter, LogicalPlan, Projection, TableScan, when};

use super::refusal::{Decision, Refusal, Rule};

/// Puts the row filter `sql` above `scan`, guarding the columns if `guard`.
pub fn apply_row_filter(
    state: &SessionState,
    scan: TableScan,
    sql: &str,
    guard: bool,
) -> Decision<LogicalPlan> {
    let predicate = state
        .create_logical_expr(sql, &scan.projected_schema)
        .map_err(|_| {
            Refusal::new(
                Rule::Table,
                format!("the row filter of `{}` does not fit the table; the provider must fix its policy", scan.table_name),
            )
        })?;
    let schema = Arc::clone(&scan.projected_schema);
    let filtered = Filter::try_new(predicate.clone(), Arc::new(LogicalPlan::TableScan(scan)))
        .map_err(internal)?;
    let filtered = LogicalPlan::Filter(filtered);
    if !guard {
        return Ok(filtered);
    }
    let guarded: Vec<Expr> = schema
        .iter()
        .map(|(qualifier, field)| {
            let column = Expr::Column(Column::new(qualifier.cloned(), field.name()));
            when(predicate.clone(), column)
                .end()
                .map(|e| e.alias_qualified(qualifier.cloned(), field.name()))
        })
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let projection = Projection::try_new(guarded, Arc::new(filtered)).map_err(internal)?;
    Ok(LogicalPlan::Projection(projection))
}

fn internal(e: datafusion::error::DataFusionError) -> Refusal {
    let text = e.to_string();
    Refusal::new(
        Rule::Structure,
        format!(
            "the row filter cannot be applied: {}",
            text.lines().next().unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, enforce_with, rows_policy};
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;

    /// Every scan's parent is the row filter (or, when guarded, the guard
    /// projection whose input is the row filter).
    fn assert_filtered_scans(plan: &LogicalPlan, guarded: bool) -> usize {
        let mut scans = 0;
        plan.apply_with_subqueries(|node| {
            let filter = match (node, guarded) {
                (LogicalPlan::Filter(f), false) => Some(f),
                (LogicalPlan::Projection(p), true) => match p.input.as_ref() {
                    LogicalPlan::Filter(f) => Some(f),
                    _ => None,
                },
                _ => None,
            };
            if let Some(f) = filter
                && matches!(f.input.as_ref(), LogicalPlan::TableScan(_))
            {
                scans += 1;
                assert!(
                    f.predicate.to_string().contains("secret-plant"),
                    "{}",
                    f.predicate
                );
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let mut all_scans = 0;
        plan.apply_with_subqueries(|node| {
            if matches!(node, LogicalPlan::TableScan(_)) {
                all_scans += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert_eq!(scans, all_scans, "{}", plan.display_indent());
        scans
    }

    #[test]
    fn the_row_filter_sits_on_every_scan_including_subqueries() {
        let enforced = accepted(
            "WITH x AS (SELECT site FROM telemetry) SELECT site, count(*) FROM x GROUP BY site \
             HAVING count(*) > (SELECT count(*) FROM telemetry WHERE shift = 'day')",
        );
        assert!(!enforced.guarded);
        assert_eq!(assert_filtered_scans(&enforced.plan, false), 2);
    }

    #[test]
    fn fallible_predicates_get_guarded_columns() {
        let enforced = enforce_with(
            rows_policy(),
            "SELECT site FROM telemetry WHERE 1 / (CASE WHEN site = 'secret-plant' THEN 0 ELSE 1 END) = 1",
        )
        .unwrap();
        assert!(enforced.guarded);
        assert_eq!(assert_filtered_scans(&enforced.plan, true), 1);
        assert!(
            enforced
                .plan
                .display_indent()
                .to_string()
                .contains("CASE WHEN")
        );
    }
}
