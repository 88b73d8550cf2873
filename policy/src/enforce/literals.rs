//! Calls whose literal arguments are invalid fail as soon as one row reaches
//! them, so whether they fail would tell whether rows exist. They are
//! refused here, whatever the data, before a plan is made:
//!
//! - `date_trunc`, `date_part` and `date_bin` with a unit (or stride) that
//!   the function rejects, or over a column that is not a date or a
//!   timestamp (text would be parsed row by row);
//! - regular expressions (`regexp_like`, `regexp_match`, `regexp_replace`,
//!   `regexp_count`, `regexp_instr`, `~` and its kin, `SIMILAR TO`) whose
//!   literal pattern or flags do not compile.
//!
//! Each call is probed once with its column arguments replaced by a neutral
//! value of their type (the epoch, the empty string); the probe reads no
//! data.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::SimplifyContext;
use datafusion::logical_expr::{BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::simplify_expressions::ExprSimplifier;
use datafusion::physical_expr::create_physical_expr;

use super::lineage::is_constant;
use crate::refusal::{Decision, Refusal, Rule};

/// Checks every call with literal arguments in `plan`, subqueries included.
pub fn check_literal_arguments(plan: &LogicalPlan) -> Decision<()> {
    let mut outcome = Ok(());
    let _ = plan.apply_with_subqueries(|node| {
        let schema = match node.inputs().first() {
            Some(input) => Arc::clone(input.schema()),
            None => Arc::clone(node.schema()),
        };
        node.apply_expressions(|expr| {
            expr.apply(|e| match check_call(e, &schema) {
                Ok(()) => Ok(TreeNodeRecursion::Continue),
                Err(refusal) => {
                    outcome = Err(refusal);
                    Ok(TreeNodeRecursion::Stop)
                }
            })
        })
    });
    outcome
}

const DATE_FUNCTIONS: &[&str] = &[
    "date_trunc",
    "datetrunc",
    "date_part",
    "datepart",
    "date_bin",
];
const REGEX_FUNCTIONS: &[&str] = &[
    "regexp_like",
    "regexp_match",
    "regexp_replace",
    "regexp_count",
    "regexp_instr",
    "regexp_substr",
];

fn check_call(expr: &Expr, schema: &DFSchema) -> Decision<()> {
    match expr {
        Expr::ScalarFunction(ScalarFunction { func, args }) => {
            let name = func.name().to_ascii_lowercase();
            if DATE_FUNCTIONS.contains(&name.as_str()) {
                check_date_call(expr, &name, args, schema)
            } else if REGEX_FUNCTIONS.contains(&name.as_str()) {
                probe(expr, schema, &name, "its pattern or flags do not compile")
            } else {
                Ok(())
            }
        }
        Expr::BinaryExpr(BinaryExpr {
            op:
                Operator::RegexMatch
                | Operator::RegexIMatch
                | Operator::RegexNotMatch
                | Operator::RegexNotIMatch,
            ..
        }) => probe(expr, schema, "~", "its pattern does not compile"),
        Expr::SimilarTo(_) => probe(expr, schema, "SIMILAR TO", "its pattern does not compile"),
        _ => Ok(()),
    }
}

fn check_date_call(expr: &Expr, name: &str, args: &[Expr], schema: &DFSchema) -> Decision<()> {
    // The time argument: the second (the first of `date_bin` is the stride).
    if let Some(time) = args.get(1)
        && !is_constant(time)
    {
        let t = time.get_type(schema).map_err(|_| {
            Refusal::new(
                Rule::Statement,
                format!("the argument of `{name}` has no type"),
            )
        })?;
        if !is_time(&t) {
            return Err(Refusal::new(
                Rule::Statement,
                format!(
                    "`{name}` takes a date or timestamp column, not one of type `{t}`; convert it with `CAST(... AS TIMESTAMP)` if it holds times"
                ),
            ));
        }
    }
    probe(
        expr,
        schema,
        name,
        "its unit is not one it knows (units are such as `year`, `month`, `week`, `hour`, `minute`)",
    )
}

fn is_time(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => is_time(v),
        DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null => true,
        _ => false,
    }
}

