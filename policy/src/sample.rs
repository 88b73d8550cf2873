//! The red-team fixture's shape (`../shared/redteam/telemetry.csv`), for
//! tests that plan or run queries over it: the enforcer's unit tests and
//! the cross-crate property and noninterference tests share this one
//! schema rather than each spelling it out.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

/// The schema of the red-team telemetry table: every column nullable, `ts`
/// in seconds.
pub fn telemetry_schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("machine_id", DataType::Utf8, true),
        Field::new("site", DataType::Utf8, true),
        Field::new("shift", DataType::Utf8, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("temperature", DataType::Float64, true),
        Field::new("vibration", DataType::Float64, true),
        Field::new("operator_name", DataType::Utf8, true),
        Field::new("defect", DataType::Boolean, true),
    ]))
}
