//! Where the catalog keeps participants and publications: the
//! [`CatalogStore`] trait, [`SledStore`] (embedded, on disk) and
//! [`MemoryStore`] (for tests and throw-away catalogs).
//!
//! A publication is kept as its decoded record and, apart, the provider's
//! JWS, so rebuilding the search index at start reads records only and does
//! no signature work. Writing a publication or a withdrawal is atomic.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use crate::model::{DatasetKey, DatasetRecord, Participant, StoredDataset};
use crate::{Error, Result};

/// Storage of the catalog.
pub trait CatalogStore: Send + Sync {
    /// Saves (or replaces) a participant.
    fn put_participant(&self, participant: &Participant) -> Result<()>;
    /// The participant with `id`.
    fn participant(&self, id: &str) -> Result<Option<Participant>>;
    /// Every participant, by id.
    fn participants(&self) -> Result<Vec<Participant>>;
    /// Saves (or replaces) a publication.
    fn put_dataset(&self, dataset: &StoredDataset) -> Result<()>;
    /// The publication of `key`.
    fn dataset(&self, key: &DatasetKey) -> Result<Option<StoredDataset>>;
    /// Removes a publication and remembers `version` as withdrawn.
    fn remove_dataset(&self, key: &DatasetKey, version: u64) -> Result<()>;
    /// The last version of `key` withdrawn, if any.
    fn withdrawn_version(&self, key: &DatasetKey) -> Result<Option<u64>>;
    /// Calls `visit` with every publication's record, in key order.
    fn for_each_record(&self, visit: &mut dyn FnMut(DatasetRecord) -> Result<()>) -> Result<()>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<()>;
}

/// The store key of a dataset: provider, a zero byte, id (ids hold no
/// control characters).
fn key_bytes(key: &DatasetKey) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(key.provider.len() + key.id.len() + 1);
    bytes.extend_from_slice(key.provider.as_bytes());
    bytes.push(0);
    bytes.extend_from_slice(key.id.as_bytes());
    bytes
}

fn encode(value: &impl Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(Error::storage)
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::storage(format!("corrupt {what}: {e}")))
}

