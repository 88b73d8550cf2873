//! Which expressions may be evaluated on rows that the policy hides: those
//! that cannot raise an error whatever a row holds. One checker, on physical
//! expressions, serves both the admission of consumer predicates into a
//! governed scan (below its row filter) and the verifier of the final plan.
//!
//! Admitted: columns, literals (and constant expressions that evaluate
//! without error), `AND`/`OR`/`NOT`, `IS [NOT] NULL`, comparisons of two
//! operands of one type (`=`, `<>`, `<`, `<=`, `>`, `>=`, `IS [NOT] DISTINCT
//! FROM`), `IN` lists of constants, casts that can never fail (widening
//! numbers, decimals to floats, between string encodings, dictionaries to
//! their values), `TRY_CAST`, and `date_trunc`/`date_part` with a valid
//! literal unit of a time-zone-free timestamp or date column. Not admitted:
//! arithmetic (overflow, division by zero), `LIKE` and regular expressions,
//! `CASE`, other functions, subqueries, dynamic filters.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, RecordBatchOptions, new_null_array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
    TryCastExpr,
};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};

/// Whether evaluating `expr` on any row of `schema` can never raise an error.
pub fn is_infallible(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    if is_constant(expr) {
        return evaluates(expr);
    }
    if expr.downcast_ref::<Column>().is_some() {
        return true;
    }
    if let Some(binary) = expr.downcast_ref::<BinaryExpr>() {
        return binary_is_infallible(binary, schema);
    }
    if let Some(not) = expr.downcast_ref::<NotExpr>() {
        return is_infallible(not.arg(), schema);
    }
    if let Some(is_null) = expr.downcast_ref::<IsNullExpr>() {
        return is_infallible(is_null.arg(), schema);
    }
    if let Some(is_not_null) = expr.downcast_ref::<IsNotNullExpr>() {
        return is_infallible(is_not_null.arg(), schema);
    }
    if let Some(in_list) = expr.downcast_ref::<InListExpr>() {
        let Ok(t) = in_list.expr().data_type(schema) else {
            return false;
        };
        return is_infallible(in_list.expr(), schema)
            && in_list.list().iter().all(|item| {
                is_constant(item)
                    && evaluates(item)
                    && item.data_type(schema).is_ok_and(|u| same_type(&t, &u))
            });
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return is_infallible(cast.expr(), schema)
            && cast
                .expr()
                .data_type(schema)
                .is_ok_and(|from| cast_cannot_fail(&from, cast.cast_type()));
    }
    if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
        return is_infallible(cast.expr(), schema);
    }
    if let Some(function) = expr.downcast_ref::<ScalarFunctionExpr>() {
        return key_function_is_infallible(function, schema);
    }
    false
}

fn binary_is_infallible(binary: &BinaryExpr, schema: &Schema) -> bool {
    let (left, right) = (binary.left(), binary.right());
    if !(is_infallible(left, schema) && is_infallible(right, schema)) {
        return false;
    }
    match binary.op() {
        Operator::And | Operator::Or => true,
        op if is_comparison(*op)
            || matches!(op, Operator::IsDistinctFrom | Operator::IsNotDistinctFrom) =>
        {
            match (left.data_type(schema), right.data_type(schema)) {
                (Ok(a), Ok(b)) => same_type(&a, &b) && comparable(&a),
                _ => false,
            }
        }
        _ => false,
    }
}

