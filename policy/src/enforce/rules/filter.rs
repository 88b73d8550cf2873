//! Filters (`WHERE`, `HAVING`): no reference to a denied or entity column,
//! and rule 4 (`filter`): in aggregate mode, the filters on dataset rows are
//! a conjunction of comparisons of one dimension with literals.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, expr::InList,
};

use crate::barrier::admit::is_comparison;
use crate::enforce::columns::{Use, check_references};
use crate::enforce::describe::describe_columns;
use crate::enforce::lineage::{Col, Rel, Scopes, classify, is_constant};
use crate::enforce::rule::{NodeContext, NodeRule};
use crate::model::ColumnClass;
use crate::refusal::{Decision, Refusal, Rule};

/// Filter nodes.
pub struct Filter;

impl NodeRule for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn check(&self, cx: &NodeContext<'_>) -> Decision<Option<Rel>> {
        let LogicalPlan::Filter(f) = cx.plan else {
            return Ok(None);
        };
        check_references(&f.predicate, cx.scopes, Use::Other, &cx.entity_ok())?;
        if cx.aggregate_rows() {
            check_row_filter(&f.predicate, cx.scopes)?;
        }
        Ok(Some(cx.input().clone()))
    }
}

/// Checks a filter on unaggregated rows of an aggregate-mode dataset.
fn check_row_filter(predicate: &Expr, scopes: &Scopes<'_>) -> Decision<()> {
    for part in split_conjunction(predicate) {
        check_predicate(part, scopes)?;
    }
    Ok(())
}

fn check_predicate(part: &Expr, scopes: &Scopes<'_>) -> Decision<()> {
    let schema = scopes.local.schema;
    match part {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(*op) => {
            let (term, constant) = if is_constant(right) {
                (left, right)
            } else {
                (right, left)
            };
            dimension_term(term, scopes)?;
            require_constant(constant)?;
            require_compatible(term, constant, schema)
        }
        Expr::Between(Between {
            expr,
            negated: false,
            low,
            high,
        }) => {
            dimension_term(expr, scopes)?;
            require_constant(low)?;
            require_constant(high)?;
            require_compatible(expr, low, schema)?;
            require_compatible(expr, high, schema)
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) => {
            dimension_term(expr, scopes)?;
            for item in list {
                require_constant(item)?;
                require_compatible(expr, item, schema)?;
            }
            Ok(())
        }
        Expr::IsNull(expr) | Expr::IsNotNull(expr) => dimension_term(expr, scopes),
        Expr::BinaryExpr(BinaryExpr {
            op: Operator::Or, ..
        }) => Err(refuse("`OR` is not allowed")),
        Expr::Not(_) | Expr::Between(_) | Expr::InList(_) => Err(refuse("`NOT` is not allowed")),
        Expr::Like(_) | Expr::SimilarTo(_) => {
            Err(refuse("`LIKE` and `SIMILAR TO` are not allowed"))
        }
        Expr::Exists(_)
        | Expr::InSubquery(_)
        | Expr::ScalarSubquery(_)
        | Expr::SetComparison(_) => Err(Refusal::new(
            Rule::Structure,
            "a subquery may not filter dataset rows before the aggregate",
        )),
        other => Err(refuse(&format!(
            "a predicate {} is not a comparison of a dimension with literals",
            describe_columns(other)
        ))),
    }
}

fn refuse(what: &str) -> Refusal {
    Refusal::new(
        Rule::Filter,
        format!(
            "filters on dataset rows must be comparisons of one dimension column with literals, joined by `AND`: {what}"
        ),
    )
}

/// A dimension column, or an allowed group-key function of one.
fn dimension_term(expr: &Expr, scopes: &Scopes<'_>) -> Decision<()> {
    match classify(expr, scopes)? {
        Col::Bare(s) | Col::KeyFn(s) if s.class == ColumnClass::Dimension => Ok(()),
        Col::Bare(s) | Col::KeyFn(s) if s.class == ColumnClass::Measure => Err(refuse(&format!(
            "the measure `{}` may only be aggregated, not filtered on",
            s.column
        ))),
        Col::Derived(sources) if sources.iter().any(|s| s.class == ColumnClass::Measure) => {
            Err(refuse("measures may only be aggregated, not filtered on"))
        }
        Col::Clean => Err(refuse("a comparison must involve one dimension column")),
        _ => Err(refuse(&format!(
            "an expression {} applies a function or operator to a column",
            describe_columns(expr)
        ))),
    }
}

