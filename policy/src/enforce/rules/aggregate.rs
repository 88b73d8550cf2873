//! Aggregates. Over unaggregated rows of an aggregate-mode dataset an
//! aggregate is enforced: rules 2 (`aggregate_function`,
//! `aggregate_argument`) and 3 (`group_key`) hold, the rows below it passed
//! rule 6, and it is rewritten with the threshold of rule 5
//! ([`apply_threshold`]). Any other aggregate may use any column but a
//! denied or entity one.

use datafusion::logical_expr::expr::AggregateFunction as AggregateCall;
use datafusion::logical_expr::{Aggregate as AggregateNode, Expr, LogicalPlan};

use crate::enforce::columns::{Use, check_references, strip_alias};
use crate::enforce::describe::describe_columns;
use crate::enforce::lineage::{Col, Rel, Scopes, Source, classify, fit_width};
use crate::enforce::rule::{NodeContext, NodeRule, rebuild};
use crate::enforce::threshold::apply_threshold;
use crate::model::{AggregateFunction, ColumnClass, UsagePolicy};
use crate::refusal::{Decision, Refusal, Rule};

/// `GROUP BY` and aggregate calls.
pub struct Aggregate;

impl NodeRule for Aggregate {
    fn name(&self) -> &'static str {
        "aggregate"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Aggregate(aggregate) = cx.plan else {
            return Ok(None);
        };
        if !cx.aggregate_rows() {
            return plain_aggregate(aggregate, cx).map(Some);
        }
        if let Some(reason) = &cx.input().impure {
            return Err(reason.clone());
        }
        let policy = enforced_policy(cx)?;
        for key in &aggregate.group_expr {
            check_group_key(key, cx.scopes)?;
        }
        for call in &aggregate.aggr_expr {
            check_aggregate_call(call, cx.scopes, policy)?;
        }
        Ok(Some(Rel::clean(cx.width())))
    }

    /// An enforced aggregate gets its threshold; any other is rebuilt as
    /// it is.
    fn rewrite(
        &self,
        cx: &NodeContext<'_>,
        mut inputs: Vec<LogicalPlan>,
        subqueries: Vec<LogicalPlan>,
    ) -> Decision<LogicalPlan> {
        let LogicalPlan::Aggregate(aggregate) = cx.plan else {
            return Err(Refusal::unenforceable("an aggregate rule on another node"));
        };
        if !cx.aggregate_rows() {
            return rebuild(cx.plan, inputs, subqueries);
        }
        if !subqueries.is_empty() {
            return Err(Refusal::new(
                Rule::Structure,
                "an aggregate over dataset rows may not contain subqueries",
            ));
        }
        let input = inputs
            .pop()
            .ok_or_else(|| Refusal::new(Rule::Structure, "an aggregate without input"))?;
        let policy = enforced_policy(cx)?;
        let (Some(aggregation), Some(entity)) = (&policy.aggregation, policy.entity_column())
        else {
            return Err(Refusal::new(
                Rule::Structure,
                "the policy has no aggregation settings",
            ));
        };
        apply_threshold(aggregate, input, policy.dataset(), entity, aggregation)?
            .recompute_schema()
            .map_err(Refusal::unenforceable)
    }
}

/// The policy of the dataset whose rows an enforced aggregate reads.
fn enforced_policy<'a>(cx: &NodeContext<'a>) -> Decision<&'a UsagePolicy> {
    let table = cx
        .input()
        .unaggregated
        .first()
        .map(|t| t.to_string())
        .unwrap_or_default();
    cx.governed
        .get(&table)
        .map(AsRef::as_ref)
        .ok_or_else(|| Refusal::new(Rule::Structure, "the aggregate's dataset is unknown"))
}

/// An aggregate over aggregated or clean rows (or over a rows-mode
/// dataset): its keys and calls name no denied or entity column.
fn plain_aggregate(aggregate: &AggregateNode, cx: &NodeContext<'_>) -> Decision<Rel> {
    let entity_ok = cx.entity_ok();
    let mut cols = Vec::new();
    for e in aggregate.group_expr.iter().chain(&aggregate.aggr_expr) {
        check_references(e, cx.scopes, Use::Other, &entity_ok)?;
        cols.push(classify(e, cx.scopes)?);
    }
    Ok(Rel {
        cols: fit_width(cols, cx.width()),
        unaggregated: vec![],
        impure: None,
    })
}

fn check_group_key(key: &Expr, scopes: &Scopes<'_>) -> Decision<()> {
    if let Expr::GroupingSet(_) = key {
        return Err(Refusal::new(
            Rule::GroupKey,
            "`GROUPING SETS`, `ROLLUP` and `CUBE` are not allowed on dataset rows",
        ));
    }
    check_references(key, scopes, Use::Other, &|_| false)?;
    match classify(key, scopes)? {
        Col::Bare(s) | Col::KeyFn(s) if s.class == ColumnClass::Dimension => Ok(()),
        Col::Clean => Ok(()),
        _ => Err(Refusal::new(
            Rule::GroupKey,
            format!(
                "the group key {} is not allowed: only dimension columns, or `date_trunc`/`date_part` of one, may be grouped on",
                describe_columns(key)
            ),
        )),
    }
}