/// `=`, `<>`, `<`, `<=`, `>`, `>=`.
pub fn is_comparison(op: Operator) -> bool {
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

/// Types whose comparison kernels exist and cannot fail.
fn comparable(t: &DataType) -> bool {
    let t = value_type(t);
    t.is_numeric()
        || t.is_temporal()
        || matches!(
            t,
            DataType::Boolean
                | DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Utf8View
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::BinaryView
                | DataType::Null
        )
}

fn same_type(a: &DataType, b: &DataType) -> bool {
    value_type(a) == value_type(b) || matches!(a, DataType::Null) || matches!(b, DataType::Null)
}

fn value_type(t: &DataType) -> &DataType {
    match t {
        DataType::Dictionary(_, value) => value_type(value),
        other => other,
    }
}

/// Casts that succeed for every value of `from`.
pub fn cast_cannot_fail(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let from = value_type(from);
    if from == to || matches!(from, Null) {
        return true;
    }
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    match (from, to) {
        (a, b) if string(a) && string(b) => true,
        (Dictionary(_, v), b) => cast_cannot_fail(v, b),
        // Every integer and float becomes a float (possibly rounded, never an error).
        (a, Float64 | Float32) if a.is_numeric() && !matches!(a, Decimal256(..)) => true,
        (a, b) if a.is_integer() && b.is_integer() => widens(a, b),
        (a, Decimal128(p, s)) if a.is_integer() => {
            i16::from(*p) - i16::from(*s) >= integer_digits(a)
        }
        (Decimal128(p1, s1), Decimal128(p2, s2)) => {
            s2 >= s1 && i16::from(*p2) - i16::from(*s2) >= i16::from(*p1) - i16::from(*s1)
        }
        (Date32, Date64) => true,
        (Date32 | Date64, Timestamp(TimeUnit::Second | TimeUnit::Millisecond, None)) => true,
        (Timestamp(a, _), Timestamp(b, _)) => a == b,
        _ => false,
    }
}

/// Whether every value of the integer type `from` fits `to`.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let bits = |t: &DataType| match t {
        Int8 | UInt8 => 8,
        Int16 | UInt16 => 16,
        Int32 | UInt32 => 32,
        _ => 64,
    };
    let signed = |t: &DataType| matches!(t, Int8 | Int16 | Int32 | Int64);
    match (signed(from), signed(to)) {
        (true, true) | (false, false) => bits(to) >= bits(from),
        (false, true) => bits(to) > bits(from),
        (true, false) => false,
    }
}

fn integer_digits(t: &DataType) -> i16 {
    use DataType::*;
    match t {
        Int8 | UInt8 => 3,
        Int16 | UInt16 => 5,
        Int32 | UInt32 => 10,
        _ => 20,
    }
}

/// `date_trunc(unit, c)` or `date_part(unit, c)` with a literal unit that the
/// function accepts, over a column of a time-zone-free timestamp or a date.
fn key_function_is_infallible(function: &ScalarFunctionExpr, schema: &Schema) -> bool {
    let name = function.name().to_ascii_lowercase();
    if !matches!(name.as_str(), "date_trunc" | "date_part") {
        return false;
    }
    let [unit, argument] = function.args() else {
        return false;
    };
    if unit.downcast_ref::<Literal>().is_none() || !is_column_or_safe_cast(argument, schema) {
        return false;
    }
    let Ok(t) = argument.data_type(schema) else {
        return false;
    };
    if !is_plain_time(&t) {
        return false;
    }
    probe_function(function, schema)
}

/// A column, or a column under a `TRY_CAST` or a cast that cannot fail.
fn is_column_or_safe_cast(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> bool {
    if expr.downcast_ref::<Column>().is_some() {
        return true;
    }
    if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
        return is_column_or_safe_cast(cast.expr(), schema);
    }
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        return is_infallible(expr, schema) && is_column_or_safe_cast(cast.expr(), schema);
    }
    false
}

/// Whether values of `t` can go through `date_trunc`/`date_part` without
/// error: dates and timestamps without a time zone (local-time rules of a
/// zone can reject a truncated value).
pub fn is_plain_time(t: &DataType) -> bool {
    matches!(
        value_type(t),
        DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64
    )
}

