//! Date arguments of `date_trunc` and `date_part` that cannot fail.
//!
//! DataFusion converts a date argument of these functions to a nanosecond
//! timestamp, and that conversion fails for dates beyond the years 1677 to
//! 2262. Under an enforced aggregate such a failure would tell whether a
//! hidden row holds such a date. This analyzer rule, run after type
//! coercion, makes the conversion a `TRY_CAST`: such a date becomes `NULL`
//! (a group of its own) instead of an error; every other date is converted
//! as before, and the column keeps its name and type.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{Cast, ScalarFunction, TryCast};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

/// See the module documentation.
#[derive(Debug, Default)]
pub struct SafeDateArguments;

impl AnalyzerRule for SafeDateArguments {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            let schema = node
                .inputs()
                .first()
                .map(|i| std::sync::Arc::clone(i.schema()));
            let Some(schema) = schema else {
                return Ok(Transformed::no(node));
            };
            node.map_expressions(|expr| {
                expr.transform_up(|e| {
                    let Expr::ScalarFunction(ScalarFunction { func, mut args }) = e else {
                        return Ok(Transformed::no(e));
                    };
                    let name = func.name().to_ascii_lowercase();
                    let is_date_function = matches!(name.as_str(), "date_trunc" | "date_part");
                    let mut changed = false;
                    if is_date_function
                        && let Some(arg) = args.get_mut(1)
                        && let Expr::Cast(Cast { expr, field }) = arg
                        && matches!(field.data_type(), DataType::Timestamp(..))
                        && expr
                            .get_type(&schema)
                            .is_ok_and(|t| matches!(t, DataType::Date32 | DataType::Date64))
                    {
                        *arg = Expr::TryCast(TryCast {
                            expr: expr.clone(),
                            field: field.clone(),
                        });
                        changed = true;
                    }
                    let rebuilt = Expr::ScalarFunction(ScalarFunction { func, args });
                    Ok(if changed {
                        Transformed::yes(rebuilt)
                    } else {
                        Transformed::no(rebuilt)
                    })
                })
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "dataspace_safe_date_arguments"
    }
}