/// Evaluates `expr` once with every column replaced by a neutral value of
/// its type; refuses when that fails (the literal arguments are invalid).
fn probe(expr: &Expr, schema: &DFSchema, name: &str, why: &str) -> Decision<()> {
    // Calls with subqueries or outer references are probed where they are
    // planned; only calls over columns and literals are probed here.
    if expr
        .exists(|e| {
            Ok(matches!(
                e,
                Expr::ScalarSubquery(_)
                    | Expr::Exists(_)
                    | Expr::InSubquery(_)
                    | Expr::OuterReferenceColumn(..)
                    | Expr::Placeholder(_)
                    | Expr::AggregateFunction(_)
                    | Expr::WindowFunction(_)
            ))
        })
        .unwrap_or(true)
    {
        return Ok(());
    }
    let neutral = expr.clone().transform(|e| {
        if let Expr::Column(_) = &e {
            let t = e.get_type(schema)?;
            let value = ScalarValue::new_default(&t).or_else(|_| ScalarValue::try_from(&t))?;
            return Ok(Transformed::yes(Expr::Literal(value, None)));
        }
        Ok(Transformed::no(e))
    });
    let Ok(neutral) = neutral else {
        return Ok(());
    };
    let empty = DFSchema::empty();
    // Coerced as the planner would (a date becomes a timestamp, say); a
    // call whose types do not fit is left to the planner's own error.
    let simplifier = ExprSimplifier::new(SimplifyContext::default());
    let Ok(coerced) = simplifier.coerce(neutral.data, &empty) else {
        return Ok(());
    };
    let Ok(physical) = create_physical_expr(
        &coerced,
        &empty,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    ) else {
        // Not plannable on its own (e.g. types left to coercion); the
        // verifier of the final plan still stands.
        return Ok(());
    };
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    let Ok(batch) = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
    else {
        return Ok(());
    };
    match physical.evaluate(&batch) {
        Ok(_) => Ok(()),
        Err(_) => Err(Refusal::new(
            Rule::Statement,
            format!("the call of `{name}` is invalid whatever the data: {why}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, enforce_with, refusal, rows_policy};
    use super::*;

    #[test]
    fn invalid_units_and_patterns_are_refused_whatever_the_data() {
        for sql in [
            "SELECT site, date_trunc('fortnight', ts) AS d, count(*) FROM telemetry GROUP BY site, date_trunc('fortnight', ts)",
            "SELECT site, count(*) FROM telemetry WHERE date_part('eon', ts) = 1 GROUP BY site",
            "SELECT site, date_part('hour', shift) AS h, count(*) FROM telemetry GROUP BY site, date_part('hour', shift)",
        ] {
            let r = refusal(sql);
            assert_eq!(r.rule, Rule::Statement, "{sql}: {r}");
        }
        for sql in [
            "SELECT site FROM telemetry WHERE regexp_like(site, '(')",
            "SELECT site FROM telemetry WHERE site ~ '[z-a]'",
            "SELECT date_trunc('nounit', ts) FROM telemetry",
            "SELECT date_bin(INTERVAL '0 minutes', ts) FROM telemetry",
        ] {
            let r = enforce_with(rows_policy(), sql).err();
            assert_eq!(r.map(|r| r.rule), Some(Rule::Statement), "{sql}");
        }
        accepted(
            "SELECT site, date_trunc('day', ts) AS d, date_part('hour', ts) AS h, count(*) FROM telemetry GROUP BY 1, 2, 3",
        );
        // A date argument is converted as the planner converts it.
        let dates = enforce_with(
            rows_policy(),
            "SELECT site, date_trunc('month', CAST(ts AS DATE)) AS m FROM telemetry",
        );
        assert!(dates.is_ok(), "{:?}", dates.err());
        assert!(
            enforce_with(
                rows_policy(),
                "SELECT site FROM telemetry WHERE regexp_like(site, '^n.*t$')"
            )
            .is_ok()
        );
    }
}