/// Evaluates `function` on one row of zeros: a unit the function does not
/// know fails here, whatever the data.
fn probe_function(function: &ScalarFunctionExpr, schema: &Schema) -> bool {
    let columns: Option<Vec<ArrayRef>> = schema
        .fields()
        .iter()
        .map(|f| {
            ScalarValue::new_default(f.data_type())
                .and_then(|v| v.to_array_of_size(1))
                .ok()
                .or_else(|| Some(new_null_array(f.data_type(), 1)))
        })
        .collect();
    let Some(columns) = columns else {
        return false;
    };
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    let Ok(batch) = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns) else {
        return false;
    };
    function.evaluate(&batch).is_ok()
}

/// An expression that reads no column.
pub fn is_constant(expr: &Arc<dyn PhysicalExpr>) -> bool {
    if expr.downcast_ref::<Column>().is_some() || expr.children().is_empty() && !is_leaf_value(expr)
    {
        return false;
    }
    expr.children().into_iter().all(is_constant)
}

fn is_leaf_value(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.downcast_ref::<Literal>().is_some()
}

/// Whether a constant expression evaluates without error.
fn evaluates(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let options = RecordBatchOptions::new().with_row_count(Some(1));
    let Ok(batch) = RecordBatch::try_new_with_options(Arc::new(Schema::empty()), vec![], &options)
    else {
        return false;
    };
    expr.evaluate(&batch).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_expr::expressions::{binary, cast, col, lit};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("site", DataType::Utf8, true),
            Field::new("temperature", DataType::Float64, true),
            Field::new("n", DataType::Int32, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
        ])
    }

    #[test]
    fn comparisons_of_columns_with_literals_are_admitted() {
        let s = schema();
        let site = col("site", &s).unwrap();
        let t = col("temperature", &s).unwrap();
        let eq = binary(site, Operator::Eq, lit("x"), &s).unwrap();
        let gt = binary(t, Operator::Gt, lit(3.0), &s).unwrap();
        let both = binary(eq, Operator::And, gt, &s).unwrap();
        assert!(is_infallible(&both, &s));
    }

    #[test]
    fn arithmetic_and_failing_casts_are_not() {
        let s = schema();
        let n = col("n", &s).unwrap();
        let div = binary(lit(1_i32), Operator::Divide, n.clone(), &s).unwrap();
        let cmp = binary(div, Operator::Eq, lit(1_i32), &s).unwrap();
        assert!(!is_infallible(&cmp, &s));
        let site = col("site", &s).unwrap();
        let to_int = cast(site, &s, DataType::Int32).unwrap();
        assert!(!is_infallible(&to_int, &s));
        let widened = cast(n, &s, DataType::Int64).unwrap();
        assert!(is_infallible(&widened, &s));
        let bad_literal = cast(lit("abc"), &s, DataType::Int32).unwrap();
        assert!(
            !is_infallible(&bad_literal, &s),
            "the literal cannot be cast"
        );
        let good_literal = cast(lit("12"), &s, DataType::Int32).unwrap();
        assert!(is_infallible(&good_literal, &s));
    }

    #[test]
    fn casts_that_cannot_fail() {
        use DataType::*;
        assert!(cast_cannot_fail(&Int32, &Int64));
        assert!(cast_cannot_fail(&UInt32, &Int64));
        assert!(!cast_cannot_fail(&Int64, &Int32));
        assert!(!cast_cannot_fail(&Int32, &UInt64));
        assert!(cast_cannot_fail(&Int64, &Float64));
        assert!(cast_cannot_fail(&Decimal128(15, 2), &Decimal128(18, 4)));
        assert!(!cast_cannot_fail(&Decimal128(15, 2), &Decimal128(15, 4)));
        assert!(cast_cannot_fail(&Int32, &Decimal128(12, 2)));
        assert!(!cast_cannot_fail(&Utf8, &Int32));
        assert!(cast_cannot_fail(&Utf8, &Utf8View));
        assert!(!cast_cannot_fail(
            &Date32,
            &Timestamp(TimeUnit::Nanosecond, None)
        ));
    }
}
