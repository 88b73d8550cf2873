//! The connector's storage seam: a small key-value trait with named trees,
//! implemented on sled and in memory. Typed registries sit on top.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;

use crate::{Error, Result};

/// Named trees of ordered byte keys and values.
pub trait Store: Send + Sync {
    /// The value at `key` in `tree`.
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Sets `key` to `value`; durable when it returns.
    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes `key`; durable when it returns.
    fn remove(&self, tree: &str, key: &[u8]) -> Result<()>;
    /// Every entry of `tree`, in key order.
    fn scan(&self, tree: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Atomically replaces the value at `key` with `f(old)`; `f` returning
    /// `Err` leaves it unchanged. Returns the new value. Durable when it returns.
    fn update(
        &self,
        tree: &str,
        key: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>) -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>>;
}

/// The sled implementation.
pub struct SledStore {
    db: sled::Db,
}

impl SledStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::open(path).map_err(|e| storage(&e))?;
        Ok(Self { db })
    }

    fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(|e| storage(&e))
    }
}

fn storage(e: &dyn std::fmt::Display) -> Error {
    Error::Storage(e.to_string())
}

impl Store for SledStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key).map_err(|e| storage(&e))?.map(|v| v.to_vec()))
    }

    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        let t = self.tree(tree)?;
        t.insert(key, value).map_err(|e| storage(&e))?;
        t.flush().map_err(|e| storage(&e))?;
        Ok(())
    }

    fn remove(&self, tree: &str, key: &[u8]) -> Result<()> {
        let t = self.tree(tree)?;
        t.remove(key).map_err(|e| storage(&e))?;
        t.flush().map_err(|e| storage(&e))?;
        Ok(())
    }

    fn scan(&self, tree: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.tree(tree)?
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(|e| storage(&e)))
            .collect()
    }

    fn update(
        &self,
        tree: &str,
        key: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>) -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        let t = self.tree(tree)?;
        loop {
            let old = t.get(key).map_err(|e| storage(&e))?;
            let new = f(old.as_deref())?;
            let swapped = t
                .compare_and_swap(key, old, Some(new.as_slice()))
                .map_err(|e| storage(&e))?;
            if swapped.is_ok() {
                t.flush().map_err(|e| storage(&e))?;
                return Ok(new);
            }
        }
    }
}

/// The in-memory implementation (tests, the demo's throwaway stores).
#[derive(Default)]
pub struct MemoryStore {
    trees: Mutex<HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, BTreeMap<Vec<u8>, Vec<u8>>>) -> T) -> Result<T> {
        let mut guard = self.trees.lock().map_err(|_| Error::Storage("the store lock is poisoned".into()))?;
        Ok(f(&mut guard))
    }
}

impl Store for MemoryStore {
    fn get(&self, tree: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.with(|t| t.get(tree).and_then(|m| m.get(key).cloned()))
    }

    fn put(&self, tree: &str, key: &[u8], value: &[u8]) -> Result<()> {
        self.with(|t| {
            t.entry(tree.to_owned()).or_default().insert(key.to_vec(), value.to_vec());
        })
    }

    fn remove(&self, tree: &str, key: &[u8]) -> Result<()> {
        self.with(|t| {
            if let Some(m) = t.get_mut(tree) {
                m.remove(key);
            }
        })
    }

    fn scan(&self, tree: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.with(|t| {
            t.get(tree)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        })
    }

    fn update(
        &self,
        tree: &str,
        key: &[u8],
        f: &mut dyn FnMut(Option<&[u8]>) -> Result<Vec<u8>>,
    ) -> Result<Vec<u8>> {
        self.with(|t| {
            let m = t.entry(tree.to_owned()).or_default();
            let new = f(m.get(key).map(Vec::as_slice))?;
            m.insert(key.to_vec(), new.clone());
            Ok(new)
        })?
    }
}

/// Reads a JSON value from `tree` at `key`.
pub fn get_json<T: serde::de::DeserializeOwned>(store: &dyn Store, tree: &str, key: &str) -> Result<Option<T>> {
    match store.get(tree, key.as_bytes())? {
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Storage(format!("a stored `{tree}` entry is corrupt: {e}"))),
        None => Ok(None),
    }
}

/// Writes a JSON value to `tree` at `key`.
pub fn put_json<T: serde::Serialize>(store: &dyn Store, tree: &str, key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Storage(e.to_string()))?;
    store.put(tree, key.as_bytes(), &bytes)
}

/// Every JSON value of `tree`.
pub fn scan_json<T: serde::de::DeserializeOwned>(store: &dyn Store, tree: &str) -> Result<Vec<T>> {
    store
        .scan(tree)?
        .into_iter()
        .map(|(_, v)| {
            serde_json::from_slice(&v).map_err(|e| Error::Storage(format!("a stored `{tree}` entry is corrupt: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn counter(store: &dyn Store) -> u64 {
        let v = store
            .update("quota", b"a", &mut |old| {
                let n = old.map_or(0, |b| u64::from_be_bytes(b.try_into().unwrap_or([0; 8])));
                Ok((n + 1).to_be_bytes().to_vec())
            })
            .unwrap();
        u64::from_be_bytes(v.try_into().unwrap())
    }

    fn concurrent_updates_are_atomic(store: Arc<dyn Store>) {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = Arc::clone(&store);
                std::thread::spawn(move || (0..50).map(|_| counter(s.as_ref())).collect::<Vec<_>>())
            })
            .collect();
        let mut seen: Vec<u64> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (1..=400).collect::<Vec<_>>());
    }

    #[test]
    fn sled_and_memory_updates_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        concurrent_updates_are_atomic(Arc::new(SledStore::open(dir.path()).unwrap()));
        concurrent_updates_are_atomic(Arc::new(MemoryStore::new()));
    }

    #[test]
    fn sled_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            put_json(&s, "t", "k", &vec![1, 2, 3]).unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        assert_eq!(get_json::<Vec<i32>>(&s, "t", "k").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(scan_json::<Vec<i32>>(&s, "t").unwrap().len(), 1);
    }
}
