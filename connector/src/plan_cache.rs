//! [`PlanCache`]: prepared plans kept for repeated queries, bounded in
//! bytes. Every entry carries a weight (an estimate of the memory its plan
//! holds, see [`crate::engine::plan_weight`]); the weights kept never add up
//! to more than the budget (`plan_cache_bytes`), the least recently used
//! entries going first. One cache serves every engine of a connector, each
//! under its own key, so the budget bounds the connector, not each engine.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Values by engine and SQL text, their weights within a byte budget.
pub struct PlanCache<V> {
    state: Mutex<State<V>>,
    budget: usize,
}

struct State<V> {
    /// Entries by engine, then by SQL text.
    engines: HashMap<u64, HashMap<Arc<str>, Entry<V>>>,
    /// Every entry by its last use, oldest first.
    by_use: BTreeMap<u64, (u64, Arc<str>)>,
    /// The last use handed out.
    clock: u64,
    /// The weights kept, added up.
    bytes: usize,
}

struct Entry<V> {
    value: V,
    weight: usize,
    used: u64,
}

impl<V: Clone> PlanCache<V> {
    /// An empty cache whose weights stay within `budget` bytes (0: keeps
    /// nothing).
    pub fn new(budget: usize) -> Self {
        Self {
            state: Mutex::new(State {
                engines: HashMap::new(),
                by_use: BTreeMap::new(),
                clock: 0,
                bytes: 0,
            }),
            budget,
        }
    }

    /// A copy of the value kept for `sql` of `engine`, now the most
    /// recently used.
    pub fn get(&self, engine: u64, sql: &str) -> Option<V> {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.clock += 1;
        let now = state.clock;
        let entries = state.engines.get_mut(&engine)?;
        let key = Arc::clone(entries.get_key_value(sql)?.0);
        let entry = entries.get_mut(sql)?;
        let previous = std::mem::replace(&mut entry.used, now);
        let value = entry.value.clone();
        state.by_use.remove(&previous);
        state.by_use.insert(now, (engine, key));
        Some(value)
    }

    /// Keeps `value` for `sql` of `engine` with `weight`, evicting the
    /// least recently used entries until the weights fit the budget. A
    /// value heavier than the whole budget is not kept.
    pub fn insert(&self, engine: u64, sql: &str, value: V, weight: usize) {
        let mut state = self.lock();
        state.remove(engine, sql);
        if weight > self.budget {
            return;
        }
        while state.bytes + weight > self.budget {
            let Some((_, (oldest_engine, oldest_sql))) = state.by_use.pop_first() else {
                break;
            };
            state.remove(oldest_engine, &oldest_sql);
        }
        state.clock += 1;
        let used = state.clock;
        let key: Arc<str> = Arc::from(sql);
        state.by_use.insert(used, (engine, Arc::clone(&key)));
        state.bytes += weight;
        state.engines.entry(engine).or_default().insert(
            key,
            Entry {
                value,
                weight,
                used,
            },
        );
    }

    /// Forgets every entry of `engine`.
    pub fn forget(&self, engine: u64) {
        let mut state = self.lock();
        if let Some(entries) = state.engines.remove(&engine) {
            for entry in entries.values() {
                state.by_use.remove(&entry.used);
                state.bytes -= entry.weight;
            }
        }
    }

    /// Entries kept for `engine`.
    pub fn len_of(&self, engine: u64) -> usize {
        self.lock().engines.get(&engine).map_or(0, HashMap::len)
    }

    /// Entries kept, for every engine.
    pub fn len(&self) -> usize {
        self.lock().by_use.len()
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
        // Every change leaves the maps and the total consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<V> State<V> {
    fn remove(&mut self, engine: u64, sql: &str) {
        let Some(entries) = self.engines.get_mut(&engine) else {
            return;
        };
        if let Some(entry) = entries.remove(sql) {
            self.by_use.remove(&entry.used);
            self.bytes -= entry.weight;
        }
        if entries.is_empty() {
            self.engines.remove(&engine);
        }
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
