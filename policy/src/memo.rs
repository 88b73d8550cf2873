//! A bounded memory of results worth keeping (verified signatures, verified
//! agreements), by text key: a least-recently-used cache ([`lru`]). When
//! full, the entry used longest ago goes first, so a stream of distinct
//! keys, hostile or not, holds at most `capacity` entries and cannot push
//! out an entry that is in use.

use std::num::NonZeroUsize;
use std::sync::Mutex;

use lru::LruCache;

/// Values by text key, at most `capacity` of them, least recently used out
/// first.
#[derive(Debug)]
pub struct Memo<V> {
    entries: Mutex<LruCache<String, V>>,
}

impl<V: Clone> Memo<V> {
    /// An empty memory of at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN);
        Self {
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// A copy of the value kept under `key`, which counts as a use.
    pub fn get(&self, key: &str) -> Option<V> {
        self.entries.lock().ok()?.get(key).cloned()
    }

    /// Keeps `value` under `key`; when full, the least recently used entry
    /// is forgotten.
    pub fn insert(&self, key: &str, value: V) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.put(key.to_owned(), value);
        }
    }

    /// Forgets everything.
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keeps_values_and_forgets_the_least_recently_used_when_full() {
        let memo = Memo::new(3);
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            memo.insert(key, i);
        }
        assert_eq!((memo.get("b"), memo.len()), (Some(1), 3));
        // `a` is now the least recently used: it goes, nothing else does.
        memo.insert("d", 3);
        assert_eq!(
            (memo.get("a"), memo.get("b"), memo.get("c"), memo.get("d")),
            (None, Some(1), Some(2), Some(3))
        );
        assert_eq!(memo.len(), 3);
        memo.clear();
        assert!(memo.is_empty());
    }

    #[test]
    fn a_hot_entry_survives_a_stream_of_distinct_keys() {
        let memo = Memo::new(16);
        memo.insert("hot", 0);
        for i in 1..10_000 {
            memo.insert(&format!("cold-{i}"), i);
            assert_eq!(memo.get("hot"), Some(0), "lost after {i} keys");
            assert!(memo.len() <= 16);
        }
        // A cold key inserted long ago is gone.
        assert_eq!(memo.get("cold-1"), None);
    }

    #[test]
    fn a_zero_capacity_keeps_one_entry() {
        let memo = Memo::new(0);
        memo.insert("a", 1);
        memo.insert("b", 2);
        assert_eq!(
            (memo.get("a"), memo.get("b"), memo.len()),
            (None, Some(2), 1)
        );
    }
}
