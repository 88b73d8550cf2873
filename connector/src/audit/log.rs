//! [`AuditLog`]: durable appends with group commit.
//!
//! Appenders send their entry over a bounded channel to one writer thread
//! and wait on a oneshot. The writer takes every entry waiting (up to
//! [`MAX_BATCH`], lingering up to 300 µs for the appenders of the previous
//! batch to come back), seals them in order with [`Chain`], stores the whole
//! batch with one flush, and only then answers each appender. So a record is
//! durable before `append` returns, sequence numbers are assigned by one
//! thread (never repeated, never skipped), and many concurrent appenders
//! share each flush.
//!
//! A failed write stops the log: the chain head in memory may be ahead of
//! the store, so rather than guess, every later append fails with
//! [`AuditError::Halted`]. Reopening resumes from what is durable.

use std::sync::{Arc, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use policy::keys::KeyPair;
use tokio::sync::{mpsc, oneshot};

use super::chain::Chain;
use super::error::{AuditError, Result};
use super::head::HeadWriter;
use super::record::{AuditEntry, AuditRecord, RecordKind};
use super::store::AuditStore;

/// Most entries stored by one flush.
pub const MAX_BATCH: usize = 4096;

/// Entries that may wait for the writer before appenders wait to send.
const QUEUE: usize = 16 * 1024;

/// Longest the writer waits for more entries before a flush.
const LINGER: Duration = Duration::from_micros(300);

/// How often it looks for them meanwhile.
const LINGER_STEP: Duration = Duration::from_micros(50);

type Reply = oneshot::Sender<Result<AuditRecord>>;

struct Request {
    entry: AuditEntry,
    reply: Reply,
}

/// The connector's append-only, hash-chained audit log.
pub struct AuditLog {
    sender: mpsc::Sender<Request>,
    store: Arc<dyn AuditStore>,
    /// Why the writer stopped, once it has stopped on an error.
    halted: Arc<OnceLock<String>>,
    /// Resolves (with an error: the sender is dropped) when the writer
    /// thread has ended and released the store.
    finished: oneshot::Receiver<()>,
    /// The JWS of the latest signed checkpoint stored.
    latest_checkpoint: Arc<RwLock<Option<String>>>,
    /// Where the signed head is written, if it is.
    head_path: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("halted", &self.halted.get())
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the log on `store`, resuming the chain after its last record,
    /// and starts the writer thread. Records are signed off by a checkpoint
    /// every `checkpoint_every` records. A last record that does not match
    /// its hash is refused ([`AuditError::TamperedHead`]): the log is not
    /// continued on top of a record it cannot vouch for.
    pub fn open(
        store: Arc<dyn AuditStore>,
        signing_key: Arc<KeyPair>,
        checkpoint_every: u64,
    ) -> Result<Self> {
        Self::open_with_head(store, signing_key, checkpoint_every, None)
    }

    /// [`AuditLog::open`], replacing the signed head with `head` after
    /// every batch, before its appenders are answered. Checking the store
    /// against the head is the caller's (see `open_home`).
    pub fn open_with_head(
        store: Arc<dyn AuditStore>,
        signing_key: Arc<KeyPair>,
        checkpoint_every: u64,
        head: Option<HeadWriter>,
    ) -> Result<Self> {
        let last = store.last()?;
        if let Some(record) = &last
            && !record.hash_matches()?
        {
            return Err(AuditError::TamperedHead { seq: record.seq });
        }
        let latest = last
            .as_ref()
            .map(|record| latest_checkpoint(store.as_ref(), record.seq, checkpoint_every))
            .transpose()?
            .flatten();
        let latest_checkpoint = Arc::new(RwLock::new(latest));
        let chain = Chain::resume(last.as_ref(), signing_key, checkpoint_every)?;
        let head_path = head.as_ref().map(|head| head.path().to_owned());
        let (sender, receiver) = mpsc::channel(QUEUE);
        let (finished_tx, finished) = oneshot::channel();
        let halted = Arc::new(OnceLock::new());
        let writer = Writer {
            receiver,
            store: store.clone(),
            chain,
            halted: halted.clone(),
            head,
            latest_checkpoint: latest_checkpoint.clone(),
        };
        thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                writer.run();
                drop(finished_tx);
            })
            .map_err(|e| AuditError::store(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            sender,
            store,
            halted,
            finished,
            latest_checkpoint,
            head_path,
        })
    }

    /// The JWS of the latest signed checkpoint stored, if any: receipts
    /// carry it, so that a consumer holds the provider's signed statement of
    /// the log's length as well as of its own record.
    pub fn latest_checkpoint(&self) -> Option<String> {
        self.latest_checkpoint
            .read()
            .map_or(None, |latest| latest.clone())
    }

    /// Appends `entry`; returns its record once it is durable in the store.
    pub async fn append(&self, entry: AuditEntry) -> Result<AuditRecord> {
        let (reply, answer) = oneshot::channel();
        if self.sender.send(Request { entry, reply }).await.is_err() {
            return Err(self.stopped());
        }
        answer.await.unwrap_or_else(|_| Err(self.stopped()))
    }

    /// Where the signed head is written, if it is.
    pub fn head_path(&self) -> Option<&std::path::Path> {
        self.head_path.as_deref()
    }

    /// The store, for reading the log.
    pub fn store(&self) -> &Arc<dyn AuditStore> {
        &self.store
    }

    /// Stops accepting entries, lets the writer store those already sent,
    /// and waits until it has released the store (after this, and once the
    /// caller's own clones of the store are dropped, a sled database can be
    /// opened again).
    pub async fn close(self) {
        let Self {
            sender, finished, ..
        } = self;
        drop(sender);
        // The writer never sends: this resolves when it drops the sender.
        let _ = finished.await;
    }

    fn stopped(&self) -> AuditError {
        match self.halted.get() {
            Some(reason) => AuditError::Halted {
                reason: reason.clone(),
            },
            None => AuditError::Closed,
        }
    }
}

