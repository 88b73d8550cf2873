//! Rule 4 (`filter`): in aggregate mode, the filters on dataset rows are a
//! conjunction of comparisons of one dimension with literals. Also decides
//! whether a predicate is *infallible*, i.e. cannot raise an error whatever
//! the row holds; fallible predicates make the row filter guard every column.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, Operator, expr::InList};

use super::lineage::{Col, Scopes, classify};
use super::refusal::{Decision, Refusal, Rule};
use crate::model::ColumnClass;

/// Checks a filter on unaggregated rows of an aggregate-mode dataset.
pub fn check_row_filter(predicate: &Expr, scopes: &Scopes<'_>) -> Decision<()> {
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
            super::nodes::describe_columns(other)
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

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
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
            super::nodes::describe_columns(expr)
        ))),
    }
}

fn require_constant(expr: &Expr) -> Decision<()> {
    if is_constant(expr) {
        Ok(())
    } else {
        Err(refuse(&format!(
            "the other side of a comparison ({}) is not a literal",
            super::nodes::describe_columns(expr)
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

/// An expression with no column, outer reference, subquery, aggregate,
/// window function or placeholder: its value does not depend on any row.
pub fn is_constant(expr: &Expr) -> bool {
    let mut constant = true;
    let _ = expr.apply(|e| {
        if matches!(
            e,
            Expr::Column(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::ScalarSubquery(_)
                | Expr::SetComparison(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::Placeholder(_)
                | Expr::ScalarVariable(..)
                | Expr::Unnest(_)
        ) {
            constant = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    constant
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

/// Whether evaluating `expr` on any row of `schema` can never raise an
/// error. Conservative: anything not known to be safe is fallible.
pub fn is_infallible(expr: &Expr, schema: &DFSchema) -> bool {
    if is_constant(expr) {
        return true;
    }
    match expr {
        // A subquery's own predicates are checked where they stand; its
        // result is a value like a column's.
        Expr::Column(_) | Expr::ScalarSubquery(_) | Expr::Exists(_) => true,
        Expr::InSubquery(s) => is_infallible(&s.expr, schema),
        Expr::Alias(a) => is_infallible(&a.expr, schema),
        Expr::Not(e)
        | Expr::IsNull(e)
        | Expr::IsNotNull(e)
        | Expr::IsTrue(e)
        | Expr::IsFalse(e)
        | Expr::IsUnknown(e)
        | Expr::IsNotTrue(e)
        | Expr::IsNotFalse(e)
        | Expr::IsNotUnknown(e) => is_infallible(e, schema),
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And | Operator::Or => {
                is_infallible(left, schema) && is_infallible(right, schema)
            }
            op if is_comparison(*op)
                || matches!(op, Operator::IsDistinctFrom | Operator::IsNotDistinctFrom) =>
            {
                comparison_is_safe(left, right, schema)
            }
            _ => false,
        },
        Expr::Between(Between {
            expr, low, high, ..
        }) => comparison_is_safe(expr, low, schema) && comparison_is_safe(expr, high, schema),
        Expr::InList(InList { expr, list, .. }) => list
            .iter()
            .all(|item| comparison_is_safe(expr, item, schema)),
        Expr::Like(like) => {
            is_constant(&like.pattern) && is_infallible(&like.expr, schema) && {
                let t = like.expr.get_type(schema);
                matches!(
                    t,
                    Ok(DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
                )
            }
        }
        _ => false,
    }
}

fn comparison_is_safe(left: &Expr, right: &Expr, schema: &DFSchema) -> bool {
    if !(is_infallible(left, schema) && is_infallible(right, schema)) {
        return false;
    }
    let (Ok(a), Ok(b)) = (left.get_type(schema), right.get_type(schema)) else {
        return false;
    };
    match (is_constant(left), is_constant(right)) {
        (false, true) => comparable_without_casting_column(&a, &b, true),
        (true, false) => comparable_without_casting_column(&b, &a, true),
        _ => {
            comparable_without_casting_column(&a, &b, false)
                && comparable_without_casting_column(&b, &a, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{accepted, refusal};
    use super::*;
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
    fn infallibility_is_conservative() {
        let schema =
            DFSchema::try_from(super::super::test_support::schema().as_ref().clone()).unwrap();
        assert!(is_infallible(
            &col("site")
                .eq(lit("x"))
                .and(col("temperature").gt(lit(3.0))),
            &schema
        ));
        assert!(is_infallible(&col("ts").is_null(), &schema));
        assert!(!is_infallible(
            &(lit(1) / col("temperature")).eq(lit(1)),
            &schema
        ));
        assert!(
            !is_infallible(&col("site").eq(lit(5)), &schema),
            "the column would be cast"
        );
        assert!(is_constant(&(lit(1) + lit(2))));
        assert!(!is_constant(&col("site")));
    }
}
