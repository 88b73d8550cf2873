//! The verifier of the physical plan that will run: after every optimizer
//! rule, before a row is read, it checks that the barriers hold.
//!
//! - Governed rows come only out of [`GovernedScanExec`] leaves (the row
//!   filter is inside them), whose admitted predicates cannot fail; no other
//!   leaf may scan files.
//! - The rows of an aggregate-only dataset reach nothing but the nodes of
//!   its enforced aggregate, up to its [`ThresholdExec`]: aggregates
//!   (`count`, `sum`, `avg`, one grouping set), projections, filters,
//!   repartitions, sorts and merges, each evaluating only expressions that
//!   cannot fail on any row. A suppressed group's rows therefore cannot
//!   make the query fail, and nothing the consumer wrote runs below the
//!   threshold unless it is such an expression.
//!
//! A violation refuses the query (rule `structure`); it never runs.

use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;

use super::admit::is_infallible;
use super::scan::GovernedScanExec;
use super::threshold::{ThresholdExec, ThresholdSpec};
use crate::refusal::{Decision, Refusal, Rule};

/// Checks the barriers of `plan`; see the module documentation.
pub fn verify_physical_plan(plan: &Arc<dyn ExecutionPlan>) -> Decision<()> {
    walk(plan, None)
}

fn walk(plan: &Arc<dyn ExecutionPlan>, below: Option<&ThresholdSpec>) -> Decision<()> {
    if let Some(scan) = plan.downcast_ref::<GovernedScanExec>() {
        return check_scan(scan, below);
    }
    if let Some(threshold) = plan.downcast_ref::<ThresholdExec>() {
        if below.is_some() {
            return Err(violation("a threshold stands below another threshold"));
        }
        for child in plan.children() {
            walk(child, Some(threshold.spec()))?;
        }
        return Ok(());
    }
    if scans_files(plan) {
        return Err(violation(
            "a file scan that is not a governed dataset's scan is in the plan",
        ));
    }
    if let Some(spec) = below {
        check_below_threshold(plan, spec)?;
    }
    for child in plan.children() {
        walk(child, below)?;
    }
    Ok(())
}

fn check_scan(scan: &GovernedScanExec, below: Option<&ThresholdSpec>) -> Decision<()> {
    let schema = scan.scan().schema();
    if let Some(e) = scan
        .parts()
        .admitted
        .iter()
        .find(|e| !is_infallible(e, &schema))
    {
        return Err(violation(&format!(
            "a predicate that could fail (`{e}`) stands below the row filter of `{}`",
            scan.dataset()
        )));
    }
    match below {
        None if scan.aggregate_only() => Err(violation(&format!(
            "rows of `{}` reach the result without passing its threshold",
            scan.dataset()
        ))),
        Some(spec) if spec.dataset != scan.dataset() => Err(violation(&format!(
            "rows of `{}` reach the threshold of `{}`",
            scan.dataset(),
            spec.dataset
        ))),
        _ => Ok(()),
    }
}

fn scans_files(plan: &Arc<dyn ExecutionPlan>) -> bool {
    plan.downcast_ref::<DataSourceExec>().is_some_and(|scan| {
        scan.data_source()
            .downcast_ref::<FileScanConfig>()
            .is_some()
    })
}

/// The nodes that may stand between a dataset's scan and its threshold.
const BELOW_THRESHOLD: &[&str] = &[
    "AggregateExec",
    "ProjectionExec",
    "FilterExec",
    "RepartitionExec",
    "CoalescePartitionsExec",
    "CoalesceBatchesExec",
    "CooperativeExec",
    "SortExec",
    "SortPreservingMergeExec",
    "EmptyExec",
    "PlaceholderRowExec",
];

fn check_below_threshold(plan: &Arc<dyn ExecutionPlan>, spec: &ThresholdSpec) -> Decision<()> {
    let name = plan.name().to_owned();
    if !BELOW_THRESHOLD.contains(&name.as_str()) {
        return Err(violation(&format!(
            "`{name}` stands between `{}` and its threshold",
            spec.dataset
        )));
    }
    if let Some(aggregate) = plan.downcast_ref::<AggregateExec>() {
        if aggregate.group_expr().groups().len() > 1 {
            return Err(violation("grouping sets stand below a threshold"));
        }
        for function in aggregate.aggr_expr() {
            let f = function.fun().name().to_ascii_lowercase();
            if !matches!(f.as_str(), "count" | "sum" | "avg" | "mean") {
                return Err(violation(&format!(
                    "the aggregate `{f}` stands below a threshold"
                )));
            }
        }
    }
    let input_schema = match plan.children().first() {
        Some(child) => child.schema(),
        None => plan.schema(),
    };
    let mut fallible = None;
    let _ = plan.apply_expressions(&mut |expr| {
        if is_infallible(expr, &input_schema) {
            Ok(TreeNodeRecursion::Continue)
        } else {
            fallible = Some(expr.to_string());
            Ok(TreeNodeRecursion::Stop)
        }
    });
    match fallible {
        Some(expr) => Err(violation(&format!(
            "an expression that could fail on a hidden row (`{expr}`) stands below the threshold of `{}`",
            spec.dataset
        ))),
        None => Ok(()),
    }
}

