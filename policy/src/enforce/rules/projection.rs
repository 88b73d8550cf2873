//! Projections: no reference to a denied or (outside a bare pass-through in
//! aggregate mode) an entity column, and rule 6 below an enforced
//! aggregate: bare columns, group-key functions of them, or literals; no
//! subquery.

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::{Expr, LogicalPlan};

use crate::enforce::columns::{Use, check_references};
use crate::enforce::describe::describe_columns;
use crate::enforce::lineage::{Col, Rel, classify, is_constant};
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::refusal::{Decision, Refusal, Rule};

/// `SELECT` lists.
pub struct Projection;

impl NodeRule for Projection {
    fn name(&self) -> &'static str {
        "projection"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Projection(p) = cx.plan else {
            return Ok(None);
        };
        let aggregate_rows = cx.aggregate_rows();
        let entity_ok = cx.entity_ok();
        let mut rel = cx.input().clone();
        rel.cols = Vec::with_capacity(p.expr.len());
        for e in &p.expr {
            check_references(e, cx.scopes, Use::EntityAllowed, &entity_ok)?;
            let col = classify(e, cx.scopes)?;
            if aggregate_rows && !fits_below_aggregate(e, &col) {
                rel.taint(Refusal::new(
                    Rule::Structure,
                    format!(
                        "a computed column ({}) may not stand below the aggregate",
                        describe_columns(e)
                    ),
                ));
            }
            rel.cols.push(col);
        }
        if aggregate_rows && has_subqueries(cx.plan) {
            rel.taint(Refusal::new(
                Rule::Structure,
                "a subquery may not stand below the aggregate",
            ));
        }
        Ok(Some(rel))
    }
}

/// Rule 6: below an enforced aggregate, projections pass bare columns,
/// group-key functions of them, or literals.
fn fits_below_aggregate(expr: &Expr, col: &Col) -> bool {
    match col {
        Col::Bare(_) | Col::KeyFn(_) => true,
        Col::Clean => is_constant(expr),
        Col::Derived(_) => false,
    }
}

fn has_subqueries(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_subqueries(|_| {
        found = true;
        Ok(TreeNodeRecursion::Stop)
    });
    found
}
