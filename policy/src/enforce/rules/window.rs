//! Window functions: only over aggregated results, never over dataset rows.

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::columns::{Use, check_references};
use crate::enforce::lineage::{Rel, classify};
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::refusal::{Decision, Refusal, Rule};

/// `OVER (...)` nodes.
pub struct Window;

impl NodeRule for Window {
    fn name(&self) -> &'static str {
        "window"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Window(w) = cx.plan else {
            return Ok(None);
        };
        let entity_ok = cx.entity_ok();
        for e in &w.window_expr {
            check_references(e, cx.scopes, Use::Other, &entity_ok)?;
        }
        if cx.aggregate_rows() {
            return Err(Refusal::new(
                Rule::Structure,
                "window functions may only run over aggregated results, not over dataset rows",
            ));
        }
        let mut rel = cx.input().clone();
        for e in &w.window_expr {
            rel.cols.push(classify(e, cx.scopes)?);
        }
        Ok(Some(rel))
    }
}
