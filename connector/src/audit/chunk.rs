//! Checking one chunk of a stored chain on its own: its sequence numbers,
//! every record's hash, the links inside it and its checkpoints. The link of
//! its first record to the chunk before is left to the caller, so chunks can
//! be checked in parallel and joined in order (see `verify`).

use policy::keys::PublicKey;

use super::checkpoint::check_checkpoint;
use super::error::{AuditError, Result};
use super::record::{AuditRecord, RecordKind};
use super::recovery::check_recovered;
use super::report::Broken;
use super::report::Recovery;
use super::store::AuditStore;

/// What checking records `start..start + size` found.
#[derive(Debug)]
pub(super) struct ChunkSummary {
    /// The first sequence number of the chunk.
    pub(super) start: u64,
    /// Records found intact from `start` on.
    pub(super) count: u64,
    /// Checkpoints among them.
    pub(super) checkpoints: u64,
    /// The `prev_hash` of the first record, if its hash matched.
    pub(super) first_prev_hash: Option<String>,
    /// The hash of the last intact record.
    pub(super) last_hash: Option<String>,
    /// The first record that fails, inside the chunk.
    pub(super) broken: Option<Broken>,
    /// The signed recoveries among the intact records.
    pub(super) recoveries: Vec<Recovery>,
}

/// Why record `seq` does not link to the record before it.
pub(super) fn link_reason(seq: u64) -> String {
    match seq {
        0 => "its `prev_hash` is not the genesis hash".into(),
        _ => format!("its `prev_hash` is not the hash of record #{}", seq - 1),
    }
}

/// Checks the (up to) `size` records stored from `start` on. `Err` only
/// when the store cannot be read; a damaged record is a [`Broken`].
pub(super) fn check_chunk(
    store: &dyn AuditStore,
    signer: &PublicKey,
    start: u64,
    size: usize,
) -> Result<ChunkSummary> {
    let mut check = ChunkCheck::new(signer, start);
    let records = match store.range(start, size) {
        Ok(records) => records,
        Err(AuditError::Corrupt { seq, reason }) if seq >= start => {
            let broken = check.one_by_one(store, seq, reason)?;
            return Ok(check.summary(Some(broken)));
        }
        Err(error) => return Err(error),
    };
    let broken = records.iter().find_map(|record| check.check(record).err());
    Ok(check.summary(broken))
}

/// The running state of a chunk check.
struct ChunkCheck<'a> {
    signer: &'a PublicKey,
    start: u64,
    expected: u64,
    checkpoints: u64,
    first_prev_hash: Option<String>,
    last_hash: Option<String>,
    recoveries: Vec<Recovery>,
}

impl<'a> ChunkCheck<'a> {
    fn new(signer: &'a PublicKey, start: u64) -> Self {
        Self {
            signer,
            start,
            expected: start,
            checkpoints: 0,
            first_prev_hash: None,
            last_hash: None,
            recoveries: Vec::new(),
        }
    }

    /// Checks the next record, in the order: sequence number, hash, link,
    /// checkpoint; and moves past it.
    fn check(&mut self, record: &AuditRecord) -> Result<(), Broken> {
        let seq = self.expected;
        let broken = |reason: String| Broken { seq, reason };
        if record.seq != seq {
            return Err(broken(if record.seq > seq {
                format!("it is missing (the next record stored is #{})", record.seq)
            } else {
                format!("record #{} is stored in its place", record.seq)
            }));
        }
        match record.hash_matches() {
            Ok(true) => {}
            Ok(false) => return Err(broken("its content does not match its hash".into())),
            Err(error) => return Err(broken(format!("its hash cannot be computed: {error}"))),
        }
        match &self.last_hash {
            None => self.first_prev_hash = Some(record.prev_hash.clone()),
            Some(last) if *last != record.prev_hash => return Err(broken(link_reason(seq))),
            Some(_) => {}
        }
        if record.kind == RecordKind::Checkpoint {
            check_checkpoint(record, self.signer).map_err(broken)?;
            self.checkpoints += 1;
        }
        if record.kind == RecordKind::Recovered {
            let recovery = check_recovered(record, self.signer).map_err(broken)?;
            self.recoveries.push(recovery);
        }
        self.expected += 1;
        match &mut self.last_hash {
            Some(last) => last.clone_from(&record.hash),
            None => self.last_hash = Some(record.hash.clone()),
        }
        Ok(())
    }

    /// After the chunk failed to read because record `corrupt` is damaged:
    /// checks the records before it one at a time, so that an earlier break
    /// is still the one reported.
    fn one_by_one(
        &mut self,
        store: &dyn AuditStore,
        corrupt: u64,
        reason: String,
    ) -> Result<Broken> {
        for seq in self.expected..corrupt {
            let Some(record) = store.get(seq)? else {
                return Ok(Broken {
                    seq,
                    reason: format!("it is missing (record #{corrupt} is stored after it)"),
                });
            };
            if let Err(broken) = self.check(&record) {
                return Ok(broken);
            }
        }
        Ok(Broken {
            seq: corrupt,
            reason: format!("it cannot be read: {reason}"),
        })
    }

    fn summary(self, broken: Option<Broken>) -> ChunkSummary {
        ChunkSummary {
            start: self.start,
            count: self.expected - self.start,
            checkpoints: self.checkpoints,
            first_prev_hash: self.first_prev_hash,
            last_hash: self.last_hash,
            broken,
            recoveries: self.recoveries,
        }
    }
}
