//! The pure core of the log: [`Chain`] assigns sequence numbers, links
//! hashes and inserts signed checkpoints. No I/O: it turns entries into
//! records, and the writer stores them.

use std::sync::Arc;

use policy::keys::KeyPair;

use super::checkpoint::checkpoint_entry;
use super::error::{AuditError, Result};
use super::record::{AuditEntry, AuditRecord, GENESIS_HASH};

/// Default number of records between two signed checkpoints.
pub const DEFAULT_CHECKPOINT_EVERY: u64 = 1000;

/// The head of the chain and the rule for checkpoints.
///
/// Checkpoints sit at fixed positions: after every `checkpoint_every`
/// records comes one checkpoint, i.e. at the `seq` where
/// `seq % (checkpoint_every + 1) == checkpoint_every`. A checkpoint is
/// sealed in the same batch as the record before it, so it is never left
/// out by a crash.
pub struct Chain {
    next_seq: u64,
    head: String,
    checkpoint_every: u64,
    key: Arc<KeyPair>,
}

impl Chain {
    /// Continues the chain after `last` (or starts it when `None`).
    pub fn resume(
        last: Option<&AuditRecord>,
        key: Arc<KeyPair>,
        checkpoint_every: u64,
    ) -> Result<Self> {
        if checkpoint_every == 0 {
            return Err(AuditError::Invalid {
                field: "checkpoint_every",
                reason: "must be at least 1".into(),
            });
        }
        let (next_seq, head) = match last {
            Some(record) => (record.seq + 1, record.hash.clone()),
            None => (0, GENESIS_HASH.to_owned()),
        };
        Ok(Self {
            next_seq,
            head,
            checkpoint_every,
            key,
        })
    }

    /// The `seq` the next record will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The hash of the last record (the genesis hash for an empty chain).
    pub fn head(&self) -> &str {
        &self.head
    }

    /// Seals `entry` as the next record and pushes it onto `out`, followed by
    /// a checkpoint when one falls due. Returns the entry's record.
    pub fn seal(&mut self, entry: AuditEntry, out: &mut Vec<AuditRecord>) -> Result<AuditRecord> {
        self.checkpoint_if_due(out)?;
        let record = self.push(entry, out)?;
        self.checkpoint_if_due(out)?;
        Ok(record)
    }

    fn checkpoint_if_due(&mut self, out: &mut Vec<AuditRecord>) -> Result<()> {
        if self.next_seq % (self.checkpoint_every + 1) == self.checkpoint_every {
            let entry = checkpoint_entry(self.next_seq, &self.head, &self.key)?;
            self.push(entry, out)?;
        }
        Ok(())
    }

    fn push(&mut self, entry: AuditEntry, out: &mut Vec<AuditRecord>) -> Result<AuditRecord> {
        let record = AuditRecord::seal(entry, self.next_seq, self.head.clone())?;
        self.next_seq += 1;
        self.head.clone_from(&record.hash);
        out.push(record.clone());
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::RecordKind;

    fn key() -> Arc<KeyPair> {
        Arc::new(KeyPair::generate().unwrap())
    }

    fn seal_n(chain: &mut Chain, n: usize) -> Vec<AuditRecord> {
        let mut out = Vec::new();
        for _ in 0..n {
            chain
                .seal(AuditEntry::new(RecordKind::QuotaCharged, "c"), &mut out)
                .unwrap();
        }
        out
    }

    #[test]
    fn records_link_from_genesis_with_checkpoints_at_fixed_positions() {
        let mut chain = Chain::resume(None, key(), 3).unwrap();
        let out = seal_n(&mut chain, 7);
        let kinds: Vec<_> = out
            .iter()
            .map(|r| r.kind == RecordKind::Checkpoint)
            .collect();
        // 3 records, checkpoint at #3, 3 records, checkpoint at #7, 1 record.
        assert_eq!(out.len(), 9);
        assert_eq!(
            kinds,
            [false, false, false, true, false, false, false, true, false]
        );
        assert_eq!(out[0].prev_hash, GENESIS_HASH);
        for (index, pair) in out.windows(2).enumerate() {
            assert_eq!(pair[1].seq, index as u64 + 1);
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        assert_eq!(chain.next_seq(), 9);
        assert_eq!(chain.head(), out[8].hash);
    }

    #[test]
    fn a_due_checkpoint_follows_in_the_same_batch() {
        let mut chain = Chain::resume(None, key(), 2).unwrap();
        let mut out = Vec::new();
        seal_n(&mut chain, 1);
        let record = chain
            .seal(AuditEntry::new(RecordKind::Start, "c"), &mut out)
            .unwrap();
        assert_eq!(record.seq, 1);
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].kind, RecordKind::Checkpoint);
    }

    #[test]
    fn resumes_after_the_last_record() {
        let key = key();
        let mut first = Chain::resume(None, key.clone(), 1000).unwrap();
        let out = seal_n(&mut first, 4);
        let mut second = Chain::resume(out.last(), key, 1000).unwrap();
        let more = seal_n(&mut second, 1);
        assert_eq!(more[0].seq, 4);
        assert_eq!(more[0].prev_hash, out[3].hash);
    }

    #[test]
    fn refuses_a_zero_interval() {
        assert!(matches!(
            Chain::resume(None, key(), 0),
            Err(AuditError::Invalid { .. })
        ));
    }
}
