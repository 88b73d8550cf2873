//! Replay protection: request-token ids (`jti`) remembered until the token
//! expires, so each token is accepted once.
//!
//! [`ReplayGuard`] is the seam; [`InMemoryReplayGuard`] keeps the ids in a
//! map behind one mutex, so checking and recording are a single atomic step
//! and two concurrent uses of one id admit exactly one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::error::{Error, Result};

/// Remembers token ids until they expire, to refuse a second use.
pub trait ReplayGuard: Send + Sync {
    /// Records `jti` as used until `expires_at`; if it is already recorded
    /// and not yet expired at `now`, returns [`Error::Replayed`]. Checking
    /// and recording are one atomic step.
    fn check_and_remember(&self, jti: &str, expires_at: i64, now: i64) -> Result<()>;
}

/// A [`ReplayGuard`] in memory; expired entries are pruned as it grows.
#[derive(Debug, Default)]
pub struct InMemoryReplayGuard {
    state: Mutex<ReplayState>,
}

#[derive(Debug, Default)]
struct ReplayState {
    seen: HashMap<String, i64>,
    /// Prune when the map reaches this size (amortised O(1) per call).
    prune_at: usize,
}

impl InMemoryReplayGuard {
    /// An empty guard.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of remembered token ids (expired ones may not be pruned yet).
    pub fn len(&self) -> usize {
        self.lock().seen.len()
    }

    /// Whether no token id is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, ReplayState> {
        // The map is consistent after every statement, so a poisoned lock
        // (a panic elsewhere while holding it) leaves usable state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReplayGuard for InMemoryReplayGuard {
    fn check_and_remember(&self, jti: &str, expires_at: i64, now: i64) -> Result<()> {
        let mut state = self.lock();
        if state.seen.len() >= state.prune_at {
            state.seen.retain(|_, expiry| *expiry >= now);
            state.prune_at = (state.seen.len() * 2).max(1024);
        }
        match state.seen.get(jti) {
            Some(expiry) if *expiry >= now => Err(Error::Replayed { jti: jti.into() }),
            _ => {
                state.seen.insert(jti.into(), expires_at);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn replay_guard_forgets_expired_ids() {
        let guard = InMemoryReplayGuard::new();
        guard.check_and_remember("j", NOW + 10, NOW).unwrap();
        assert!(matches!(
            guard.check_and_remember("j", NOW + 10, NOW + 10),
            Err(Error::Replayed { .. })
        ));
        assert!(guard.check_and_remember("j", NOW + 50, NOW + 11).is_ok());
    }

    #[test]
    fn replay_guard_prunes_as_it_grows() {
        let guard = InMemoryReplayGuard::new();
        for i in 0..5000 {
            guard
                .check_and_remember(&format!("j{i}"), NOW + i, NOW + i)
                .unwrap();
        }
        assert!(guard.len() < 3000, "{}", guard.len());
    }

    #[test]
    fn replay_guard_admits_exactly_one_of_concurrent_uses() {
        for round in 0..20 {
            let guard = Arc::new(InMemoryReplayGuard::new());
            let barrier = Arc::new(std::sync::Barrier::new(8));
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let guard = Arc::clone(&guard);
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        guard.check_and_remember(&format!("jti-{round}"), NOW + 60, NOW)
                    })
                })
                .collect();
            let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
            assert!(
                results
                    .iter()
                    .filter_map(|r| r.as_ref().err())
                    .all(|e| matches!(e, Error::Replayed { .. }))
            );
        }
    }
}
