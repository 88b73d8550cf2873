//! `ORDER BY`: what it sorts on may not name denied or entity columns, and
//! it may not stand between a dataset and its aggregate (rule 6).

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::columns::{Use, check_references};
use crate::enforce::lineage::Rel;
use crate::enforce::rule::{NodeContext, NodeRule, below};
use crate::refusal::Decision;

/// Sorts.
pub struct Sort;

impl NodeRule for Sort {
    fn name(&self) -> &'static str {
        "sort"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Sort(s) = cx.plan else {
            return Ok(None);
        };
        let entity_ok = cx.entity_ok();
        for e in &s.expr {
            check_references(&e.expr, cx.scopes, Use::Other, &entity_ok)?;
        }
        let mut rel = cx.input().clone();
        rel.taint(below("ORDER BY"));
        Ok(Some(rel))
    }
}
