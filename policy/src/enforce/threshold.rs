//! Rule 5 (threshold): every group of an enforced aggregate holds at least
//! `min_rows` rows and `min_entities` distinct entities, counted over the rows
//! the aggregate sees; smaller groups are dropped before anything else sees
//! them. The threshold is a barrier node ([`ThresholdNode`]) that no
//! predicate is pushed through:
//!
//! ```text
//! Projection: <each column of the aggregate>
//!   Threshold: __dataspace_rows >= min_rows, __dataspace_entities >= min_entities
//!     Aggregate: <group keys>, <aggregates>, count(*), count(DISTINCT entity)
//!       <the segment, with the entity column carried through its projections>
//! ```

use std::sync::Arc;

use datafusion::common::{Column, TableReference};
use datafusion::functions_aggregate::expr_fn::{count, count_distinct};
use datafusion::logical_expr::{
    Aggregate, Expr, Filter, LogicalPlan, Projection, SubqueryAlias, col, lit,
};

use super::describe::node_name;
use crate::barrier::{ENTITIES, ROWS, ThresholdNode, ThresholdSpec};
use crate::model::Aggregation;
use crate::refusal::{Decision, Refusal, Rule};

const ENTITY: &str = "__dataspace_entity";

/// Wraps `aggregate` (whose input is `input`, an already rewritten segment)
/// with the threshold of `aggregation` on the entity column `entity`.
pub fn apply_threshold(
    aggregate: &Aggregate,
    input: LogicalPlan,
    dataset: &str,
    entity: &str,
    aggregation: &Aggregation,
) -> Decision<LogicalPlan> {
    let (input, entity_expr) = carry_entity(input, entity)?;
    let entities = if aggregation.min_entities <= 1 {
        // count(e) >= 1 holds exactly when count(DISTINCT e) >= 1, and is cheaper.
        count(entity_expr)
    } else {
        count_distinct(entity_expr)
    };
    let mut aggr_expr = aggregate.aggr_expr.clone();
    aggr_expr.push(count(lit(1_i64)).alias(ROWS));
    aggr_expr.push(entities.alias(ENTITIES));
    let widened = Aggregate::try_new(Arc::new(input), aggregate.group_expr.clone(), aggr_expr)
        .map_err(Refusal::unenforceable)?;
    let spec = ThresholdSpec {
        dataset: dataset.to_owned(),
        min_rows: aggregation.min_rows,
        min_entities: aggregation.min_entities,
    };
    // A barrier: the optimizer cannot merge a consumer's `HAVING` (or an
    // outer `WHERE`) into the threshold, nor push one below it, so no
    // consumer expression is ever evaluated on a suppressed group.
    let threshold = ThresholdNode::try_new(spec, LogicalPlan::Aggregate(widened))
        .map_err(Refusal::unenforceable)?
        .into_plan();
    let columns: Vec<Expr> = aggregate
        .schema
        .iter()
        .map(|(qualifier, field)| Expr::Column(Column::new(qualifier.cloned(), field.name())))
        .collect();
    let projection =
        Projection::try_new(columns, Arc::new(threshold)).map_err(Refusal::unenforceable)?;
    Ok(LogicalPlan::Projection(projection))
}

/// Rebuilds the segment so that its output carries the entity column, and
/// returns the expression that names it there.
fn carry_entity(plan: LogicalPlan, entity: &str) -> Decision<(LogicalPlan, Expr)> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let column = scan
                .projected_schema
                .iter()
                .find(|(_, f)| f.name() == entity)
                .map(|(q, f)| Column::new(q.cloned(), f.name()))
                .ok_or_else(|| Refusal::unenforceable("the entity column is not scanned"))?;
            Ok((LogicalPlan::TableScan(scan), Expr::Column(column)))
        }
        LogicalPlan::Filter(filter) => {
            let (input, expr) = carry_entity(Arc::unwrap_or_clone(filter.input), entity)?;
            let rebuilt = Filter::try_new(filter.predicate, Arc::new(input))
                .map_err(Refusal::unenforceable)?;
            Ok((LogicalPlan::Filter(rebuilt), expr))
        }
        LogicalPlan::Projection(projection) => {
            let (input, expr) = carry_entity(Arc::unwrap_or_clone(projection.input), entity)?;
            let mut exprs = projection.expr;
            exprs.push(expr.alias(ENTITY));
            let rebuilt =
                Projection::try_new(exprs, Arc::new(input)).map_err(Refusal::unenforceable)?;
            Ok((LogicalPlan::Projection(rebuilt), col(ENTITY)))
        }
        LogicalPlan::SubqueryAlias(alias) => {
            let (input, expr) = carry_entity(Arc::unwrap_or_clone(alias.input), entity)?;
            let name = match &expr {
                Expr::Column(c) => c.name.clone(),
                _ => ENTITY.to_owned(),
            };
            let rebuilt = SubqueryAlias::try_new(Arc::new(input), alias.alias.clone())
                .map_err(Refusal::unenforceable)?;
            let qualified =
                Expr::Column(Column::new(Some(TableReference::clone(&alias.alias)), name));
            Ok((LogicalPlan::SubqueryAlias(rebuilt), qualified))
        }
        other => Err(Refusal::new(
            Rule::Structure,
            format!(
                "`{}` may not stand between the dataset and its aggregate",
                node_name(&other)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, enforce_with, policy_with};
    use datafusion::common::tree_node::TreeNodeRecursion;
    use datafusion::logical_expr::LogicalPlan;

    fn text(plan: &LogicalPlan) -> String {
        plan.display_indent().to_string()
    }

    #[test]
    fn every_enforced_aggregate_carries_the_threshold() {
        let plan = accepted(
            "WITH x AS (SELECT site, temperature FROM telemetry) \
             SELECT s.site, s.t, (SELECT count(*) FROM telemetry) AS total \
             FROM (SELECT site, avg(temperature) AS t FROM x GROUP BY site) s",
        )
        .plan;
        let mut aggregates = 0;
        plan.apply_with_subqueries(|node| {
            if let LogicalPlan::Aggregate(a) = node {
                aggregates += 1;
                let names: Vec<String> = a
                    .aggr_expr
                    .iter()
                    .map(|e| e.schema_name().to_string())
                    .collect();
                assert!(names.iter().any(|n| n.contains(super::ROWS)), "{names:?}");
                assert!(
                    names.iter().any(|n| n.contains(super::ENTITIES)),
                    "{names:?}"
                );
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        assert_eq!(aggregates, 2);
        let shown = text(&plan);
        assert!(
            shown.contains(
                "Threshold: dataset=telemetry, __dataspace_rows >= 5, __dataspace_entities >= 5"
            ),
            "{shown}"
        );
        assert_eq!(shown.matches("Threshold:").count(), 2, "{shown}");
        assert!(shown.contains("count(DISTINCT"), "{shown}");
    }

    #[test]
    fn a_single_entity_threshold_uses_a_plain_count() {
        let one = policy_with(|v| v["aggregation"]["min_entities"] = 1.into());
        let plan = enforce_with(one, "SELECT site, count(*) FROM telemetry GROUP BY site")
            .unwrap()
            .plan;
        let shown = text(&plan);
        assert!(!shown.contains("count(DISTINCT"), "{shown}");
        assert!(shown.contains("__dataspace_entities >= 1"), "{shown}");
    }
}
