//! The walk over the plan: bottom-up, subqueries included. Per node the
//! walker names any denied column first, then hands the node to the first
//! rule of [`ALL`] that handles its kind, which checks it, derives what is
//! known of its output ([`Rel`]) and rewrites it over its enforced inputs.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;

use super::columns::{check_columns, check_denied};
use super::describe::node_name;
use super::governed::Governed;
use super::lineage::{Rel, Scope, Scopes};
use super::rule::{NodeContext, NodeRule, is_aggregate_rows};
use super::rules::ALL;
use crate::refusal::{Decision, Refusal, Rule};

/// State of one enforcement run.
pub struct Enforcer<'a> {
    governed: &'a Governed,
    now: DateTime<Utc>,
    scanned: Vec<String>,
}

impl<'a> Enforcer<'a> {
    /// A run over `governed` at `now`.
    pub fn new(governed: &'a Governed, now: DateTime<Utc>) -> Self {
        Self {
            governed,
            now,
            scanned: Vec::new(),
        }
    }

    /// The datasets scanned so far.
    pub fn scanned(&self) -> Vec<String> {
        self.scanned.clone()
    }

    /// Enforces `plan`, whose correlated subqueries may see `outer`.
    pub fn visit(
        &mut self,
        plan: &LogicalPlan,
        outer: &[Scope<'_>],
    ) -> Decision<(LogicalPlan, Rel)> {
        let mut inputs = Vec::new();
        let mut rels = Vec::new();
        for input in plan.inputs() {
            let (rewritten, rel) = self.visit(input, outer)?;
            inputs.push(rewritten);
            rels.push(rel);
        }
        let empty = Rel::default();
        let input_schema: &DFSchema = plan
            .inputs()
            .first()
            .map_or(plan.schema().as_ref(), |i| i.schema().as_ref());
        let local = Scope {
            schema: input_schema,
            rel: rels.first().unwrap_or(&empty),
        };
        let scopes = Scopes { local, outer };
        let subqueries = self.visit_subqueries(plan, local, outer)?;
        let cx = NodeContext {
            plan,
            rels: &rels,
            scopes: &scopes,
            governed: self.governed,
            now: self.now,
        };
        let (rule, rel) = check_node(&cx)?;
        let rewritten = rule.rewrite(&cx, inputs, subqueries)?;
        if let LogicalPlan::TableScan(scan) = plan {
            let name = scan.table_name.table();
            if !self.scanned.iter().any(|s| s == name) {
                self.scanned.push(name.to_owned());
            }
        }
        Ok((rewritten, rel))
    }

    /// Enforces every subquery in the node's expressions, in traversal order.
    fn visit_subqueries(
        &mut self,
        plan: &LogicalPlan,
        local: Scope<'_>,
        outer: &[Scope<'_>],
    ) -> Decision<Vec<LogicalPlan>> {
        let mut plans = Vec::new();
        let _ = plan.apply_subqueries(|sub| {
            plans.push(sub.clone());
            Ok(TreeNodeRecursion::Continue)
        });
        let mut scopes = vec![local];
        scopes.extend_from_slice(outer);
        let mut out = Vec::with_capacity(plans.len());
        for sub in plans {
            let LogicalPlan::Subquery(subquery) = sub else {
                continue;
            };
            let (rewritten, rel) = self.visit(&subquery.subquery, &scopes)?;
            check_columns(&rel.cols)?;
            if is_aggregate_rows(self.governed, &rel) {
                return Err(Refusal::new(
                    Rule::AggregationRequired,
                    "a subquery returns dataset rows; only aggregates of the dataset may be used",
                ));
            }
            let mut subquery = subquery.clone();
            subquery.subquery = Arc::new(rewritten);
            out.push(LogicalPlan::Subquery(subquery));
        }
        Ok(out)
    }
}

/// Names a denied column first (so that it is named before any other rule
/// speaks; a join's conditions are resolved per side by its rule), then
/// runs the first rule that handles the node. A node no rule handles is not
/// part of a `SELECT`.
fn check_node(cx: &NodeContext<'_>) -> Decision<(&'static dyn NodeRule, Rel)> {
    if !matches!(cx.plan, LogicalPlan::Join(_) | LogicalPlan::TableScan(_)) {
        for e in cx.plan.expressions() {
            check_denied(&e, cx.scopes)?;
        }
    }
    for rule in ALL {
        if let Some(rel) = rule.check(cx)? {
            return Ok((*rule, rel));
        }
    }
    Err(Refusal::new(
        Rule::Statement,
        format!(
            "`{}` is not allowed: only `SELECT` queries are",
            node_name(cx.plan)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use crate::enforce::test_support::{accepted, enforce_with, policy_with, refusal, rows_policy};
    use crate::refusal::Rule;

    #[test]
    fn dataset_rows_need_an_enforced_aggregate() {
        for sql in [
            "SELECT site, temperature FROM telemetry",
            "SELECT 1 FROM telemetry",
            "SELECT site FROM telemetry GROUP BY site HAVING count(*) > 0 UNION ALL SELECT site FROM telemetry",
            "SELECT (SELECT site FROM telemetry LIMIT 1)",
            "SELECT count(*) FROM telemetry WHERE site = (SELECT site FROM telemetry LIMIT 1)",
        ] {
            let rule = refusal(sql).rule;
            assert!(
                matches!(
                    rule,
                    Rule::AggregationRequired | Rule::Structure | Rule::Filter
                ),
                "{sql}: {rule}"
            );
        }
    }

    #[test]
    fn nothing_but_filters_and_bare_projections_below_the_aggregate() {
        for sql in [
            "SELECT avg(temperature) FROM (SELECT temperature FROM telemetry ORDER BY temperature DESC LIMIT 5) t",
            "SELECT count(*) FROM (SELECT DISTINCT site FROM telemetry) d",
            "SELECT site, count(*) FROM (SELECT site FROM telemetry UNION ALL SELECT site FROM telemetry) u GROUP BY site",
            "SELECT site, avg(temperature) OVER (PARTITION BY site) FROM telemetry",
            "SELECT sum(t) FROM (SELECT temperature * 2 AS t FROM telemetry) x",
            "WITH RECURSIVE r(n) AS (SELECT count(*) FROM telemetry UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT n FROM r",
        ] {
            let r = refusal(sql);
            assert!(
                matches!(
                    r.rule,
                    Rule::Structure | Rule::AggregateArgument | Rule::Table
                ),
                "{sql}: {r}"
            );
        }
    }

    #[test]
    fn joins_that_read_rows_are_refused_in_both_modes() {
        for sql in [
            "SELECT a.site, count(*) FROM telemetry a JOIN telemetry b ON a.site = b.site GROUP BY a.site",
            "SELECT site, count(*) FROM telemetry CROSS JOIN (VALUES (1),(2)) v(x) GROUP BY site",
        ] {
            assert_eq!(refusal(sql).rule, Rule::Join, "{sql}");
        }
        let r = enforce_with(
            rows_policy(),
            "SELECT a.site FROM telemetry a JOIN telemetry b ON a.site = b.site",
        );
        assert_eq!(r.err().map(|r| r.rule), Some(Rule::Join));
    }

    #[test]
    fn anything_goes_after_the_aggregate() {
        accepted(
            "SELECT site, n, rank() OVER (ORDER BY n) FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s",
        );
        accepted(
            "SELECT a.site, a.n, b.t FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) a \
             JOIN (SELECT site, avg(temperature) AS t FROM telemetry GROUP BY site) b ON a.site = b.site",
        );
        accepted(
            "SELECT site, count(*) FROM telemetry GROUP BY site HAVING count(*) > (SELECT count(*) / 10 FROM telemetry)",
        );
        accepted(
            "SELECT site FROM (SELECT site, count(*) AS n FROM telemetry GROUP BY site) s UNION SELECT 'x'",
        );
        accepted(
            "SELECT round(avg(temperature) * 1.8 + 32, 1) AS f FROM telemetry GROUP BY site ORDER BY f DESC LIMIT 2",
        );
    }

    #[test]
    fn tables_outside_the_agreements_are_refused() {
        for sql in [
            "SELECT count(*) FROM '/etc/passwd'",
            "SELECT count(*) FROM other",
            "SELECT count(*) FROM information_schema.tables",
            "SELECT * FROM generate_series(1, 3)",
        ] {
            let r = refusal(sql);
            assert!(
                matches!(r.rule, Rule::Table | Rule::Statement),
                "{sql}: {r}"
            );
        }
    }

    #[test]
    fn expired_policies_refuse_every_query() {
        let expired = policy_with(|v| v["validity"]["not_after"] = "2026-02-01T00:00:00Z".into());
        let r = enforce_with(expired, "SELECT count(*) FROM telemetry").err();
        assert_eq!(r.map(|r| r.rule), Some(Rule::Validity));
    }
}
