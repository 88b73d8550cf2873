//! `LIMIT`/`OFFSET` and repartitions pass rows through, but may not stand
//! between a dataset and its aggregate (rule 6).

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::lineage::Rel;
use crate::enforce::rule::{NodeContext, NodeRule, below};
use crate::refusal::Decision;

/// Limits and repartitions.
pub struct Limit;

impl NodeRule for Limit {
    fn name(&self) -> &'static str {
        "limit"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let what = match cx.plan {
            LogicalPlan::Limit(_) => "LIMIT or OFFSET",
            LogicalPlan::Repartition(_) => "a repartition",
            _ => return Ok(None),
        };
        let mut rel = cx.input().clone();
        rel.taint(below(what));
        Ok(Some(rel))
    }
}