fn check_aggregate_call(call: &Expr, scopes: &Scopes<'_>, policy: &UsagePolicy) -> Decision<()> {
    let Expr::AggregateFunction(AggregateCall { func, params }) = strip_alias(call) else {
        return Err(Refusal::new(
            Rule::AggregateFunction,
            format!(
                "an expression {} stands where an aggregate function must",
                describe_columns(call)
            ),
        ));
    };
    let name = func.name().to_ascii_lowercase();
    let function = match name.as_str() {
        "count" => AggregateFunction::Count,
        "sum" => AggregateFunction::Sum,
        "avg" | "mean" => AggregateFunction::Avg,
        _ => return Err(function_refusal(&name, policy)),
    };
    if !policy.allows_function(function) {
        return Err(function_refusal(&name, policy));
    }
    if params.filter.is_some() || !params.order_by.is_empty() {
        return Err(Refusal::new(
            Rule::AggregateArgument,
            format!("`{name}` may not carry `FILTER (WHERE ...)` or `ORDER BY`"),
        ));
    }
    let [arg] = params.args.as_slice() else {
        return Err(argument_refusal(&name, "takes exactly one argument"));
    };
    if function == AggregateFunction::Count && !params.distinct && is_count_star(arg) {
        return Ok(());
    }
    let usage = if function == AggregateFunction::Count && params.distinct {
        Use::EntityAllowed
    } else {
        Use::Other
    };
    check_references(arg, scopes, usage, &|_| true)?;
    let Col::Bare(source) = classify(arg, scopes)? else {
        return Err(argument_refusal(
            &name,
            "takes a bare column: no expression, `CASE` or cast",
        ));
    };
    check_argument_class(function, params.distinct, &source, &name)
}

fn check_argument_class(
    function: AggregateFunction,
    distinct: bool,
    source: &Source,
    name: &str,
) -> Decision<()> {
    match (function, source.class, distinct) {
        (AggregateFunction::Count, ColumnClass::Dimension, _) => Ok(()),
        (AggregateFunction::Count, ColumnClass::Entity, true) => Ok(()),
        (AggregateFunction::Sum | AggregateFunction::Avg, ColumnClass::Measure, false) => Ok(()),
        (AggregateFunction::Sum | AggregateFunction::Avg, ColumnClass::Measure, true) => {
            Err(argument_refusal(name, "may not be `DISTINCT`"))
        }
        (AggregateFunction::Count, ColumnClass::Measure, _) => Err(argument_refusal(
            name,
            &format!(
                "counts dimension columns only; `{}` is a measure",
                source.column
            ),
        )),
        (_, class, _) => Err(argument_refusal(
            name,
            &format!(
                "cannot take `{}`, a column of class `{}`",
                source.column,
                class.as_str()
            ),
        )),
    }
}

fn is_count_star(arg: &Expr) -> bool {
    matches!(strip_alias(arg), Expr::Literal(value, _) if !value.is_null())
}

fn function_refusal(name: &str, policy: &UsagePolicy) -> Refusal {
    let allowed: Vec<&str> = policy
        .aggregation
        .as_ref()
        .map(|a| a.functions.iter().map(|f| f.as_str()).collect())
        .unwrap_or_default();
    Refusal::new(
        Rule::AggregateFunction,
        format!(
            "the aggregate `{name}` is not allowed; the policy allows {}",
            allowed.join(", ")
        ),
    )
}

fn argument_refusal(name: &str, why: &str) -> Refusal {
    Refusal::new(Rule::AggregateArgument, format!("`{name}` {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::test_support::{accepted, enforce_with, policy_with, refusal};

    #[test]
    fn only_listed_functions() {
        for sql in [
            "SELECT max(temperature) FROM telemetry",
            "SELECT site, array_agg(temperature) FROM telemetry GROUP BY site",
            "SELECT stddev(temperature) FROM telemetry",
            "SELECT approx_distinct(site) FROM telemetry",
        ] {
            assert_eq!(refusal(sql).rule, Rule::AggregateFunction, "{sql}");
        }
        let no_avg =
            policy_with(|v| v["aggregation"]["functions"] = serde_json::json!(["count", "sum"]));
        let r = enforce_with(no_avg, "SELECT avg(temperature) FROM telemetry").err();
        assert_eq!(r.map(|r| r.rule), Some(Rule::AggregateFunction));
    }

    #[test]
    fn arguments_are_bare_columns_of_the_right_class() {
        for sql in [
            "SELECT sum(temperature * 2) FROM telemetry",
            "SELECT sum(CAST(temperature AS INT)) FROM telemetry",
            "SELECT sum(DISTINCT temperature) FROM telemetry",
            "SELECT count(temperature) FROM telemetry",
            "SELECT sum(temperature) FILTER (WHERE site = 'a') FROM telemetry",
            "SELECT sum(CASE WHEN site = 'a' THEN temperature ELSE 0 END) FROM telemetry",
        ] {
            assert_eq!(refusal(sql).rule, Rule::AggregateArgument, "{sql}");
        }
        accepted(
            "SELECT count(*), count(1), count(site), count(DISTINCT shift), sum(temperature), avg(vibration) FROM telemetry",
        );
    }

    #[test]
    fn group_keys_are_dimensions_or_date_functions() {
        for sql in [
            "SELECT site, defect, count(*) FROM telemetry GROUP BY ROLLUP(site, defect)",
            "SELECT site, count(*) FROM telemetry GROUP BY CUBE(site)",
            "SELECT site, count(*) FROM telemetry GROUP BY GROUPING SETS ((site), ())",
            "SELECT temperature, count(*) FROM telemetry GROUP BY temperature",
            "SELECT upper(site), count(*) FROM telemetry GROUP BY upper(site)",
        ] {
            assert_eq!(refusal(sql).rule, Rule::GroupKey, "{sql}");
        }
        accepted(
            "SELECT date_part('hour', ts) AS h, date_trunc('day', ts) AS d, count(*) FROM telemetry GROUP BY 1, 2",
        );
    }
}
