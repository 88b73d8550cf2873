//! `UNNEST`: every output column may derive from every input column, and it
//! may not stand between a dataset and its aggregate (rule 6).

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::lineage::{Col, Rel};
use crate::enforce::rule::{NodeContext, NodeRule, below};
use crate::refusal::Decision;

/// Unnest nodes.
pub struct Unnest;

impl NodeRule for Unnest {
    fn name(&self) -> &'static str {
        "unnest"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Unnest(_) = cx.plan else {
            return Ok(None);
        };
        let mut rel = cx.input().clone();
        rel.cols = vec![Col::merge(cx.input().cols.clone()); cx.width()];
        rel.taint(below("UNNEST"));
        Ok(Some(rel))
    }
}