/// The writer thread's state.
struct Writer {
    receiver: mpsc::Receiver<Request>,
    store: Arc<dyn AuditStore>,
    chain: Chain,
    halted: Arc<OnceLock<String>>,
    head: Option<HeadWriter>,
    latest_checkpoint: Arc<RwLock<Option<String>>>,
}

/// The JWS of the latest checkpoint at or before `last`: checkpoints sit at
/// fixed positions (see [`Chain`]), but the setting may have changed since
/// they were written, so this looks back one interval.
fn latest_checkpoint(
    store: &dyn AuditStore,
    last: u64,
    checkpoint_every: u64,
) -> Result<Option<String>> {
    let from = last.saturating_sub(checkpoint_every.saturating_add(1));
    let window = usize::try_from(last - from + 1).unwrap_or(usize::MAX);
    Ok(store
        .range(from, window)?
        .into_iter()
        .rev()
        .find(|record| record.kind == RecordKind::Checkpoint)
        .and_then(|record| record.detail))
}

impl Writer {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut previous = 0;
        while let Some(first) = self.receiver.blocking_recv() {
            batch.push(first);
            self.gather(&mut batch, previous);
            previous = batch.len();
            if let Err((error, replies)) = self.commit(batch.drain(..)) {
                self.halt(&error, replies);
                return;
            }
        }
    }

    /// Takes the entries waiting. While fewer than `expected` (the size of
    /// the last batch: its appenders are likely to append again) are in,
    /// waits up to [`LINGER`] for them, so that they share this flush
    /// instead of the next: without it, batches alternate between the few
    /// appenders that were quick and all the others.
    fn gather(&mut self, batch: &mut Vec<Request>, expected: usize) {
        let deadline = Instant::now() + LINGER;
        loop {
            while batch.len() < MAX_BATCH {
                match self.receiver.try_recv() {
                    Ok(request) => batch.push(request),
                    Err(_) => break,
                }
            }
            if batch.len() >= expected.min(MAX_BATCH) || Instant::now() >= deadline {
                return;
            }
            thread::sleep(LINGER_STEP);
        }
    }

    /// Seals and stores a batch, then answers each appender. On error, gives
    /// back the replies not yet answered.
    fn commit(
        &mut self,
        batch: impl Iterator<Item = Request>,
    ) -> Result<(), (AuditError, Vec<Reply>)> {
        let (entries, replies): (Vec<_>, Vec<_>) =
            batch.map(|request| (request.entry, request.reply)).unzip();
        match self.store_batch(entries) {
            Ok(sealed) => {
                for (reply, record) in replies.into_iter().zip(sealed) {
                    // An appender that gave up waiting still has its record stored.
                    let _ = reply.send(Ok(record));
                }
                Ok(())
            }
            Err(error) => Err((error, replies)),
        }
    }

    /// Seals `entries` in order (with any checkpoint falling due) and stores
    /// them with one flush. Returns the entries' records.
    fn store_batch(&mut self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>> {
        let mut records = Vec::with_capacity(entries.len() + 1);
        let sealed = entries
            .into_iter()
            .map(|entry| self.chain.seal(entry, &mut records))
            .collect::<Result<Vec<_>>>()?;
        self.store.append_batch(&records)?;
        if let Some(checkpoint) = records
            .iter()
            .rev()
            .find(|record| record.kind == RecordKind::Checkpoint)
            && let Ok(mut latest) = self.latest_checkpoint.write()
        {
            latest.clone_from(&checkpoint.detail);
        }
        if let (Some(head), Some(last)) = (&self.head, records.last()) {
            head.write(last)?;
        }
        Ok(sealed)
    }

    /// Records why the log stopped and fails every waiting appender.
    fn halt(&mut self, error: &AuditError, replies: Vec<Reply>) {
        let reason = error.to_string();
        tracing::error!(%reason, "the audit log stopped after a failed write");
        let _ = self.halted.set(reason.clone());
        self.receiver.close();
        let fail = |reply: Reply| {
            let _ = reply.send(Err(AuditError::Halted {
                reason: reason.clone(),
            }));
        };
        replies.into_iter().for_each(fail);
        while let Ok(request) = self.receiver.try_recv() {
            fail(request.reply);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::RecordKind;
    use crate::audit::store::MemoryAuditStore;
    use crate::audit::{SledAuditStore, verify};

    fn key() -> Arc<KeyPair> {
        Arc::new(KeyPair::generate().unwrap())
    }

    fn entry(n: u64) -> AuditEntry {
        AuditEntry::new(RecordKind::QueryAnswered, "platform-north")
            .with_rows(n)
            .with_decision("answered")
    }

    #[tokio::test]
    async fn appends_chain_and_verify() {
        let key = key();
        let store: Arc<dyn AuditStore> = Arc::new(MemoryAuditStore::new());
        let log = AuditLog::open(store.clone(), key.clone(), 4).unwrap();
        for n in 0..10 {
            let record = log.append(entry(n)).await.unwrap();
            assert_eq!(record.rows, Some(n));
            assert_eq!(store.get(record.seq).unwrap().unwrap(), record);
        }
        log.close().await;
        // 10 records and checkpoints at #4, #9.
        let report = verify(store.as_ref(), &key.public_key()).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.records, report.checkpoints), (12, 2));
    }

    #[tokio::test]
    async fn resumes_after_reopening_a_sled_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit");
        let key = key();
        for (round, first_seq) in [0, 4, 9].into_iter().enumerate() {
            let store: Arc<dyn AuditStore> = Arc::new(SledAuditStore::open(&path).unwrap());
            let log = AuditLog::open(store.clone(), key.clone(), 5).unwrap();
            // Checkpoints fall at #5 and #11.
            let first = log.append(entry(round as u64)).await.unwrap();
            assert_eq!(first.seq, first_seq);
            for n in 0..3 {
                log.append(entry(n)).await.unwrap();
            }
            drop(store);
            log.close().await;
        }
        let store = SledAuditStore::open(&path).unwrap();
        let report = verify(&store, &key.public_key()).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.records, report.checkpoints), (14, 2));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_get_contiguous_sequence_numbers() {
        let key = key();
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn AuditStore> =
            Arc::new(SledAuditStore::open(&dir.path().join("audit")).unwrap());
        let log = Arc::new(AuditLog::open(store.clone(), key.clone(), 100).unwrap());
        let tasks: Vec<_> = (0..64)
            .map(|task| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut seqs = Vec::new();
                    for n in 0..50 {
                        let record = log.append(entry(task * 1000 + n)).await.unwrap();
                        seqs.push(record.seq);
                    }
                    seqs
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for task in tasks {
            let mine = task.await.unwrap();
            assert!(mine.windows(2).all(|w| w[0] < w[1]), "per-task order");
            seqs.extend(mine);
        }
        seqs.sort_unstable();
        // A checkpoint after every 100 records: at #100, #201, ..., #3231.
        let checkpoints: Vec<u64> = (0..32).map(|k| k * 101 + 100).collect();
        let expected: Vec<u64> = (0..3232).filter(|s| !checkpoints.contains(s)).collect();
        assert_eq!(seqs, expected);
        let report = verify(store.as_ref(), &key.public_key()).unwrap();
        assert!(report.is_intact(), "{report}");
        assert_eq!((report.records, report.checkpoints), (3232, 32));
    }

    /// A store whose writes fail.
    struct FailingStore;

    impl AuditStore for FailingStore {
        fn append_batch(&self, _: &[AuditRecord]) -> Result<()> {
            Err(AuditError::store("disk full"))
        }
        fn last(&self) -> Result<Option<AuditRecord>> {
            Ok(None)
        }
        fn get(&self, _: u64) -> Result<Option<AuditRecord>> {
            Ok(None)
        }
        fn range(&self, _: u64, _: usize) -> Result<Vec<AuditRecord>> {
            Ok(Vec::new())
        }
        fn remove_from(&self, _: u64) -> Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_failed_write_halts_the_log() {
        let log = AuditLog::open(Arc::new(FailingStore), key(), 10).unwrap();
        let err = log.append(entry(0)).await.unwrap_err();
        assert!(matches!(err, AuditError::Halted { ref reason } if reason.contains("disk full")));
        let err = log.append(entry(1)).await.unwrap_err();
        assert!(matches!(err, AuditError::Halted { .. }), "{err}");
    }

    #[tokio::test]
    async fn refuses_to_resume_on_a_tampered_head() {
        let key = key();
        let store: Arc<dyn AuditStore> = Arc::new(MemoryAuditStore::new());
        let log = AuditLog::open(store.clone(), key.clone(), 10).unwrap();
        let mut record = log.append(entry(0)).await.unwrap();
        log.close().await;
        record.rows = Some(99);
        store.append_batch(&[record]).unwrap();
        let err = AuditLog::open(store, key, 10).unwrap_err();
        assert!(matches!(err, AuditError::TamperedHead { seq: 0 }), "{err}");
    }
}
