//! Rule `join`: no join reads a dataset's rows before aggregation
//! (`joins: none`); over aggregated or clean inputs a join may use any
//! column but a denied or entity one.

use datafusion::logical_expr::LogicalPlan;

use crate::enforce::columns::{Use, check_columns, check_denied, check_references};
use crate::enforce::lineage::{Col, Rel, Scope, Scopes, fit_width};
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::refusal::{Decision, Refusal, Rule};

/// Joins, including the joins the planner makes of `EXCEPT`, `INTERSECT`
/// and decorrelated subqueries.
pub struct Join;

impl NodeRule for Join {
    fn name(&self) -> &'static str {
        "join"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Join(join) = cx.plan else {
            return Ok(None);
        };
        if cx.rels.iter().any(|r| !r.unaggregated.is_empty()) {
            return Err(Refusal::new(
                Rule::Join,
                "the dataset's policy allows no join that reads its rows before aggregation (`joins: none`)",
            ));
        }
        let cols: Vec<Col> = cx.rels.iter().flat_map(|r| r.cols.clone()).collect();
        // Each side of an equi-join condition is resolved against its own
        // input (`EXCEPT` and `INTERSECT` join sides with equal names).
        let entity_ok = cx.entity_ok();
        let empty = Rel::default();
        let sides = [
            (join.left.schema(), cx.rels.first().unwrap_or(&empty)),
            (join.right.schema(), cx.rels.get(1).unwrap_or(&empty)),
        ];
        for (l, r) in &join.on {
            for (expr, (schema, side)) in [(l, sides[0]), (r, sides[1])] {
                let scopes = Scopes {
                    local: Scope { schema, rel: side },
                    outer: cx.scopes.outer,
                };
                check_denied(expr, &scopes)?;
                check_references(expr, &scopes, Use::Other, &entity_ok)?;
            }
        }
        // Both sides are aggregated or clean here; a join filter over them
        // can see no governed column that `check_columns` would not find.
        for (_, side) in sides {
            check_columns(&side.cols)?;
        }
        Ok(Some(Rel {
            cols: fit_width(cols, cx.width()),
            unaggregated: vec![],
            impure: None,
        }))
    }
}
