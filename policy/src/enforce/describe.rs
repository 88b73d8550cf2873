//! Names of expressions and plan nodes for refusal messages. Expressions are
//! not rendered: literals render in forms (`IntervalMonthDayNano { days: .. }`)
//! that could read like data values.

use datafusion::logical_expr::{Expr, LogicalPlan};

/// Names the columns an expression uses, for messages: "on `a`, `b`", or
/// "on no column".
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

/// A short name of a plan node for messages.
pub fn node_name(plan: &LogicalPlan) -> String {
    plan.display()
        .to_string()
        .split(':')
        .next()
        .unwrap_or("node")
        .to_owned()
}
