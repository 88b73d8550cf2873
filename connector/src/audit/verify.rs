//! Verification of a stored chain: every record's hash, the `prev_hash`
//! links, contiguous sequence numbers from #0, and every checkpoint's
//! signature and content. Records are read in chunks, checked in parallel
//! and joined in order, so memory stays bounded whatever the length of the
//! log.
//!
//! What a chain cannot prove about itself: records removed from its end.
//! A log cut after any record verifies as a shorter intact chain; the
//! report's `records` and `head` are what to compare with a receipt or an
//! exported checkpoint (whose signed `count` states the length it saw).
//! Records after the last checkpoint are only hash-chained, not yet signed.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use policy::keys::PublicKey;

use super::chunk::{ChunkSummary, check_chunk, link_reason};
use super::error::Result;
use super::record::GENESIS_HASH;
use super::report::{Broken, Recovery, VerifyReport};
use super::store::AuditStore;

/// Records read from the store at a time.
pub const VERIFY_CHUNK: usize = 4096;

/// Verifies the chain in `store`; checkpoints must be signed by `signer`.
/// `Err` only when the store cannot be read at all; a damaged record is a
/// [`Broken`] in the report.
///
/// Chunks of [`VERIFY_CHUNK`] records are checked on as many threads as the
/// machine has cores and joined in order; memory holds one chunk per thread.
pub fn verify(store: &dyn AuditStore, signer: &PublicKey) -> Result<VerifyReport> {
    let workers = thread::available_parallelism().map_or(1, NonZeroUsize::get);
    verify_in_chunks(store, signer, VERIFY_CHUNK, workers.min(MAX_WORKERS))
}

/// Most threads a verification uses.
const MAX_WORKERS: usize = 8;

/// A chunk's index and what checking it gave.
type Checked = (u64, Result<ChunkSummary>);

/// [`verify`] with chunks of `size` records checked by `workers` threads.
fn verify_in_chunks(
    store: &dyn AuditStore,
    signer: &PublicKey,
    size: usize,
    workers: usize,
) -> Result<VerifyReport> {
    let next = AtomicU64::new(0);
    // The lowest chunk known to end the chain; none above it is checked.
    let last = AtomicU64::new(u64::MAX);
    let (sender, receiver) = mpsc::channel::<Checked>();
    thread::scope(|scope| {
        for _ in 0..workers.max(1) {
            let (sender, next, last) = (sender.clone(), &next, &last);
            scope.spawn(move || check_chunks(store, signer, size, next, last, &sender));
        }
        drop(sender);
        let outcome = Join::new(size).run(receiver);
        last.store(0, Ordering::Relaxed);
        outcome
    })
}

/// A worker: checks chunks in increasing order until one ends the chain.
fn check_chunks(
    store: &dyn AuditStore,
    signer: &PublicKey,
    size: usize,
    next: &AtomicU64,
    last: &AtomicU64,
    sender: &mpsc::Sender<Checked>,
) {
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index > last.load(Ordering::Relaxed) {
            return;
        }
        let checked = check_chunk(store, signer, index * size as u64, size);
        let ends = checked.as_ref().map_or(true, |chunk| {
            chunk.broken.is_some() || chunk.count < size as u64
        });
        if ends {
            last.fetch_min(index, Ordering::Relaxed);
        }
        if sender.send((index, checked)).is_err() {
            return;
        }
    }
}

/// Joins chunk summaries in order into the report.
struct Join {
    size: u64,
    records: u64,
    checkpoints: u64,
    prev_hash: String,
    recoveries: Vec<Recovery>,
}

impl Join {
    fn new(size: usize) -> Self {
        Self {
            size: size as u64,
            records: 0,
            checkpoints: 0,
            prev_hash: GENESIS_HASH.to_owned(),
            recoveries: Vec::new(),
        }
    }

    /// Takes summaries as they come, joins them in chunk order, and returns
    /// at the first chunk that ends the chain.
    fn run(mut self, receiver: mpsc::Receiver<Checked>) -> Result<VerifyReport> {
        let mut waiting = BTreeMap::new();
        let mut index = 0;
        for (at, checked) in receiver {
            waiting.insert(at, checked);
            while let Some(checked) = waiting.remove(&index) {
                if let Some(report) = self.join(checked?) {
                    return Ok(report);
                }
                index += 1;
            }
        }
        // Unreachable: the chunk that stopped the workers was sent.
        Ok(self.report(None))
    }

