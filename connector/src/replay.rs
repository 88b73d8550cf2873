//! Durable replay protection: [`SledReplayGuard`] keeps the ids (`jti`) of
//! used request tokens in a sled tree until they expire, so a captured
//! token cannot be replayed after a restart, a crash or `kill -9` either.
//!
//! The tree (`replay`, in `HOME/store/`) holds two kinds of keys:
//!
//! ```text
//! j/<jti>                  -> expiry (i64, big-endian): the id, until then
//! e/<expiry, BE><jti>      -> (empty): the same id, in expiry order
//! ```
//!
//! [`ReplayGuard::check_and_remember`] refuses an id whose `j/` entry has
//! not expired, else records it with one compare-and-swap (so of two
//! concurrent uses exactly one is admitted), then flushes: the id is on
//! disk before the request it admits is served. Flushes are grouped
//! ([`GroupFlush`]): a call whose write is done waits for a flush that
//! started after it, and while one flush runs, the calls that come in
//! meanwhile wait for the next one, which then covers all of them; so under
//! load each flush serves every call that arrived during the previous one.
//! Each call first removes the entries that expired (a range read of the
//! `e/` keys, usually empty), and opening removes every expired entry, so
//! the tree holds only ids still in force: at most the tokens accepted in
//! one token lifetime plus the skew.

use std::path::Path;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use policy::replay::ReplayGuard;

/// Name of the tree in the connector's store.
pub const REPLAY_TREE: &str = "replay";

const ID: &[u8] = b"j/";
const EXPIRY: &[u8] = b"e/";

/// A [`ReplayGuard`] on a sled tree; see the module documentation.
pub struct SledReplayGuard {
    tree: sled::Tree,
    flush: GroupFlush,
    /// Where the store lives, for error messages.
    path: String,
}

impl SledReplayGuard {
    /// The guard on `tree` of the store at `path`; removes the entries that
    /// have expired at `now`.
    pub fn open(tree: sled::Tree, path: &Path, now: i64) -> policy::Result<Self> {
        let guard = Self {
            tree,
            flush: GroupFlush::default(),
            path: path.display().to_string(),
        };
        guard.prune_all(now)?;
        Ok(guard)
    }

    /// Token ids remembered, expired ones not yet pruned included.
    pub fn len(&self) -> usize {
        self.tree.scan_prefix(ID).count()
    }

    /// Whether no token id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn error(&self, e: &sled::Error) -> policy::Error {
        policy::Error::Io {
            path: format!("{} (tree `{REPLAY_TREE}`)", self.path),
            source: std::io::Error::other(e.to_string()),
        }
    }

    /// Removes the entries that expired before `now`, in expiry order.
    fn prune_expired(&self, now: i64) -> policy::Result<()> {
        let mut end = EXPIRY.to_vec();
        end.extend_from_slice(&sortable(now));
        for item in self.tree.range(EXPIRY.to_vec()..end) {
            let (key, _) = item.map_err(|e| self.error(&e))?;
            let Some((expiry, jti)) = key
                .get(EXPIRY.len()..)
                .and_then(|rest| rest.split_first_chunk::<8>())
            else {
                continue;
            };
            // Only if the id is still remembered until this expiry: an id
            // used again after it expired has a later one.
            let old = from_sortable(*expiry).to_be_bytes();
            let _ = self
                .tree
                .compare_and_swap(id_key(jti), Some(&old[..]), None::<&[u8]>)
                .map_err(|e| self.error(&e))?;
            self.tree.remove(&key).map_err(|e| self.error(&e))?;
        }
        Ok(())
    }

    /// Removes every expired entry, including an id whose `e/` key a crash
    /// kept from being written.
    fn prune_all(&self, now: i64) -> policy::Result<()> {
        self.prune_expired(now)?;
        for item in self.tree.scan_prefix(ID) {
            let (key, value) = item.map_err(|e| self.error(&e))?;
            if decode_expiry(&value).is_none_or(|expiry| expiry < now) {
                self.tree.remove(&key).map_err(|e| self.error(&e))?;
            }
        }
        self.tree.flush().map_err(|e| self.error(&e))?;
        Ok(())
    }
}

