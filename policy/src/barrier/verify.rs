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
use crate::enforce::{Decision, Refusal, Rule};

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