    /// Adds the next chunk; returns the report if the chain ends with it.
    fn join(&mut self, mut chunk: ChunkSummary) -> Option<VerifyReport> {
        if let Some(first) = &chunk.first_prev_hash
            && *first != self.prev_hash
        {
            let reason = link_reason(chunk.start);
            let seq = chunk.start;
            return Some(self.report(Some(Broken { seq, reason })));
        }
        self.records += chunk.count;
        self.checkpoints += chunk.checkpoints;
        self.recoveries.append(&mut chunk.recoveries);
        if let Some(last) = chunk.last_hash {
            self.prev_hash = last;
        }
        (chunk.broken.is_some() || chunk.count < self.size).then(|| self.report(chunk.broken))
    }

    fn report(&self, first_broken: Option<Broken>) -> VerifyReport {
        VerifyReport {
            records: self.records,
            checkpoints: self.checkpoints,
            head: (self.records > 0).then(|| self.prev_hash.clone()),
            first_broken,
            recoveries: self.recoveries.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::Chain;
    use crate::audit::checkpoint::CheckpointClaims;
    use crate::audit::record::{AuditEntry, AuditRecord, RecordKind};
    use crate::audit::store::MemoryAuditStore;
    use policy::keys::KeyPair;
    use std::sync::Arc;

    /// `entries` records sealed with a checkpoint every 4, and the key.
    fn sealed(entries: usize) -> (Vec<AuditRecord>, Arc<KeyPair>) {
        let key = Arc::new(KeyPair::generate().unwrap());
        let mut chain = Chain::resume(None, key.clone(), 4).unwrap();
        let mut records = Vec::new();
        for n in 0..entries {
            let entry = AuditEntry::new(RecordKind::QueryRefused, "c").with_rows(n as u64);
            chain.seal(entry, &mut records).unwrap();
        }
        (records, key)
    }

    /// Verifies `records` with several chunk sizes and thread counts, which
    /// must all agree, and returns the report.
    fn verify_records(records: &[AuditRecord], key: &KeyPair) -> VerifyReport {
        let store = MemoryAuditStore::new();
        store.append_batch(records).unwrap();
        let report = verify(&store, &key.public_key()).unwrap();
        for size in [1, 2, 3, 5, 64] {
            for workers in [1, 2, 3] {
                let other = verify_in_chunks(&store, &key.public_key(), size, workers).unwrap();
                assert_eq!(other, report, "chunks of {size}, {workers} threads");
            }
        }
        report
    }

    fn broken_at(report: &VerifyReport) -> (u64, &str) {
        let broken = report.first_broken.as_ref().expect("a broken chain");
        (broken.seq, broken.reason.as_str())
    }

    /// Re-seals every record from `from` on, as an attacker without the key
    /// would after editing record `from`.
    fn rehash_from(records: &mut [AuditRecord], from: usize) {
        for index in from..records.len() {
            if index > 0 {
                records[index].prev_hash = records[index - 1].hash.clone();
            }
            records[index].hash = records[index].compute_hash().unwrap();
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (records, key) = sealed(10);
        let report = verify_records(&records, &key);
        assert_eq!(
            report.to_string(),
            "chain intact: 12 records, 2 checkpoints"
        );
        assert_eq!(report.head.as_deref(), Some(records[11].hash.as_str()));
        let empty = verify_records(&[], &key);
        assert_eq!(empty.to_string(), "chain intact: 0 records, 0 checkpoints");
        assert_eq!(empty.head, None);
    }

    #[test]
    fn verifies_across_chunks() {
        let (records, key) = sealed(VERIFY_CHUNK * 2 + 10);
        let store = MemoryAuditStore::new();
        store.append_batch(&records).unwrap();
        let report = verify(&store, &key.public_key()).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!(report.records, records.len() as u64);
    }

    #[test]
    fn an_edited_field_breaks_at_that_record() {
        let (mut records, key) = sealed(10);
        records[6].sql = Some("SELECT 1".into());
        let report = verify_records(&records, &key);
        assert_eq!(
            broken_at(&report),
            (6, "its content does not match its hash")
        );
        assert_eq!(report.records, 6);
        assert_eq!(
            report.to_string(),
            "broken at record #6: its content does not match its hash"
        );
    }

    #[test]
    fn an_edited_and_rehashed_record_breaks_the_link_after_it() {
        let (mut records, key) = sealed(10);
        records[1].rows = Some(1000);
        records[1].hash = records[1].compute_hash().unwrap();
        let report = verify_records(&records, &key);
        let (seq, reason) = broken_at(&report);
        assert_eq!(seq, 2);
        assert!(reason.contains("not the hash of record #1"), "{reason}");
    }

    #[test]
    fn a_rehashed_chain_is_caught_at_the_next_checkpoint() {
        let (mut records, key) = sealed(10);
        records[5].decision = Some("answered".into());
        rehash_from(&mut records, 5);
        let report = verify_records(&records, &key);
        let (seq, reason) = broken_at(&report);
        assert_eq!(seq, 9, "the checkpoint after the edit");
        assert!(reason.contains("not this position"), "{reason}");
    }

    #[test]
    fn a_deleted_record_is_reported_missing() {
        let (mut records, key) = sealed(10);
        records.remove(3);
        let report = verify_records(&records, &key);
        let (seq, reason) = broken_at(&report);
        assert_eq!(seq, 3);
        assert!(reason.contains("missing"), "{reason}");
    }

    #[test]
    fn reordered_records_break_the_chain() {
        let (mut records, key) = sealed(10);
        // Swap the contents of #6 and #7 and renumber them to fit.
        records.swap(6, 7);
        records[6].seq = 6;
        records[7].seq = 7;
        let report = verify_records(&records, &key);
        assert_eq!(broken_at(&report).0, 6);
        // Even with the hashes and links redone, the checkpoint catches it.
        rehash_from(&mut records, 6);
        let report = verify_records(&records, &key);
        assert_eq!(broken_at(&report).0, 9);
    }

    #[test]
    fn a_forged_checkpoint_signature_is_refused() {
        let (mut records, key) = sealed(10);
        let forger = KeyPair::generate().unwrap();
        let claims = CheckpointClaims {
            seq: 4,
            prev_hash: records[3].hash.clone(),
            count: 4,
        };
        let jws = policy::jws::sign_jws(crate::audit::CHECKPOINT_TYP, false, &claims, &forger);
        records[4].detail = Some(jws.unwrap());
        rehash_from(&mut records, 4);
        let report = verify_records(&records, &key);
        let (seq, reason) = broken_at(&report);
        assert_eq!(seq, 4);
        assert!(reason.contains("signature"), "{reason}");
    }

    #[test]
    fn a_chain_must_start_at_genesis() {
        let (records, key) = sealed(10);
        let report = verify_records(&records[1..], &key);
        assert_eq!(broken_at(&report).0, 0);
        let mut records = records;
        records[0].prev_hash = records[11].hash.clone();
        rehash_from(&mut records, 0);
        let report = verify_records(&records, &key);
        assert_eq!(
            broken_at(&report),
            (0, "its `prev_hash` is not the genesis hash")
        );
    }

    /// A store that cannot be read at all.
    struct UnreadableStore;

    impl AuditStore for UnreadableStore {
        fn append_batch(&self, _: &[AuditRecord]) -> Result<()> {
            Ok(())
        }
        fn last(&self) -> Result<Option<AuditRecord>> {
            Ok(None)
        }
        fn get(&self, _: u64) -> Result<Option<AuditRecord>> {
            Ok(None)
        }
        fn range(&self, _: u64, _: usize) -> Result<Vec<AuditRecord>> {
            Err(crate::audit::AuditError::store("i/o error"))
        }
        fn remove_from(&self, _: u64) -> Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_unreadable_store_is_an_error_not_a_report() {
        let key = KeyPair::generate().unwrap();
        let err = verify(&UnreadableStore, &key.public_key()).unwrap_err();
        assert!(err.to_string().contains("i/o error"), "{err}");
    }

    /// Decided: cutting the tail is not detectable from the chain alone. A
    /// log cut after a checkpoint (or anywhere) verifies as a shorter chain;
    /// `records` and `head` are what to compare with an anchor.
    #[test]
    fn a_truncated_tail_verifies_as_a_shorter_chain() {
        let (records, key) = sealed(10);
        let full = verify_records(&records, &key);
        let cut = verify_records(&records[..10], &key);
        assert!(cut.is_intact(), "{cut}");
        assert_eq!((cut.records, cut.checkpoints), (10, 2));
        assert_ne!(cut.head, full.head);
    }
}
