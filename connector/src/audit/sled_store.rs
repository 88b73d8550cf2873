//! The sled implementation of [`AuditStore`]: one tree, key = `seq` as a
//! big-endian `u64` (so key order is `seq` order), value = the record's JSON.
//!
//! A batch is applied atomically and flushed before `append_batch` returns.
//! sled 0.34 flushes with `sync_file_range` on Linux: the records survive a
//! crash of the process (kill -9); surviving a power cut also depends on the
//! device honouring write ordering, as for every sled-backed store.

use std::path::Path;

use super::error::{AuditError, Result};
use super::record::AuditRecord;
use super::store::AuditStore;
#[cfg(test)]
use catalog::store::LOCK_WAIT;
use catalog::store::{is_locked, open_sled};

/// Name of the sled tree holding the chain.
pub const AUDIT_TREE: &str = "audit_records";

/// The key of the last batch's bounds (`first` and `last` seq, 16 bytes):
/// one byte, so it sorts before every 8-byte record key and is never read as
/// a record.
const LAST_BATCH_KEY: [u8; 1] = [0];

/// Page cache of the audit database, in bytes. The audit log is written
/// once and read in sequence, so a small cache is enough and keeps the
/// memory of a full verification bounded.
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

/// Records in a sled database.
pub struct SledAuditStore {
    db: sled::Db,
    tree: sled::Tree,
}

impl SledAuditStore {
    /// Opens (or creates) the audit database in the folder `path`.
    ///
    /// sled locks the database while it is open and releases the lock a
    /// moment after the last handle is dropped, from its own threads; so a
    /// locked database is retried for a while (`catalog::store::open_sled`) before giving up
    /// (then another handle, such as a running connector, holds it).
    pub fn open(path: &Path) -> Result<Self> {
        let config = sled::Config::new().path(path).cache_capacity(CACHE_BYTES);
        let db = open_sled(&config).map_err(|e| {
            if is_locked(&e) {
                AuditError::store(format!(
                    "the audit log `{}` is in use (is the connector running?)",
                    path.display()
                ))
            } else {
                AuditError::Unopenable {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            }
        })?;
        let tree = db
            .open_tree(AUDIT_TREE)
            .map_err(|e| AuditError::Unopenable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self { db, tree })
    }

    /// Opens the audit database in `path`, which must exist (for offline
    /// verification, which must not create an empty log).
    pub fn open_existing(path: &Path) -> Result<Self> {
        if !path.is_dir() {
            return Err(AuditError::Missing {
                path: path.display().to_string(),
            });
        }
        Self::open(path)
    }
}

impl std::fmt::Debug for SledAuditStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledAuditStore").finish_non_exhaustive()
    }
}

fn decode(key: &[u8], value: &[u8]) -> Result<AuditRecord> {
    let key: [u8; 8] = key.try_into().map_err(|_| {
        AuditError::store(format!("a key of {} bytes in the audit tree", key.len()))
    })?;
    let seq = u64::from_be_bytes(key);
    let record: AuditRecord = serde_json::from_slice(value).map_err(|e| AuditError::Corrupt {
        seq,
        reason: e.to_string(),
    })?;
    if record.seq != seq {
        return Err(AuditError::Corrupt {
            seq,
            reason: format!("it is stored under #{seq} but says it is #{}", record.seq),
        });
    }
    Ok(record)
}

impl AuditStore for SledAuditStore {
    fn append_batch(&self, records: &[AuditRecord]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for record in records {
            let value =
                serde_json::to_vec(record).map_err(|e| AuditError::Encode(e.to_string()))?;
            batch.insert(&record.seq.to_be_bytes(), value);
        }
        if let (Some(first), Some(last)) = (records.first(), records.last()) {
            let mut bounds = first.seq.to_be_bytes().to_vec();
            bounds.extend_from_slice(&last.seq.to_be_bytes());
            batch.insert(&LAST_BATCH_KEY, bounds);
        }
        self.tree.apply_batch(batch).map_err(AuditError::store)?;
        self.db.flush().map_err(AuditError::store)?;
        Ok(())
    }

    fn last_batch(&self) -> Result<Option<(u64, u64)>> {
        let Some(value) = self.tree.get(LAST_BATCH_KEY).map_err(AuditError::store)? else {
            return Ok(None);
        };
        let bounds: [u8; 16] = value
            .as_ref()
            .try_into()
            .map_err(|_| AuditError::store("the bounds of the last audit batch are damaged"))?;
        let (first, last) = bounds.split_at(8);
        let seq = |bytes: &[u8]| u64::from_be_bytes(bytes.try_into().unwrap_or([0; 8]));
        Ok(Some((seq(first), seq(last))))
    }

    fn remove_from(&self, seq: u64) -> Result<()> {
        let mut batch = sled::Batch::default();
        for key in self.tree.range(seq.to_be_bytes()..).keys() {
            batch.remove(key.map_err(AuditError::store)?);
        }
        batch.remove(&LAST_BATCH_KEY);
        self.tree.apply_batch(batch).map_err(AuditError::store)?;
        self.db.flush().map_err(AuditError::store)?;
        Ok(())
    }

    fn last(&self) -> Result<Option<AuditRecord>> {
        match self.tree.last().map_err(AuditError::store)? {
            Some((key, value)) => decode(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    fn get(&self, seq: u64) -> Result<Option<AuditRecord>> {
        let key = seq.to_be_bytes();
        match self.tree.get(key).map_err(AuditError::store)? {
            Some(value) => decode(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    fn range(&self, from: u64, limit: usize) -> Result<Vec<AuditRecord>> {
        let mut records = Vec::with_capacity(limit.min(4096));
        for item in self.tree.range(from.to_be_bytes()..).take(limit) {
            let (key, value) = item.map_err(AuditError::store)?;
            records.push(decode(&key, &value)?);
        }
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::store::tests::{chain, exercise};

    #[test]
    fn sled_store_behaves() {
        let dir = tempfile::tempdir().unwrap();
        exercise(&SledAuditStore::open(&dir.path().join("audit")).unwrap());
    }

    #[test]
    fn records_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit");
        let records = chain(5);
        {
            let store = SledAuditStore::open(&path).unwrap();
            store.append_batch(&records).unwrap();
        }
        let store = SledAuditStore::open(&path).unwrap();
        assert_eq!(store.range(0, 10).unwrap(), records);
    }

    #[test]
    fn a_database_held_open_is_refused_after_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit");
        let _held = SledAuditStore::open(&path).unwrap();
        let start = std::time::Instant::now();
        let err = SledAuditStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("is in use"), "{err}");
        assert!(start.elapsed() >= LOCK_WAIT);
    }

    #[test]
    fn open_existing_refuses_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit");
        let err = SledAuditStore::open_existing(&path).unwrap_err();
        assert!(matches!(err, AuditError::Missing { .. }), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn a_record_under_the_wrong_key_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledAuditStore::open(&dir.path().join("audit")).unwrap();
        let records = chain(3);
        store.append_batch(&records).unwrap();
        let value = serde_json::to_vec(&records[2]).unwrap();
        store.tree.insert(1u64.to_be_bytes(), value).unwrap();
        let err = store.get(1).unwrap_err();
        assert!(matches!(err, AuditError::Corrupt { seq: 1, .. }), "{err}");
        store
            .tree
            .insert(2u64.to_be_bytes(), b"{not json".to_vec())
            .unwrap();
        let err = store.range(2, 1).unwrap_err();
        assert!(matches!(err, AuditError::Corrupt { seq: 2, .. }), "{err}");
    }
}