impl ReplayGuard for SledReplayGuard {
    fn check_and_remember(&self, jti: &str, expires_at: i64, now: i64) -> policy::Result<()> {
        self.prune_expired(now)?;
        let id = id_key(jti.as_bytes());
        let new = expires_at.to_be_bytes();
        loop {
            let current = self.tree.get(&id).map_err(|e| self.error(&e))?;
            if current
                .as_deref()
                .and_then(decode_expiry)
                .is_some_and(|expiry| expiry >= now)
            {
                return Err(policy::Error::Replayed { jti: jti.into() });
            }
            let swapped = self
                .tree
                .compare_and_swap(&id, current, Some(&new[..]))
                .map_err(|e| self.error(&e))?;
            if swapped.is_ok() {
                break;
            }
            // Another use of the same id came in between: look again.
        }
        let mut expiry = EXPIRY.to_vec();
        expiry.extend_from_slice(&sortable(expires_at));
        expiry.extend_from_slice(jti.as_bytes());
        self.tree
            .insert(expiry, &[][..])
            .map_err(|e| self.error(&e))?;
        self.flush
            .after_writes(|| self.tree.flush().map(|_| ()))
            .map_err(|e| self.error(&e))
    }
}

/// Group commit of flushes: see the module documentation.
#[derive(Default)]
struct GroupFlush {
    state: Mutex<FlushState>,
    flushed: Condvar,
}

#[derive(Default)]
struct FlushState {
    /// Tickets handed out: one per call whose writes are done.
    tickets: u64,
    /// Every ticket up to this one is covered by a finished flush.
    durable: u64,
    /// Whether a flush is running.
    running: bool,
}

impl GroupFlush {
    /// Returns once a `flush` that started after the caller's writes has
    /// succeeded; the caller may run it itself, or share another's.
    fn after_writes(&self, flush: impl Fn() -> sled::Result<()>) -> sled::Result<()> {
        let mut state = self.lock();
        state.tickets += 1;
        let mine = state.tickets;
        loop {
            if state.durable >= mine {
                return Ok(());
            }
            if state.running {
                state = self
                    .flushed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            state.running = true;
            let covers = state.tickets;
            drop(state);
            let outcome = flush();
            state = self.lock();
            state.running = false;
            if outcome.is_ok() {
                state.durable = state.durable.max(covers);
            }
            self.flushed.notify_all();
            // On failure, the waiting calls try a flush of their own.
            outcome?;
        }
    }

    fn lock(&self) -> MutexGuard<'_, FlushState> {
        // Every change leaves the counters consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn id_key(jti: &[u8]) -> Vec<u8> {
    let mut key = ID.to_vec();
    key.extend_from_slice(jti);
    key
}

fn decode_expiry(value: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(value.try_into().ok()?))
}

/// An expiry as bytes that sort like the numbers (sign bit flipped).
fn sortable(at: i64) -> [u8; 8] {
    (at.cast_unsigned() ^ (1 << 63)).to_be_bytes()
}

