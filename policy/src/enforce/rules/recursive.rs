//! Recursive queries: only over clean values, never over a dataset.

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::lineage::{Col, Rel};
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::refusal::{Decision, Refusal, Rule};

/// `WITH RECURSIVE` nodes.
pub struct Recursive;

impl NodeRule for Recursive {
    fn name(&self) -> &'static str {
        "recursive"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::RecursiveQuery(_) = cx.plan else {
            return Ok(None);
        };
        let governed =
            |r: &Rel| !r.unaggregated.is_empty() || r.cols.iter().any(|c| *c != Col::Clean);
        if cx.rels.iter().any(governed) {
            return Err(Refusal::new(
                Rule::Structure,
                "recursive queries over datasets are not allowed",
            ));
        }
        Ok(Some(Rel::clean(cx.width())))
    }
}
