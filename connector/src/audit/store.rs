//! Where audit records are kept: the [`AuditStore`] trait and its in-memory
//! implementation (the sled one is in `sled_store`).
//!
//! A store is dumb storage keyed by `seq`: it does not check the chain.
//! [`super::AuditLog`] is its only writer and [`super::verify`] its checker.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::error::{AuditError, Result};
use super::record::AuditRecord;

/// Ordered storage of audit records by sequence number.
pub trait AuditStore: Send + Sync {
    /// Stores `records` (in `seq` order, following the last stored one);
    /// durable when it returns.
    fn append_batch(&self, records: &[AuditRecord]) -> Result<()>;
    /// The record with the highest `seq`.
    fn last(&self) -> Result<Option<AuditRecord>>;
    /// The record stored under `seq`.
    fn get(&self, seq: u64) -> Result<Option<AuditRecord>>;
    /// Up to `limit` records stored under `from` and after, in `seq` order.
    fn range(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>>;
    /// How many records the chain holds: the last `seq` plus one (stores
    /// hold a contiguous chain, so this is cheap; it does not count).
    fn len(&self) -> Result<u64> {
        Ok(self.last()?.map_or(0, |record| record.seq + 1))
    }
    /// The first and last sequence numbers of the last batch stored, written
    /// atomically with it (see `head`); `None` if the store does not keep it.
    fn last_batch(&self) -> Result<Option<(u64, u64)>> {
        Ok(None)
    }
    /// Removes every record from `seq` on (recovery only: the records are
    /// exported first). Durable when it returns.
    fn remove_from(&self, seq: u64) -> Result<()>;
    /// Whether the store holds no record.
    fn is_empty(&self) -> Result<bool> {
        Ok(self.last()?.is_none())
    }
}

/// Records in memory (tests, throwaway connectors).
#[derive(Debug, Default)]
pub struct MemoryAuditStore {
    records: RwLock<BTreeMap<u64, AuditRecord>>,
}

impl MemoryAuditStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> AuditError {
    AuditError::store("the in-memory audit store lock is poisoned")
}

impl AuditStore for MemoryAuditStore {
    fn append_batch(&self, records: &[AuditRecord]) -> Result<()> {
        let mut map = self.records.write().map_err(|_| poisoned())?;
        for record in records {
            map.insert(record.seq, record.clone());
        }
        Ok(())
    }

    fn last(&self) -> Result<Option<AuditRecord>> {
        let map = self.records.read().map_err(|_| poisoned())?;
        Ok(map.values().next_back().cloned())
    }

    fn get(&self, seq: u64) -> Result<Option<AuditRecord>> {
        let map = self.records.read().map_err(|_| poisoned())?;
        Ok(map.get(&seq).cloned())
    }

    fn range(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let map = self.records.read().map_err(|_| poisoned())?;
        Ok(map
            .range(from..)
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn remove_from(&self, seq: u64) -> Result<()> {
        let mut map = self.records.write().map_err(|_| poisoned())?;
        map.split_off(&seq);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::audit::record::{AuditEntry, GENESIS_HASH, RecordKind};

    /// `count` sealed records chained from genesis (no checkpoints).
    pub(crate) fn chain(count: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (0..count)
            .map(|seq| {
                let entry = AuditEntry::new(RecordKind::QueryAnswered, "c").with_rows(seq);
                let record = AuditRecord::seal(entry, seq, prev.clone()).unwrap();
                prev.clone_from(&record.hash);
                record
            })
            .collect()
    }

    /// The behaviour every store must have.
    pub(crate) fn exercise(store: &dyn AuditStore) {
        assert_eq!(store.len().unwrap(), 0);
        assert!(store.is_empty().unwrap());
        assert!(store.last().unwrap().is_none());
        let records = chain(10);
        store.append_batch(&records[..4]).unwrap();
        store.append_batch(&records[4..]).unwrap();
        assert_eq!(store.len().unwrap(), 10);
        assert_eq!(store.last().unwrap().unwrap(), records[9]);
        assert_eq!(store.get(3).unwrap().unwrap(), records[3]);
        assert!(store.get(10).unwrap().is_none());
        assert_eq!(store.range(2, 3).unwrap(), records[2..5].to_vec());
        assert_eq!(store.range(8, 100).unwrap(), records[8..].to_vec());
        assert!(store.range(10, 5).unwrap().is_empty());
        assert_eq!(store.range(0, 0).unwrap(), Vec::new());
    }

    #[test]
    fn memory_store_behaves() {
        exercise(&MemoryAuditStore::new());
    }
}
