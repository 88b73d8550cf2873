//! Rules 2 (`aggregate_function`, `aggregate_argument`) and 3 (`group_key`)
//! for an enforced aggregate.

use datafusion::logical_expr::expr::AggregateFunction as AggregateCall;
use datafusion::logical_expr::{Aggregate, Expr};

use super::columns::{Use, check_references, strip_alias};
use super::lineage::{Col, Scopes, Source, classify};
use super::refusal::{Decision, Refusal, Rule};
use crate::model::{AggregateFunction, ColumnClass, UsagePolicy};

/// Checks the group keys and aggregate calls of an aggregate directly over
/// rows of the dataset governed by `policy`.
pub fn check_enforced_aggregate(
    aggregate: &Aggregate,
    scopes: &Scopes<'_>,
    policy: &UsagePolicy,
) -> Decision<()> {
    for key in &aggregate.group_expr {
        check_group_key(key, scopes)?;
    }
    for call in &aggregate.aggr_expr {
        check_aggregate_call(call, scopes, policy)?;
    }
    Ok(())
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
                super::nodes::describe_columns(key)
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
                super::nodes::describe_columns(call)
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
    use super::super::test_support::{accepted, enforce_with, policy_with, refusal};
    use super::*;

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
