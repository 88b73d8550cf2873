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
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, Filter, LogicalPlan, Projection, TableScan, when};

use super::Governed;
use super::filter::is_infallible;
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

/// Lets the consumer's predicate run before the row filter where that
/// cannot change anything but speed: a `WHERE` directly above a row filter
/// (an unguarded scan) whose predicate can raise no error and holds no
/// subquery. Both then filter the same scan rows and keep only rows that
/// pass both, in either order; evaluated first, a selective predicate of the
/// consumer spares the row filter most rows, as it would in a plain query.
pub fn consumer_predicates_first(plan: LogicalPlan, governed: &Governed) -> Decision<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Filter(outer) = &node else {
            return Ok(Transformed::no(node));
        };
        let LogicalPlan::Filter(row_filter) = outer.input.as_ref() else {
            return Ok(Transformed::no(node));
        };
        let LogicalPlan::TableScan(scan) = row_filter.input.as_ref() else {
            return Ok(Transformed::no(node));
        };
        let filtered = governed
            .get(scan.table_name.table())
            .is_some_and(|p| p.row_filter.is_some());
        if !filtered
            || outer.predicate.contains_outer()
            || has_subquery(&outer.predicate)
            || !is_infallible(&outer.predicate, outer.input.schema())
        {
            return Ok(Transformed::no(node));
        }
        let consumer = Filter::try_new(outer.predicate.clone(), Arc::clone(&row_filter.input))?;
        let swapped = Filter::try_new(
            row_filter.predicate.clone(),
            Arc::new(LogicalPlan::Filter(consumer)),
        )?;
        Ok(Transformed::yes(LogicalPlan::Filter(swapped)))
    })
    .map(|t| t.data)
    .map_err(internal)
}

fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_)
        ))
    })
    .unwrap_or(true)
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
    use datafusion::logical_expr::{Filter, LogicalPlan};

    /// The predicates of the filters directly above the scan, outermost
    /// first.
    fn filters_over_scan(plan: &LogicalPlan) -> Vec<String> {
        let mut chains = Vec::new();
        plan.apply_with_subqueries(|node| {
            let mut chain = Vec::new();
            let mut at = node;
            while let LogicalPlan::Filter(f) = at {
                chain.push(f.predicate.to_string());
                at = f.input.as_ref();
            }
            if matches!(at, LogicalPlan::TableScan(_)) && !chain.is_empty() {
                chains.push(chain);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        chains.into_iter().max_by_key(Vec::len).unwrap_or_default()
    }

    #[test]
    fn an_infallible_where_runs_before_the_row_filter() {
        let enforced = enforce_with(
            rows_policy(),
            "SELECT site FROM telemetry WHERE shift = 'day' AND temperature > 3",
        )
        .unwrap();
        let chain = filters_over_scan(&enforced.plan);
        assert_eq!(chain.len(), 2, "{}", enforced.plan.display_indent());
        assert!(chain[0].contains("secret-plant"), "{chain:?}");
        assert!(chain[1].contains("shift"), "{chain:?}");
    }

    #[test]
    fn a_where_with_a_subquery_stays_above_the_row_filter() {
        let enforced = enforce_with(
            rows_policy(),
            "SELECT site FROM telemetry WHERE temperature > (SELECT avg(temperature) FROM telemetry)",
        )
        .unwrap();
        let plan = enforced.plan.display_indent().to_string();
        let chain = filters_over_scan(&enforced.plan);
        assert_eq!(chain.len(), 2, "{plan}");
        assert!(chain[0].contains("subquery"), "{plan}");
        assert!(chain[1].contains("secret-plant"), "{plan}");
    }

    /// The scan under a filter: directly, or under the consumer's own
    /// predicate moved below the row filter.
    fn scan_below(filter: &Filter) -> bool {
        match filter.input.as_ref() {
            LogicalPlan::TableScan(_) => true,
            LogicalPlan::Filter(consumer) => {
                !consumer.predicate.to_string().contains("secret-plant")
                    && matches!(consumer.input.as_ref(), LogicalPlan::TableScan(_))
            }
            _ => false,
        }
    }

    /// Every scan's parent is the row filter (or, when guarded, the guard
    /// projection whose input is the row filter), or the consumer's
    /// predicate whose parent is the row filter.
    fn assert_filtered_scans(plan: &LogicalPlan, guarded: bool) -> usize {
        let mut scans = 0;
        plan.apply_with_subqueries(|node| {
            let filter = match (node, guarded) {
                (LogicalPlan::Filter(f), false)
                    if f.predicate.to_string().contains("secret-plant") =>
                {
                    Some(f)
                }
                (LogicalPlan::Projection(p), true) => match p.input.as_ref() {
                    LogicalPlan::Filter(f) => Some(f),
                    _ => None,
                },
                _ => None,
            };
            if let Some(f) = filter
                && scan_below(f)
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
