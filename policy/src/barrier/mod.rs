//! Barriers the optimizer cannot cross: the policy's row filter and the
//! threshold of every enforced aggregate hold for the plan that runs, not
//! only for the plan the enforcer returns.
//!
//! - [`GovernedTable`] / [`GovernedScanExec`]: a dataset's scan is one
//!   opaque leaf that applies the row filter itself; the only consumer
//!   predicates it takes inside are those that cannot fail on any row
//!   ([`admit`]).
//! - [`ThresholdNode`] / [`ThresholdExec`]: the threshold of an enforced
//!   aggregate, through which no predicate is pushed, logically or
//!   physically.
//! - [`verify_physical_plan`]: the check of the final physical plan before it
//!   runs.
//! - [`BarrierLogicalCodec`] / [`BarrierPhysicalCodec`]: datafusion-proto
//!   codecs, so enforced plans serialise with their barriers.

pub mod admit;
mod codec;
mod safe_dates;
mod scan;
mod table;
mod threshold;
mod verify;

pub use codec::{BarrierLogicalCodec, BarrierPhysicalCodec};
pub use safe_dates::SafeDateArguments;
pub use scan::{GovernedScanExec, ScanParts};
pub use table::GovernedTable;
pub use threshold::{BarrierPlanner, ENTITIES, ROWS, ThresholdExec, ThresholdNode, ThresholdSpec};
pub use verify::verify_physical_plan;
