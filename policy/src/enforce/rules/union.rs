//! `UNION`: whole rows of every input leave; no denied or entity column
//! among them, and not between a dataset and its aggregate (rule 6).

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::columns::check_columns;
use crate::enforce::lineage::{Col, Rel};
use crate::enforce::rule::{NodeContext, NodeRule, below};
use crate::refusal::Decision;

/// Unions.
pub struct Union;

impl NodeRule for Union {
    fn name(&self) -> &'static str {
        "union"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Union(_) = cx.plan else {
            return Ok(None);
        };
        for rel in cx.rels {
            check_columns(&rel.cols)?;
        }
        // Column i derives from column i of every input.
        let cols = (0..cx.width())
            .map(|i| {
                Col::merge(
                    cx.rels
                        .iter()
                        .filter_map(|rel| rel.cols.get(i).cloned())
                        .collect(),
                )
            })
            .collect();
        let refs: Vec<&Rel> = cx.rels.iter().collect();
        let (unaggregated, impure) = Rel::merge_rows(&refs);
        let mut rel = Rel {
            cols,
            unaggregated,
            impure,
        };
        rel.taint(below("UNION"));
        Ok(Some(rel))
    }
}