/// The sled store: trees `participants`, `records`, `signed` and
/// `withdrawn` in one database folder.
pub struct SledStore {
    db: sled::Db,
    participants: sled::Tree,
    records: sled::Tree,
    signed: sled::Tree,
    withdrawn: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in folder `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::open(path)
            .map_err(|e| Error::storage(format!("cannot open `{}`: {e}", path.display())))?;
        let tree = |name: &str| db.open_tree(name).map_err(Error::storage);
        Ok(Self {
            participants: tree("participants")?,
            records: tree("records")?,
            signed: tree("signed")?,
            withdrawn: tree("withdrawn")?,
            db,
        })
    }
}

fn transaction_error(error: TransactionError<()>) -> Error {
    match error {
        TransactionError::Abort(()) => Error::storage("transaction aborted"),
        TransactionError::Storage(e) => Error::storage(e),
    }
}

impl CatalogStore for SledStore {
    fn put_participant(&self, participant: &Participant) -> Result<()> {
        self.participants
            .insert(participant.id.as_bytes(), encode(participant)?)
            .map_err(Error::storage)?;
        Ok(())
    }

    fn participant(&self, id: &str) -> Result<Option<Participant>> {
        let found = self
            .participants
            .get(id.as_bytes())
            .map_err(Error::storage)?;
        found.map(|bytes| decode(&bytes, "participant")).transpose()
    }

    fn participants(&self) -> Result<Vec<Participant>> {
        let mut all = Vec::new();
        for item in &self.participants {
            let (_, bytes) = item.map_err(Error::storage)?;
            all.push(decode(&bytes, "participant")?);
        }
        Ok(all)
    }

    fn put_dataset(&self, dataset: &StoredDataset) -> Result<()> {
        let key = key_bytes(&dataset.record.key());
        let record = encode(&dataset.record)?;
        let signed = dataset.signed.as_bytes();
        (&self.records, &self.signed)
            .transaction(|(records, signeds)| {
                records.insert(key.as_slice(), record.as_slice())?;
                signeds.insert(key.as_slice(), signed)?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(transaction_error)
    }

    fn dataset(&self, key: &DatasetKey) -> Result<Option<StoredDataset>> {
        let key = key_bytes(key);
        let Some(record) = self.records.get(&key).map_err(Error::storage)? else {
            return Ok(None);
        };
        let signed = self
            .signed
            .get(&key)
            .map_err(Error::storage)?
            .ok_or_else(|| Error::storage("a record without its signed description"))?;
        Ok(Some(StoredDataset {
            record: decode(&record, "dataset record")?,
            signed: String::from_utf8(signed.to_vec()).map_err(Error::storage)?,
        }))
    }

    fn remove_dataset(&self, key: &DatasetKey, version: u64) -> Result<()> {
        let key = key_bytes(key);
        (&self.records, &self.signed, &self.withdrawn)
            .transaction(|(records, signeds, withdrawn)| {
                records.remove(key.as_slice())?;
                signeds.remove(key.as_slice())?;
                withdrawn.insert(key.as_slice(), &version.to_be_bytes())?;
                Ok::<_, ConflictableTransactionError<()>>(())
            })
            .map_err(transaction_error)
    }

    fn withdrawn_version(&self, key: &DatasetKey) -> Result<Option<u64>> {
        let found = self.withdrawn.get(key_bytes(key)).map_err(Error::storage)?;
        found
            .map(|bytes| {
                <[u8; 8]>::try_from(bytes.as_ref())
                    .map(u64::from_be_bytes)
                    .map_err(|_| Error::storage("corrupt withdrawn version"))
            })
            .transpose()
    }

    fn for_each_record(&self, visit: &mut dyn FnMut(DatasetRecord) -> Result<()>) -> Result<()> {
        for item in &self.records {
            let (_, bytes) = item.map_err(Error::storage)?;
            visit(decode(&bytes, "dataset record")?)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map_err(Error::storage)?;
        Ok(())
    }
}

/// An in-memory store; everything is lost when it is dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    participants: BTreeMap<String, Participant>,
    datasets: BTreeMap<DatasetKey, StoredDataset>,
    withdrawn: BTreeMap<DatasetKey, u64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl CatalogStore for MemoryStore {
    fn put_participant(&self, participant: &Participant) -> Result<()> {
        self.state()
            .participants
            .insert(participant.id.clone(), participant.clone());
        Ok(())
    }

    fn participant(&self, id: &str) -> Result<Option<Participant>> {
        Ok(self.state().participants.get(id).cloned())
    }

    fn participants(&self) -> Result<Vec<Participant>> {
        Ok(self.state().participants.values().cloned().collect())
    }

    fn put_dataset(&self, dataset: &StoredDataset) -> Result<()> {
        self.state()
            .datasets
            .insert(dataset.record.key(), dataset.clone());
        Ok(())
    }

    fn dataset(&self, key: &DatasetKey) -> Result<Option<StoredDataset>> {
        Ok(self.state().datasets.get(key).cloned())
    }

    fn remove_dataset(&self, key: &DatasetKey, version: u64) -> Result<()> {
        let mut state = self.state();
        state.datasets.remove(key);
        state.withdrawn.insert(key.clone(), version);
        Ok(())
    }

    fn withdrawn_version(&self, key: &DatasetKey) -> Result<Option<u64>> {
        Ok(self.state().withdrawn.get(key).copied())
    }

    fn for_each_record(&self, visit: &mut dyn FnMut(DatasetRecord) -> Result<()>) -> Result<()> {
        let records: Vec<DatasetRecord> = self
            .state()
            .datasets
            .values()
            .map(|d| d.record.clone())
            .collect();
        records.into_iter().try_for_each(visit)
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}