fn violation(what: &str) -> Refusal {
    Refusal::new(
        Rule::Structure,
        format!("the plan to run breaks a barrier of the policy: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::test_support::{physical_with, policy_with, rows_policy};
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::PhysicalExpr;
    use datafusion::physical_expr::expressions::{Column, binary, lit};
    use datafusion::physical_plan::filter::FilterExec;

    const SQL: &str = "SELECT site, count(*) AS n FROM telemetry WHERE shift = 'day' GROUP BY site";

    /// `1 / (CAST(temperature AS BIGINT) - 12) = 1` over `plan`'s schema.
    fn fallible(plan: &Arc<dyn ExecutionPlan>) -> Arc<dyn PhysicalExpr> {
        let schema = plan.schema();
        let index = schema.index_of("temperature").unwrap();
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("temperature", index));
        let as_int = datafusion::physical_expr::expressions::cast(
            column,
            &schema,
            datafusion::arrow::datatypes::DataType::Int64,
        )
        .unwrap();
        let minus = binary(as_int, Operator::Minus, lit(12_i64), &schema).unwrap();
        let divided = binary(lit(1_i64), Operator::Divide, minus, &schema).unwrap();
        binary(divided, Operator::Eq, lit(1_i64), &schema).unwrap()
    }

    /// `plan` with a filter on `fallible` directly above every governed scan.
    fn filter_above_scans(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
        plan.transform_up(|node| {
            if node.downcast_ref::<GovernedScanExec>().is_some() {
                let filter = FilterExec::try_new(fallible(&node), Arc::clone(&node))?;
                return Ok(Transformed::yes(Arc::new(filter) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .unwrap()
        .data
    }

    #[test]
    fn an_enforced_plan_passes() {
        let plan = physical_with(policy_with(|_| {}), SQL);
        verify_physical_plan(&plan).unwrap();
        let rows = physical_with(rows_policy(), "SELECT site, temperature FROM telemetry");
        verify_physical_plan(&rows).unwrap();
    }

    #[test]
    fn a_fallible_expression_below_the_threshold_is_refused() {
        let plan = physical_with(
            policy_with(|_| {}),
            "SELECT site, count(*) AS n, sum(temperature) AS t FROM telemetry GROUP BY site",
        );
        let broken = filter_above_scans(plan);
        let refusal = verify_physical_plan(&broken).unwrap_err();
        assert_eq!(refusal.rule, Rule::Structure);
        assert!(refusal.message.contains("below the threshold"), "{refusal}");
    }

    #[test]
    fn rows_of_an_aggregate_only_dataset_without_their_threshold_are_refused() {
        let plan = physical_with(policy_with(|_| {}), SQL);
        let without = plan
            .transform_up(|node| {
                if node.downcast_ref::<ThresholdExec>().is_some() {
                    let child = Arc::clone(node.children()[0]);
                    return Ok(Transformed::yes(child));
                }
                Ok(Transformed::no(node))
            })
            .unwrap()
            .data;
        let refusal = verify_physical_plan(&without).unwrap_err();
        assert!(
            refusal.message.contains("without passing its threshold"),
            "{refusal}"
        );
    }

    #[test]
    fn a_fallible_predicate_inside_a_scan_is_refused_and_above_a_rows_scan_allowed() {
        let rows = physical_with(rows_policy(), "SELECT site, temperature FROM telemetry");
        // Above the scan of a rows-mode dataset, the consumer may write anything.
        verify_physical_plan(&filter_above_scans(Arc::clone(&rows))).unwrap();
        let inside = rows
            .transform_up(|node| {
                if let Some(scan) = node.downcast_ref::<GovernedScanExec>() {
                    let mut parts = scan.parts().clone();
                    parts.admitted.push(fallible(scan.scan()));
                    let rebuilt: Arc<dyn ExecutionPlan> =
                        Arc::new(GovernedScanExec::try_new(parts)?);
                    return Ok(Transformed::yes(rebuilt));
                }
                Ok(Transformed::no(node))
            })
            .unwrap()
            .data;
        let refusal = verify_physical_plan(&inside).unwrap_err();
        assert!(
            refusal.message.contains("below the row filter"),
            "{refusal}"
        );
    }
}
