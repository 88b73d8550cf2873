//! Nodes that change nothing the enforcer tracks: aliases and subquery
//! wrappers pass their input's lineage on; `VALUES` and empty relations hold
//! no governed content.

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::lineage::Rel;
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::refusal::Decision;

/// `AS` aliases, subquery wrappers, `VALUES` and empty relations.
pub struct PassThrough;

impl NodeRule for PassThrough {
    fn name(&self) -> &'static str {
        "pass_through"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        Ok(match cx.plan {
            LogicalPlan::SubqueryAlias(_) | LogicalPlan::Subquery(_) => Some(cx.input().clone()),
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => Some(Rel::clean(cx.width())),
            _ => None,
        })
    }
}
