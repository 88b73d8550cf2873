//! [`PlanCache`]: prepared plans kept for repeated queries, bounded in
//! bytes. Every entry carries a weight (an estimate of the memory its plan
//! holds, see [`crate::engine::plan_weight`]); the weights kept never add up
//! to more than the budget (`plan_cache_bytes`), the least recently used
//! entries going first. One cache serves every engine of a connector, each
//! under its own key, so the budget bounds the connector, not each engine.
//!
//! The recency order is the `lru` crate's (a well-kept, dependency-light
//! LRU map); this file adds only the byte accounting, which `lru` (bounded
//! by entry count) does not have.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use lru::LruCache;

/// An entry's key: the engine and the SQL text.
type Key = (u64, Arc<str>);

/// Values by engine and SQL text, their weights within a byte budget.
pub struct PlanCache<V> {
    state: Mutex<State<V>>,
    budget: usize,
}

struct State<V> {
    /// Every entry, most recently used first.
    entries: LruCache<Key, Entry<V>>,
    /// The weights kept, added up.
    bytes: usize,
}

struct Entry<V> {
    value: V,
    weight: usize,
}

impl<V: Clone> PlanCache<V> {
    /// An empty cache whose weights stay within `budget` bytes (0: keeps
    /// nothing).
    pub fn new(budget: usize) -> Self {
        Self {
            state: Mutex::new(State {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            budget,
        }
    }

    /// A copy of the value kept for `sql` of `engine`, now the most
    /// recently used.
    pub fn get(&self, engine: u64, sql: &str) -> Option<V> {
        let key: Key = (engine, Arc::from(sql));
        self.lock()
            .entries
            .get(&key)
            .map(|entry| entry.value.clone())
    }

    /// Keeps `value` for `sql` of `engine` with `weight`, evicting the
    /// least recently used entries until the weights fit the budget. A
    /// value heavier than the whole budget is not kept.
    pub fn insert(&self, engine: u64, sql: &str, value: V, weight: usize) {
        let key: Key = (engine, Arc::from(sql));
        let mut state = self.lock();
        if let Some(old) = state.entries.pop(&key) {
            state.bytes -= old.weight;
        }
        if weight > self.budget {
            return;
        }
        while state.bytes + weight > self.budget {
            let Some((_, oldest)) = state.entries.pop_lru() else {
                break;
            };
            state.bytes -= oldest.weight;
        }
        state.bytes += weight;
        state.entries.put(key, Entry { value, weight });
    }

    /// Forgets every entry of `engine`.
    pub fn forget(&self, engine: u64) {
        let mut state = self.lock();
        let keys: Vec<Key> = state
            .entries
            .iter()
            .filter(|((owner, _), _)| *owner == engine)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            if let Some(entry) = state.entries.pop(&key) {
                state.bytes -= entry.weight;
            }
        }
    }

    /// Entries kept for `engine`.
    pub fn len_of(&self, engine: u64) -> usize {
        self.lock()
            .entries
            .iter()
            .filter(|((owner, _), _)| *owner == engine)
            .count()
    }

    /// Entries kept, for every engine.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The weights kept, added up: never more than [`Self::budget`].
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The budget, in bytes.
    pub fn budget(&self) -> usize {
        self.budget
    }

    fn lock(&self) -> MutexGuard<'_, State<V>> {
        // Every change leaves the map and the total consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_stay_within_the_budget_least_recently_used_first_out() {
        let cache = PlanCache::new(100);
        cache.insert(1, "a", 'a', 40);
        cache.insert(1, "b", 'b', 40);
        assert_eq!(cache.get(1, "a"), Some('a'));
        cache.insert(2, "c", 'c', 40);
        // `b` was used least recently.
        assert_eq!(
            (cache.get(1, "a"), cache.get(1, "b"), cache.get(2, "c")),
            (Some('a'), None, Some('c'))
        );
        assert_eq!((cache.bytes(), cache.len()), (80, 2));
        cache.insert(2, "big", 'x', 101);
        assert_eq!((cache.get(2, "big"), cache.bytes()), (None, 80));
        cache.insert(2, "full", 'f', 100);
        assert_eq!((cache.len(), cache.bytes()), (1, 100));
    }

    #[test]
    fn replacing_and_forgetting_keep_the_total_right() {
        let cache = PlanCache::new(1000);
        cache.insert(1, "a", 1, 10);
        cache.insert(1, "a", 2, 30);
        cache.insert(2, "a", 3, 5);
        assert_eq!(
            (cache.get(1, "a"), cache.bytes(), cache.len()),
            (Some(2), 35, 2)
        );
        cache.forget(1);
        assert_eq!((cache.get(1, "a"), cache.get(2, "a")), (None, Some(3)));
        assert_eq!((cache.bytes(), cache.len_of(1), cache.len_of(2)), (5, 0, 1));
        let none = PlanCache::new(0);
        none.insert(1, "a", 1, 1);
        assert!(none.is_empty());
    }

    #[test]
    fn a_stream_of_distinct_keys_never_exceeds_the_budget() {
        let cache = PlanCache::new(10_000);
        for i in 0..5000_usize {
            cache.insert(i as u64 % 3, &format!("q{i}"), i, 1 + i % 97);
            assert!(cache.bytes() <= 10_000);
        }
        assert!(cache.len() > 100);
    }
}
