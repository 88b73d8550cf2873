//! The trait every node rule implements, as DataFusion's optimizer rules
//! implement `OptimizerRule`: a name, a check applied to one plan node, and
//! a rewrite of that node over its enforced inputs.
//!
//! The walker (`walker.rs`) visits the plan bottom-up and hands each node,
//! with what is known of its inputs, to the first rule of the list in
//! `rules/` that handles its kind.

use chrono::{DateTime, Utc};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::LogicalPlan;

use super::governed::Governed;
use super::lineage::{Rel, Scopes, Source};
use crate::refusal::{Decision, Refusal, Rule};

/// What a rule sees of one plan node.
pub struct NodeContext<'a> {
    /// The node, as the SQL planner made it.
    pub plan: &'a LogicalPlan,
    /// What is known of each input's output, in input order.
    pub rels: &'a [Rel],
    /// The node's first input (or its own schema for a leaf), then the
    /// scopes of enclosing queries.
    pub scopes: &'a Scopes<'a>,
    /// The governed datasets of this run.
    pub governed: &'a Governed,
    /// The time the policies must be in force at.
    pub now: DateTime<Utc>,
}

impl NodeContext<'_> {
    /// What is known of the node's first input.
    pub fn input(&self) -> &Rel {
        self.scopes.local.rel
    }

    /// Whether the first input's rows are still unaggregated rows of an
    /// aggregate-mode dataset: then rule 6 holds below the coming aggregate.
    pub fn aggregate_rows(&self) -> bool {
        is_aggregate_rows(self.governed, self.input())
    }

    /// Whether an entity column of `source` may be named where entities may
    /// appear at all (its dataset is in aggregate mode).
    pub fn entity_ok(&self) -> impl Fn(&Source) -> bool + '_ {
        |s: &Source| self.governed.is_aggregate(&s.table)
    }

    /// The number of columns the node outputs.
    pub fn width(&self) -> usize {
        self.plan.schema().fields().len()
    }
}

/// A rule of the enforcer for some kinds of plan node.
pub trait NodeRule: Sync {
    /// A short name of the rule, as DataFusion's rules have one (read by
    /// tests only so far).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "no trace of rule decisions reads it yet")
    )]
    fn name(&self) -> &'static str;

    /// Checks the node and derives what is known of its output; `None` when
    /// the rule does not handle this kind of node.
    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>>;

    /// The node over its enforced `inputs` and `subqueries` (each in
    /// traversal order). By default the node itself, with its schema
    /// recomputed (the threshold makes aggregate outputs nullable).
    fn rewrite(
        &self,
        cx: &NodeContext<'_>,
        inputs: Vec<LogicalPlan>,
        subqueries: Vec<LogicalPlan>,
    ) -> Decision<LogicalPlan> {
        rebuild(cx.plan, inputs, subqueries)
    }
}

/// Whether `rel`'s rows are unaggregated rows of an aggregate-mode dataset.
pub fn is_aggregate_rows(governed: &Governed, rel: &Rel) -> bool {
    rel.unaggregated.iter().any(|t| governed.is_aggregate(t))
}

/// The refusal for `what` standing between a dataset and its aggregate
/// (rule 6).
pub fn below(what: &str) -> Refusal {
    Refusal::new(
        Rule::Structure,
        format!("{what} may not stand between the dataset and its aggregate"),
    )
}

/// `plan` over new `inputs` and `subqueries`, its schema recomputed.
pub fn rebuild(
    plan: &LogicalPlan,
    inputs: Vec<LogicalPlan>,
    subqueries: Vec<LogicalPlan>,
) -> Decision<LogicalPlan> {
    let mut inputs = inputs.into_iter();
    let with_inputs = plan
        .clone()
        .map_children(|old| {
            Ok(match inputs.next() {
                Some(new) => Transformed::yes(new),
                None => Transformed::no(old),
            })
        })
        .map_err(Refusal::unenforceable)?
        .data;
    let mut subqueries = subqueries.into_iter();
    with_inputs
        .map_subqueries(|old| {
            Ok(subqueries
                .next()
                .map_or_else(|| Transformed::no(old), Transformed::yes))
        })
        .map_err(Refusal::unenforceable)?
        .data
        .recompute_schema()
        .map_err(Refusal::unenforceable)
}