fn require_constant(expr: &Expr) -> Decision<()> {
    if is_constant(expr) {
        Ok(())
    } else {
        Err(refuse(&format!(
            "the other side of a comparison ({}) is not a literal",
            describe_columns(expr)
        )))
    }
}

fn require_compatible(term: &Expr, constant: &Expr, schema: &DFSchema) -> Decision<()> {
    let (Ok(a), Ok(b)) = (term.get_type(schema), constant.get_type(schema)) else {
        return Err(refuse("the types of the comparison cannot be determined"));
    };
    if comparable_without_casting_column(&a, &b, true) {
        Ok(())
    } else {
        Err(refuse(&format!(
            "a column of type `{a}` cannot be compared with a literal of type `{b}` without converting the column"
        )))
    }
}

/// Whether comparing values of type `column` with `other` leaves the column
/// side as it is (or widens it losslessly), so that the comparison cannot fail.
fn comparable_without_casting_column(
    column: &DataType,
    other: &DataType,
    other_is_constant: bool,
) -> bool {
    use DataType::*;
    let column = value_type(column);
    let other = value_type(other);
    if column == other || matches!(other, Null) {
        return true;
    }
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let temporal = |t: &DataType| matches!(t, Timestamp(..) | Date32 | Date64);
    (column.is_numeric() && other.is_numeric())
        || (string(column) && string(other))
        || (temporal(column) && temporal(other))
        || (temporal(column) && string(other) && other_is_constant)
}

fn value_type(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, value) => value_type(value),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enforce::test_support::{accepted, refusal};
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn allows_conjunctions_of_dimension_comparisons() {
        accepted(
            "SELECT count(*) FROM telemetry WHERE site = 'a' AND shift <> 'night' AND defect = true \
             AND site IN ('a', 'b') AND shift BETWEEN 'a' AND 'z' AND site IS NOT NULL \
             AND ts >= TIMESTAMP '2026-03-01 00:00:00' AND date_trunc('day', ts) < '2026-03-03'",
        );
    }

    #[test]
    fn refuses_everything_else_on_dataset_rows() {
        for sql in [
            "SELECT count(*) FROM telemetry WHERE site = 'a' OR shift = 'b'",
            "SELECT count(*) FROM telemetry WHERE NOT site = 'a'",
            "SELECT count(*) FROM telemetry WHERE site NOT IN ('a')",
            "SELECT count(*) FROM telemetry WHERE site NOT BETWEEN 'a' AND 'b'",
            "SELECT count(*) FROM telemetry WHERE site LIKE 'n%'",
            "SELECT count(*) FROM telemetry WHERE temperature > 80",
            "SELECT count(*) FROM telemetry WHERE upper(site) = 'A'",
            "SELECT count(*) FROM telemetry WHERE site = shift",
            "SELECT count(*) FROM telemetry WHERE site = 5",
            "SELECT count(*) FROM telemetry WHERE CAST(site AS INT) = 5",
            "SELECT count(*) FROM telemetry WHERE defect",
            "SELECT count(*) FROM telemetry WHERE 1 / (CASE WHEN site = 'x' THEN 0 ELSE 1 END) = 1",
        ] {
            assert_eq!(refusal(sql).rule, Rule::Filter, "{sql}");
        }
        let r = refusal("SELECT count(*) FROM telemetry WHERE EXISTS (SELECT 1 FROM telemetry)");
        assert!(
            matches!(r.rule, Rule::Structure | Rule::AggregationRequired),
            "{r}"
        );
        let r = refusal("SELECT count(*) FROM telemetry WHERE site IN (SELECT 'x')");
        assert_eq!(r.rule, Rule::Structure, "{r}");
    }

    #[test]
    fn constants_read_no_column() {
        assert!(is_constant(&(lit(1) + lit(2))));
        assert!(!is_constant(&col("site")));
    }
}
