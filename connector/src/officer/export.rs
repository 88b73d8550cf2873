//! Exports of the audit log: JSON Lines (one stored record per line, exactly
//! as stored, so an export can be checked again offline) and Parquet (the
//! columns of the table `audit`).

use datafusion::parquet::arrow::ArrowWriter;

use super::filter::AuditFilter;
use super::scan::SCAN_CHUNK;
use super::table::{audit_schema, records_to_batch};
use crate::audit::AuditStore;
use crate::{Error, Result};

/// A JSON Lines export, produced a chunk at a time (for streaming).
pub struct JsonLinesExport {
    filter: AuditFilter,
    next: u64,
    done: bool,
}

impl JsonLinesExport {
    /// An export of the records matching `filter`.
    pub fn new(filter: AuditFilter) -> Self {
        Self {
            filter,
            next: 0,
            done: false,
        }
    }

    /// The lines of the next [`SCAN_CHUNK`] records read (possibly empty
    /// when none matched), or `None` at the end.
    pub fn next_chunk(&mut self, store: &dyn AuditStore) -> Result<Option<Vec<u8>>> {
        if self.done {
            return Ok(None);
        }
        let chunk = store.range(self.next, SCAN_CHUNK)?;
        let Some(last) = chunk.last().map(|r| r.seq) else {
            self.done = true;
            return Ok(None);
        };
        self.next = last + 1;
        let mut out = Vec::new();
        for record in chunk.iter().filter(|r| self.filter.matches(r)) {
            serde_json::to_writer(&mut out, record)
                .map_err(|e| Error::Storage(format!("cannot encode an audit record: {e}")))?;
            out.push(b'\n');
        }
        Ok(Some(out))
    }

    /// The whole export at once.
    pub fn collect(mut self, store: &dyn AuditStore) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(chunk) = self.next_chunk(store)? {
            out.extend(chunk);
        }
        Ok(out)
    }
}

/// The records of `store` matching `filter` as a Parquet file.
pub fn export_parquet(store: &dyn AuditStore, filter: &AuditFilter) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, audit_schema(), None)
        .map_err(crate::engine::execution_error)?;
    let mut from = 0;
    loop {
        let chunk = store.range(from, SCAN_CHUNK)?;
        let Some(last) = chunk.last().map(|r| r.seq) else {
            break;
        };
        from = last + 1;
        let kept: Vec<_> = chunk.into_iter().filter(|r| filter.matches(r)).collect();
        if !kept.is_empty() {
            writer
                .write(&records_to_batch(&kept)?)
                .map_err(crate::engine::execution_error)?;
        }
    }
    writer.close().map_err(crate::engine::execution_error)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditRecord, GENESIS_HASH, MemoryAuditStore, RecordKind};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn store(count: u64) -> MemoryAuditStore {
        let store = MemoryAuditStore::new();
        let mut prev = GENESIS_HASH.to_owned();
        for seq in 0..count {
            let entry = AuditEntry::new(RecordKind::QueryAnswered, "p")
                .with_sql("SELECT \"x\"\n FROM t -- é")
                .with_rows(seq);
            let record = AuditRecord::seal(entry, seq, prev.clone()).unwrap();
            prev.clone_from(&record.hash);
            store.append_batch(&[record]).unwrap();
        }
        store
    }

    #[test]
    fn json_lines_round_trip_and_keep_their_hashes() {
        let store = store(5000);
        let out = JsonLinesExport::new(AuditFilter::default())
            .collect(&store)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let records: Vec<AuditRecord> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(records.len(), 5000);
        assert!(records.iter().all(|r| r.hash_matches().unwrap()));
        assert_eq!(records[4999], store.get(4999).unwrap().unwrap());
    }

    #[test]
    fn parquet_holds_the_matching_records() {
        let store = store(5000);
        let filter = AuditFilter {
            to: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..AuditFilter::default()
        };
        let file = export_parquet(&store, &filter).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file))
            .unwrap()
            .build()
            .unwrap();
        let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
        assert_eq!(rows, 5000);
        let empty = AuditFilter {
            kind: Some("checkpoint".into()),
            ..AuditFilter::default()
        };
        assert!(!export_parquet(&store, &empty).unwrap().is_empty());
    }
}