fn from_sortable(bytes: [u8; 8]) -> i64 {
    (u64::from_be_bytes(bytes) ^ (1 << 63)).cast_signed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const NOW: i64 = 1_800_000_000;

    fn open(dir: &Path, now: i64) -> (sled::Db, SledReplayGuard) {
        let db = sled::open(dir).unwrap();
        let guard = SledReplayGuard::open(db.open_tree(REPLAY_TREE).unwrap(), dir, now).unwrap();
        (db, guard)
    }

    #[test]
    fn a_used_id_is_refused_after_reopening_until_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_db, guard) = open(dir.path(), NOW);
            guard.check_and_remember("j1", NOW + 60, NOW).unwrap();
            guard.check_and_remember("j2", NOW + 5, NOW).unwrap();
        }
        let (_db, guard) = open(dir.path(), NOW + 1);
        assert!(matches!(
            guard.check_and_remember("j1", NOW + 90, NOW + 1),
            Err(policy::Error::Replayed { .. })
        ));
        assert!(matches!(
            guard.check_and_remember("j2", NOW + 90, NOW + 5),
            Err(policy::Error::Replayed { .. })
        ));
        // Once expired, an id is forgotten (and may be used again).
        guard.check_and_remember("j2", NOW + 90, NOW + 6).unwrap();
        assert!(matches!(
            guard.check_and_remember("j2", NOW + 90, NOW + 7),
            Err(policy::Error::Replayed { .. })
        ));
    }

    #[test]
    fn expired_ids_are_pruned_as_it_goes_and_on_opening() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (_db, guard) = open(dir.path(), NOW);
            for i in 0..500 {
                guard
                    .check_and_remember(&format!("j{i}"), NOW + i, NOW + i)
                    .unwrap();
            }
            // Everything that expired before the last call is gone.
            assert_eq!(guard.len(), 1, "{}", guard.len());
            assert_eq!(guard.tree.scan_prefix(EXPIRY).count(), 1);
            // An id whose expiry entry a crash lost is pruned on opening.
            guard
                .tree
                .insert(id_key(b"lost"), &NOW.to_be_bytes())
                .unwrap();
            guard.tree.flush().unwrap();
            assert_eq!(guard.len(), 2);
        }
        let (_db, guard) = open(dir.path(), NOW + 10_000);
        assert!(guard.is_empty(), "{}", guard.len());
        assert_eq!(guard.tree.len(), 0);
    }

    #[test]
    fn an_id_used_again_after_expiry_is_not_pruned_by_its_old_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, guard) = open(dir.path(), NOW);
        guard.check_and_remember("j", NOW + 1, NOW).unwrap();
        guard.check_and_remember("j", NOW + 100, NOW + 2).unwrap();
        // The pruning at NOW + 3 removes the first expiry entry only.
        guard
            .check_and_remember("other", NOW + 100, NOW + 3)
            .unwrap();
        assert!(matches!(
            guard.check_and_remember("j", NOW + 100, NOW + 4),
            Err(policy::Error::Replayed { .. })
        ));
    }

    #[test]
    fn exactly_one_of_concurrent_uses_is_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let (_db, guard) = open(dir.path(), NOW);
        let guard = Arc::new(guard);
        for round in 0..10 {
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (guard, barrier) = (Arc::clone(&guard), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        barrier.wait();
                        guard.check_and_remember(&format!("jti-{round}"), NOW + 60, NOW)
                    })
                })
                .collect();
            let admitted = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(Result::is_ok)
                .count();
            assert_eq!(admitted, 1);
        }
    }

    #[test]
    fn concurrent_calls_share_flushes() {
        let group = Arc::new(GroupFlush::default());
        let flushes = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (group, flushes) = (Arc::clone(&group), Arc::clone(&flushes));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        group
                            .after_writes(|| {
                                flushes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                std::thread::sleep(std::time::Duration::from_millis(2));
                                Ok(())
                            })
                            .unwrap();
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.join().unwrap();
        }
        let flushes = flushes.load(std::sync::atomic::Ordering::SeqCst);
        assert!(flushes < 16 * 20, "{flushes} flushes for 320 calls");
        let state = group.lock();
        assert_eq!((state.tickets, state.durable), (320, 320));
    }

    #[test]
    fn a_failed_flush_fails_its_call_and_the_next_one_flushes_again() {
        let group = GroupFlush::default();
        let failing = || Err(sled::Error::Unsupported("disk gone".into()));
        assert!(group.after_writes(failing).is_err());
        assert_eq!(group.lock().durable, 0);
        group.after_writes(|| Ok(())).unwrap();
        assert_eq!(group.lock().durable, 2);
    }

    #[test]
    fn expiries_sort_like_numbers() {
        for (a, b) in [(-5_i64, 3), (0, 1), (NOW, NOW + 1), (i64::MIN, i64::MAX)] {
            assert!(sortable(a) < sortable(b));
            assert_eq!(from_sortable(sortable(a)), a);
        }
    }
}
