//! The walk over the plan: one function per kind of node, each checking its
//! expressions, deriving the lineage of its output, and rebuilding it over
//! its rewritten inputs.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::{Aggregate, Distinct, Expr, LogicalPlan, TableScan};

use datafusion::datasource::source_as_provider;

use super::Governed;
use super::aggregate::check_enforced_aggregate;
use super::columns::{Use, check_columns, check_denied, check_references};
use super::filter::{check_row_filter, is_constant};
use super::lineage::{Col, Rel, Scope, Scopes, Source, classify};
use super::refusal::{Decision, Refusal, Rule};
use super::threshold::{apply_threshold, node_name};
use crate::barrier::GovernedTable;

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

    fn is_aggregate_rows(&self, rel: &Rel) -> bool {
        rel.unaggregated
            .iter()
            .any(|t| self.governed.is_aggregate(t))
    }

    fn entity_ok(&self) -> impl Fn(&Source) -> bool + '_ {
        |s: &Source| self.governed.is_aggregate(&s.table)
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
        if let LogicalPlan::TableScan(scan) = plan {
            return self.scan(scan);
        }
        let empty = Rel::default();
        let input_rel = rels.first().unwrap_or(&empty);
        let input_schema: &DFSchema = plan
            .inputs()
            .first()
            .map_or(plan.schema().as_ref(), |i| i.schema().as_ref());
        let local = Scope {
            schema: input_schema,
            rel: input_rel,
        };
        let scopes = Scopes { local, outer };
        let subqueries = self.visit_subqueries(plan, local, outer)?;
        let rel = self.check_node(plan, &rels, &scopes)?;
        if let LogicalPlan::Aggregate(aggregate) = plan
            && self.is_aggregate_rows(input_rel)
        {
            let table = input_rel
                .unaggregated
                .first()
                .map(|t| t.to_string())
                .unwrap_or_default();
            return self.enforced_aggregate(aggregate, &table, inputs, subqueries);
        }
        // Schemas are recomputed: the threshold makes aggregate outputs nullable.
        let rebuilt = rebuild(plan, inputs, subqueries, true)?;
        Ok((rebuilt, rel))
    }

    fn scan(&mut self, scan: &TableScan) -> Decision<(LogicalPlan, Rel)> {
        let name = scan.table_name.table().to_owned();
        let Some(policy) = self.governed.get(&name) else {
            return Err(Refusal::new(
                Rule::Table,
                format!("`{}` is not a dataset of your agreements", scan.table_name),
            ));
        };
        if !policy.is_valid_at(self.now) {
            return Err(Refusal::new(
                Rule::Validity,
                format!("the usage policy of `{name}` is not in force now"),
            ));
        }
        if !scan.filters.is_empty() || scan.fetch.is_some() {
            return Err(Refusal::new(
                Rule::Structure,
                "a scan may not carry filters or limits of its own",
            ));
        }
        let table: Arc<str> = Arc::from(name.as_str());
        let cols = scan
            .projected_schema
            .fields()
            .iter()
            .map(|f| {
                Col::Bare(Source {
                    table: Arc::clone(&table),
                    column: Arc::from(f.name().as_str()),
                    class: policy.class_of(f.name()),
                })
            })
            .collect();
        let rel = Rel {
            cols,
            unaggregated: vec![table],
            impure: None,
        };
        // The row filter is part of the governed table's scan (a barrier no
        // optimizer rule can cross); a table that is not governed by this
        // very policy is refused.
        let governed = source_as_provider(&scan.source)
            .ok()
            .is_some_and(|provider| {
                provider
                    .downcast_ref::<GovernedTable>()
                    .is_some_and(|table| table.policy().as_ref() == policy.as_ref())
            });
        if !governed {
            return Err(Refusal::new(
                Rule::Table,
                format!("`{name}` is not registered as a governed dataset"),
            ));
        }
        let plan = LogicalPlan::TableScan(scan.clone());
        if !self.scanned.contains(&name) {
            self.scanned.push(name);
        }
        Ok((plan, rel))
    }

    fn enforced_aggregate(
        &mut self,
        aggregate: &Aggregate,
        table: &str,
        mut inputs: Vec<LogicalPlan>,
        subqueries: Vec<LogicalPlan>,
    ) -> Decision<(LogicalPlan, Rel)> {
        if !subqueries.is_empty() {
            return Err(Refusal::new(
                Rule::Structure,
                "an aggregate over dataset rows may not contain subqueries",
            ));
        }
        let input = inputs
            .pop()
            .ok_or_else(|| Refusal::new(Rule::Structure, "an aggregate without input"))?;
        let policy = self
            .governed
            .get(table)
            .ok_or_else(|| Refusal::new(Rule::Structure, "the aggregate's dataset is unknown"))?;
        let (Some(aggregation), Some(entity)) = (&policy.aggregation, policy.entity_column())
        else {
            return Err(Refusal::new(
                Rule::Structure,
                "the policy has no aggregation settings",
            ));
        };
        let rebuilt = recompute(apply_threshold(
            aggregate,
            input,
            table,
            entity,
            aggregation,
        )?)?;
        Ok((rebuilt, Rel::clean(aggregate.schema.fields().len())))
    }

    fn check_node(&self, plan: &LogicalPlan, rels: &[Rel], scopes: &Scopes<'_>) -> Decision<Rel> {
        let input = scopes.local.rel;
        let aggregate_rows = self.is_aggregate_rows(input);
        let entity_ok = self.entity_ok();
        if !matches!(plan, LogicalPlan::Join(_)) {
            for e in plan.expressions() {
                check_denied(&e, scopes)?;
            }
        }
        let mut rel = input.clone();
        match plan {
            LogicalPlan::Projection(p) => {
                rel.cols = Vec::with_capacity(p.expr.len());
                for e in &p.expr {
                    check_references(e, scopes, Use::EntityAllowed, &entity_ok)?;
                    let col = classify(e, scopes)?;
                    if aggregate_rows && !fits_below_aggregate(e, &col) {
                        rel.taint(Refusal::new(
                            Rule::Structure,
                            format!(
                                "a computed column ({}) may not stand below the aggregate",
                                describe_columns(e)
                            ),
                        ));
                    }
                    rel.cols.push(col);
                }
                if aggregate_rows && has_subqueries(plan) {
                    rel.taint(Refusal::new(
                        Rule::Structure,
                        "a subquery may not stand below the aggregate",
                    ));
                }
            }
            LogicalPlan::Filter(f) => {
                check_references(&f.predicate, scopes, Use::Other, &entity_ok)?;
                if aggregate_rows {
                    check_row_filter(&f.predicate, scopes)?;
                }
            }
            LogicalPlan::Aggregate(a) => {
                return self.check_aggregate(a, plan, scopes, aggregate_rows);
            }
            LogicalPlan::Window(w) => {
                for e in &w.window_expr {
                    check_references(e, scopes, Use::Other, &entity_ok)?;
                }
                if aggregate_rows {
                    return Err(Refusal::new(
                        Rule::Structure,
                        "window functions may only run over aggregated results, not over dataset rows",
                    ));
                }
                for e in &w.window_expr {
                    rel.cols.push(classify(e, scopes)?);
                }
            }
            LogicalPlan::Sort(s) => {
                for e in &s.expr {
                    check_references(&e.expr, scopes, Use::Other, &entity_ok)?;
                }
                rel.taint(below("ORDER BY"));
            }
            LogicalPlan::Limit(_) => rel.taint(below("LIMIT or OFFSET")),
            LogicalPlan::Repartition(_) => rel.taint(below("a repartition")),
            LogicalPlan::Distinct(Distinct::All(_)) => {
                check_columns(&input.cols)?;
                rel.taint(below("DISTINCT"));
            }
            LogicalPlan::Distinct(Distinct::On(on)) => {
                for e in on.on_expr.iter().chain(&on.select_expr) {
                    check_references(e, scopes, Use::Other, &entity_ok)?;
                }
                rel.cols = on
                    .select_expr
                    .iter()
                    .map(|e| classify(e, scopes))
                    .collect::<Decision<_>>()?;
                rel.taint(below("DISTINCT ON"));
            }
            LogicalPlan::Union(_) => rel = union_rel(plan, rels)?,
            LogicalPlan::Join(_) => rel = self.join_rel(plan, rels, scopes.outer)?,
            LogicalPlan::SubqueryAlias(_) | LogicalPlan::Subquery(_) => {}
            LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => {
                rel = Rel::clean(plan.schema().fields().len())
            }
            LogicalPlan::Unnest(_) => {
                let all = Col::Derived(
                    input
                        .cols
                        .iter()
                        .flat_map(|c| c.sources())
                        .cloned()
                        .collect(),
                );
                let col = if all.sources().is_empty() {
                    Col::Clean
                } else {
                    all
                };
                rel.cols = vec![col; plan.schema().fields().len()];
                rel.taint(below("UNNEST"));
            }
            LogicalPlan::RecursiveQuery(_) => {
                if rels
                    .iter()
                    .any(|r| !r.unaggregated.is_empty() || r.cols.iter().any(|c| *c != Col::Clean))
                {
                    return Err(Refusal::new(
                        Rule::Structure,
                        "recursive queries over datasets are not allowed",
                    ));
                }
                rel = Rel::clean(plan.schema().fields().len());
            }
            LogicalPlan::TableScan(_) => {}
            other => {
                return Err(Refusal::new(
                    Rule::Statement,
                    format!(
                        "`{}` is not allowed: only `SELECT` queries are",
                        node_name(other)
                    ),
                ));
            }
        }
        Ok(rel)
    }

    fn check_aggregate(
        &self,
        a: &Aggregate,
        plan: &LogicalPlan,
        scopes: &Scopes<'_>,
        enforced: bool,
    ) -> Decision<Rel> {
        let input = scopes.local.rel;
        if enforced {
            if let Some(reason) = &input.impure {
                return Err(reason.clone());
            }
            let table = input
                .unaggregated
                .first()
                .map(|t| t.to_string())
                .unwrap_or_default();
            let policy = self.governed.get(&table).ok_or_else(|| {
                Refusal::new(Rule::Structure, "the aggregate's dataset is unknown")
            })?;
            check_enforced_aggregate(a, scopes, policy)?;
            return Ok(Rel::clean(plan.schema().fields().len()));
        }
        let entity_ok = self.entity_ok();
        let mut cols = Vec::new();
        for e in a.group_expr.iter().chain(&a.aggr_expr) {
            check_references(e, scopes, Use::Other, &entity_ok)?;
            cols.push(classify(e, scopes)?);
        }
        Ok(Rel {
            cols: fit_width(cols, plan.schema().fields().len()),
            unaggregated: vec![],
            impure: None,
        })
    }

    fn join_rel(&self, plan: &LogicalPlan, rels: &[Rel], outer: &[Scope<'_>]) -> Decision<Rel> {
        if rels.iter().any(|r| !r.unaggregated.is_empty()) {
            return Err(Refusal::new(
                Rule::Join,
                "the dataset's policy allows no join that reads its rows before aggregation (`joins: none`)",
            ));
        }
        let cols: Vec<Col> = rels.iter().flat_map(|r| r.cols.clone()).collect();
        let rel = Rel {
            cols: fit_width(cols, plan.schema().fields().len()),
            unaggregated: vec![],
            impure: None,
        };
        let LogicalPlan::Join(join) = plan else {
            return Ok(rel);
        };
        // Each side of an equi-join condition is resolved against its own
        // input (`EXCEPT` and `INTERSECT` join sides with equal names).
        let entity_ok = self.entity_ok();
        let empty = Rel::default();
        let sides = [
            (join.left.schema(), rels.first().unwrap_or(&empty)),
            (join.right.schema(), rels.get(1).unwrap_or(&empty)),
        ];
        for (l, r) in &join.on {
            for (expr, (schema, side)) in [(l, sides[0]), (r, sides[1])] {
                let scopes = Scopes {
                    local: Scope { schema, rel: side },
                    outer,
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
        Ok(rel)
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
            if self.is_aggregate_rows(&rel) {
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

fn below(what: &str) -> Refusal {
    Refusal::new(
        Rule::Structure,
        format!("{what} may not stand between the dataset and its aggregate"),
    )
}

/// Names the columns an expression uses, for messages. Expressions are not
/// rendered: literals render in forms (`IntervalMonthDayNano { days: .. }`)
/// that could read like data values.
pub fn describe_columns(expr: &Expr) -> String {
    let mut names: Vec<String> = expr
        .column_refs()
        .iter()
        .map(|c| format!("`{}`", c.name))
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        "on no column".to_owned()
    } else {
        format!("on {}", names.join(", "))
    }
}

/// Rule 6: below an enforced aggregate, projections pass bare columns,
/// group-key functions of them, or literals.
fn fits_below_aggregate(expr: &Expr, col: &Col) -> bool {
    match col {
        Col::Bare(_) | Col::KeyFn(_) => true,
        Col::Clean => is_constant(expr),
        Col::Derived(_) => false,
    }
}

fn has_subqueries(plan: &LogicalPlan) -> bool {
    let mut found = false;
    let _ = plan.apply_subqueries(|_| {
        found = true;
        Ok(TreeNodeRecursion::Stop)
    });
    found
}

/// Lineage padded or collapsed to `width` columns. When the shapes do not
/// line up (grouping sets, mark joins), every column conservatively derives
/// from every source.
fn fit_width(cols: Vec<Col>, width: usize) -> Vec<Col> {
    if cols.len() == width {
        return cols;
    }
    let sources: Vec<Source> = cols.iter().flat_map(|c| c.sources()).cloned().collect();
    let col = if sources.is_empty() {
        Col::Clean
    } else {
        Col::Derived(sources)
    };
    vec![col; width]
}

fn union_rel(plan: &LogicalPlan, rels: &[Rel]) -> Decision<Rel> {
    for rel in rels {
        check_columns(&rel.cols)?;
    }
    let width = plan.schema().fields().len();
    let mut cols = Vec::with_capacity(width);
    for i in 0..width {
        let mut sources: Vec<Source> = Vec::new();
        for rel in rels {
            if let Some(col) = rel.cols.get(i) {
                sources.extend(col.sources().into_iter().cloned());
            }
        }
        cols.push(if sources.is_empty() {
            Col::Clean
        } else {
            Col::Derived(sources)
        });
    }
    let refs: Vec<&Rel> = rels.iter().collect();
    let (unaggregated, impure) = Rel::merge_rows(&refs);
    let mut rel = Rel {
        cols,
        unaggregated,
        impure,
    };
    rel.taint(below("UNION"));
    Ok(rel)
}

/// The node over its rewritten inputs and subqueries.
fn rebuild(
    plan: &LogicalPlan,
    inputs: Vec<LogicalPlan>,
    subqueries: Vec<LogicalPlan>,
    recompute_schema: bool,
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
        .map_err(internal)?
        .data;
    let mut subqueries = subqueries.into_iter();
    let with_subqueries = with_inputs
        .map_subqueries(|old| {
            Ok(subqueries
                .next()
                .map_or_else(|| Transformed::no(old), Transformed::yes))
        })
        .map_err(internal)?
        .data;
    if recompute_schema {
        recompute(with_subqueries)
    } else {
        Ok(with_subqueries)
    }
}

fn recompute(plan: LogicalPlan) -> Decision<LogicalPlan> {
    plan.recompute_schema().map_err(internal)
}

fn internal(e: datafusion::error::DataFusionError) -> Refusal {
    let text = e.to_string();
    Refusal::new(
        Rule::Structure,
        format!(
            "the query cannot be enforced: {}",
            text.lines().next().unwrap_or_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, enforce_with, policy_with, refusal, rows_policy};
    use super::*;

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
