//! `DISTINCT` and `DISTINCT ON` compare whole rows: no denied or entity
//! column among them, and not between a dataset and its aggregate (rule 6).

use datafusion::logical_expr::{Distinct as DistinctNode, LogicalPlan};

use crate::enforce::columns::{Use, check_columns, check_references};
use crate::enforce::lineage::{Rel, classify};
use crate::enforce::rule::{NodeContext, NodeRule, below};
use crate::refusal::Decision;

/// `DISTINCT` nodes.
pub struct Distinct;

impl NodeRule for Distinct {
    fn name(&self) -> &'static str {
        "distinct"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Distinct(distinct) = cx.plan else {
            return Ok(None);
        };
        let mut rel = cx.input().clone();
        match distinct {
            DistinctNode::All(_) => {
                check_columns(&cx.input().cols)?;
                rel.taint(below("DISTINCT"));
            }
            DistinctNode::On(on) => {
                let entity_ok = cx.entity_ok();
                for e in on.on_expr.iter().chain(&on.select_expr) {
                    check_references(e, cx.scopes, Use::Other, &entity_ok)?;
                }
                rel.cols = on
                    .select_expr
                    .iter()
                    .map(|e| classify(e, cx.scopes))
                    .collect::<Decision<_>>()?;
                rel.taint(below("DISTINCT ON"));
            }
        }
        Ok(Some(rel))
    }
}
