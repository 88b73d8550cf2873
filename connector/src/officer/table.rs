//! The audit log as Arrow: its schema, records as record batches, and the
//! table `audit` that DataFusion queries, read from the store a chunk at a
//! time (on as many partitions as asked, each a range of sequence numbers).

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;

use super::scan::SCAN_CHUNK;
use crate::Result;
use crate::audit::{AuditRecord, AuditStore};

/// The name of the audit table in officer SQL.
pub const AUDIT_TABLE: &str = "audit";

/// The schema of the audit table and of exports: one column per record
/// field, `time` as UTC microseconds.
pub fn audit_schema() -> SchemaRef {
    let text = |name: &str, nullable: bool| Field::new(name, DataType::Utf8, nullable);
    let number = |name: &str| Field::new(name, DataType::UInt64, true);
    Arc::new(Schema::new(vec![
        Field::new("seq", DataType::UInt64, false),
        Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        text("kind", false),
        text("actor", false),
        text("counterparty", true),
        text("dataset", true),
        text("agreement", true),
        text("purpose", true),
        text("sql", true),
        text("decision", true),
        text("rule", true),
        number("rows"),
        number("bytes"),
        number("duration_ms"),
        text("result_hash", true),
        text("detail", true),
        text("prev_hash", false),
        text("hash", false),
    ]))
}

fn texts(records: &[AuditRecord], field: impl Fn(&AuditRecord) -> Option<&str>) -> ArrayRef {
    let bytes = records.iter().map(|r| field(r).map_or(0, str::len)).sum();
    let mut builder = StringBuilder::with_capacity(records.len(), bytes);
    for record in records {
        builder.append_option(field(record));
    }
    Arc::new(builder.finish())
}

fn numbers(records: &[AuditRecord], field: impl Fn(&AuditRecord) -> Option<u64>) -> ArrayRef {
    let mut builder = UInt64Builder::with_capacity(records.len());
    for record in records {
        builder.append_option(field(record));
    }
    Arc::new(builder.finish())
}

/// `records` as one batch of [`audit_schema`].
pub fn records_to_batch(records: &[AuditRecord]) -> Result<RecordBatch> {
    let mut times = TimestampMicrosecondBuilder::with_capacity(records.len()).with_timezone("UTC");
    for record in records {
        times.append_value(record.time.timestamp_micros());
    }
    let columns: Vec<ArrayRef> = vec![
        numbers(records, |r| Some(r.seq)),
        Arc::new(times.finish()),
        texts(records, |r| Some(r.kind.as_str())),
        texts(records, |r| Some(r.actor.as_str())),
        texts(records, |r| r.counterparty.as_deref()),
        texts(records, |r| r.dataset.as_deref()),
        texts(records, |r| r.agreement.as_deref()),
        texts(records, |r| r.purpose.as_deref()),
        texts(records, |r| r.sql.as_deref()),
        texts(records, |r| r.decision.as_deref()),
        texts(records, |r| r.rule.as_deref()),
        numbers(records, |r| r.rows),
        numbers(records, |r| r.bytes),
        numbers(records, |r| r.duration_ms),
        texts(records, |r| r.result_hash.as_deref()),
        texts(records, |r| r.detail.as_deref()),
        texts(records, |r| Some(r.prev_hash.as_str())),
        texts(records, |r| Some(r.hash.as_str())),
    ];
    RecordBatch::try_new(audit_schema(), columns).map_err(crate::engine::execution_error)
}

/// One partition of the table: the records `start..end`.
struct AuditPartition {
    store: Arc<dyn AuditStore>,
    schema: SchemaRef,
    start: u64,
    end: u64,
}

impl std::fmt::Debug for AuditPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditPartition")
            .field("start", &self.start)
            .field("end", &self.end)
            .finish_non_exhaustive()
    }
}

/// Reads `start..end` (at most [`SCAN_CHUNK`] records) as a batch.
fn read_batch(store: &dyn AuditStore, start: u64, end: u64) -> Result<RecordBatch> {
    let size = usize::try_from(end - start).unwrap_or(SCAN_CHUNK);
    let records = store.range(start, size)?;
    records_to_batch(&records)
}

impl PartitionStream for AuditPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let store = Arc::clone(&self.store);
        let end = self.end;
        let chunks = futures::stream::unfold(self.start, move |start| {
            let store = Arc::clone(&store);
            async move {
                if start >= end {
                    return None;
                }
                let stop = end.min(start + SCAN_CHUNK as u64);
                let read =
                    tokio::task::spawn_blocking(move || read_batch(store.as_ref(), start, stop))
                        .await
                        .map_err(|e| DataFusionError::External(Box::new(e)))
                        .and_then(|r| r.map_err(|e| DataFusionError::External(Box::new(e))));
                Some((read, stop))
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            chunks,
        ))
    }
}

/// The table `audit` over the first `len` records of `store` (a snapshot:
/// records appended later are not seen), read on `partitions` partitions.
pub fn audit_table(
    store: Arc<dyn AuditStore>,
    len: u64,
    partitions: usize,
) -> Result<StreamingTable> {
    let schema = audit_schema();
    let parts = partitions.max(1) as u64;
    let streams = (0..parts)
        .map(|i| {
            let partition: Arc<dyn PartitionStream> = Arc::new(AuditPartition {
                store: Arc::clone(&store),
                schema: Arc::clone(&schema),
                start: len * i / parts,
                end: len * (i + 1) / parts,
            });
            partition
        })
        .collect();
    StreamingTable::try_new(schema, streams).map_err(crate::engine::execution_error)
}
