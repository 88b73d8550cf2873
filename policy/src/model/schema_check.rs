//! Validation of a usage policy against the dataset's Arrow schema.

use datafusion::arrow::datatypes::{DataType, Schema};

use super::{Access, ColumnClass, UsagePolicy};
use crate::error::{Error, Result};

impl UsagePolicy {
    /// Checks that every listed column exists in `schema`, that measures are
    /// numeric, and that privacy bounds name numeric columns. The row filter
    /// is checked when it is planned against the table.
    pub fn validate_against_schema(&self, schema: &Schema) -> Result<()> {
        for (name, class) in &self.columns {
            let Ok(field) = schema.field_with_name(name) else {
                return Err(Error::invalid_policy(
                    format!("columns.{name}"),
                    format!(
                        "names a column that the dataset `{}` lacks",
                        self.target.dataset
                    ),
                ));
            };
            if *class == ColumnClass::Measure
                && self.access == Access::Aggregate
                && !is_numeric(field.data_type())
            {
                return Err(Error::invalid_policy(
                    format!("columns.{name}"),
                    format!(
                        "is a `measure` but its type `{}` is not numeric",
                        field.data_type()
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric() || matches!(data_type, DataType::Null)
}
