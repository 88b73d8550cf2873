//! Enforced plans serialise with their barriers (datafusion-proto), as a
//! cluster engine needs: the logical plan (the threshold node, the governed
//! table with its policy and row filter) and the verified physical plan (the
//! governed scan, the threshold) survive a round trip unchanged, the decoded
//! physical plan passes the verifier and gives the same answer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use connector::engine::{ExecutionLimits, GovernedEngine};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{collect, displayable};
use datafusion_proto::bytes::{
    logical_plan_from_bytes_with_extension_codec, logical_plan_to_bytes_with_extension_codec,
    physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
};
use policy::barrier::{BarrierLogicalCodec, BarrierPhysicalCodec, verify_physical_plan};
use std::sync::Arc;

mod support;

async fn engine(rows_mode: bool) -> GovernedEngine {
    let policy = support::redteam_policy(rows_mode);
    let mut engine = GovernedEngine::new(ExecutionLimits::default()).unwrap();
    engine
        .add_dataset(
            policy,
            &support::shared("telemetry.csv"),
            &[support::shared("")],
        )
        .await
        .unwrap();
    engine
}

fn sorted_text(batches: &[datafusion::arrow::record_batch::RecordBatch]) -> String {
    let text = datafusion::arrow::util::pretty::pretty_format_batches(batches)
        .unwrap()
        .to_string();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

#[tokio::test]
async fn enforced_plans_round_trip_with_their_barriers() {
    let cases = [
        (
            false,
            "SELECT site, count(*) AS n, avg(temperature) AS t FROM telemetry WHERE shift = 'day' \
             GROUP BY site HAVING 1000 / (count(*) - 12) > 0",
        ),
        (
            true,
            "SELECT site, shift FROM telemetry WHERE temperature > 85 AND \
             1 / (CASE WHEN site = 'west-lab' THEN 0 ELSE 1 END) = 1",
        ),
    ];
    for (rows_mode, sql) in cases {
        let engine = engine(rows_mode).await;
        let checked = engine.plan(sql, chrono::Utc::now()).await.unwrap();
        let task = Arc::new(TaskContext::from(engine.state()));

        // Logical: the enforced plan, with the governed table and threshold.
        let logical = &checked.enforced.plan;
        let bytes =
            logical_plan_to_bytes_with_extension_codec(logical, &BarrierLogicalCodec).unwrap();
        let decoded =
            logical_plan_from_bytes_with_extension_codec(&bytes, &task, &BarrierLogicalCodec)
                .unwrap();
        assert_eq!(
            decoded.display_indent().to_string(),
            logical.display_indent().to_string(),
            "{sql}"
        );

        // Physical: the verified plan, with the governed scan and threshold.
        let physical = Arc::clone(&checked.physical);
        let shown = displayable(physical.as_ref()).indent(true).to_string();
        assert!(
            shown.contains("GovernedScanExec: dataset=telemetry, row_filter="),
            "{shown}"
        );
        assert_eq!(shown.contains("ThresholdExec"), !rows_mode, "{shown}");
        let bytes = physical_plan_to_bytes_with_extension_codec(
            Arc::clone(&physical),
            &BarrierPhysicalCodec,
        )
        .unwrap();
        let decoded =
            physical_plan_from_bytes_with_extension_codec(&bytes, &task, &BarrierPhysicalCodec)
                .unwrap();
        assert_eq!(
            displayable(decoded.as_ref()).indent(true).to_string(),
            shown,
            "{sql}"
        );
        verify_physical_plan(&decoded).unwrap();
        let original = collect(physical, Arc::clone(&task)).await.unwrap();
        let again = collect(decoded, task).await.unwrap();
        assert!(!original.is_empty());
        assert_eq!(sorted_text(&again), sorted_text(&original), "{sql}");
    }
}
