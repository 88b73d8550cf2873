//! The governed engine of each dataset and policy, made at the first query
//! that needs it and kept until the dataset is registered again; datasets
//! small enough (`memory_table_bytes`) held in memory, shared by every
//! agreement on them; the prepared plans of all engines in one cache
//! within `plan_cache_bytes`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use datafusion::catalog::TableProvider;
use policy::contract::Agreement;

use crate::config::ConnectorConfig;
use crate::datasets::DatasetRegistry;
use crate::engine::{ExecutionLimits, GovernedEngine, Plans};
use crate::store::Store;
use crate::{Result, tables};

/// The engines of a provider, by dataset and policy hash.
pub struct Engines {
    engines: Mutex<HashMap<String, Arc<GovernedEngine>>>,
    /// Datasets held in memory, by id.
    memory_tables: Mutex<HashMap<String, Arc<dyn TableProvider>>>,
    /// The prepared plans of every engine.
    plans: Arc<Plans>,
    limits: ExecutionLimits,
    data_roots: Vec<PathBuf>,
    memory_table_bytes: u64,
}

impl Engines {
    /// No engines yet, to be made under `config`'s limits and data roots.
    pub fn new(config: &ConnectorConfig) -> Self {
        Self {
            engines: Mutex::new(HashMap::new()),
            memory_tables: Mutex::new(HashMap::new()),
            plans: Arc::new(Plans::new(config.plan_cache_bytes)),
            limits: ExecutionLimits {
                memory_bytes: config.query_memory_bytes,
                timeout: Duration::from_secs(config.query_timeout_secs),
                sql: config.sql_limits(),
            },
            data_roots: config.data_roots.clone(),
            memory_table_bytes: config.memory_table_bytes,
        }
    }

    /// The prepared plans kept for repeated queries, of every dataset.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// The engine for `agreement`'s dataset under its policy.
    pub async fn for_agreement(
        &self,
        store: &dyn Store,
        agreement: &Agreement,
    ) -> Result<Arc<GovernedEngine>> {
        let key = engine_key(&agreement.dataset, &agreement.policy_hash);
        if let Some(engine) = self.engines.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Ok(engine);
        }
        let dataset = DatasetRegistry::new(store).get(&agreement.dataset)?;
        let mut engine = GovernedEngine::with_plans(self.limits, Arc::clone(&self.plans))?;
        let policy = agreement.policy.payload().clone();
        match self
            .memory_table(&dataset.id, &dataset.path, &engine)
            .await?
        {
            Some(table) => engine.register_provider(policy, table)?,
            None => {
                engine
                    .add_dataset(policy, &dataset.path, &self.data_roots)
                    .await?;
            }
        }
        let engine = Arc::new(engine);
        if let Ok(mut engines) = self.engines.lock() {
            engines.insert(key, Arc::clone(&engine));
        }
        Ok(engine)
    }

    /// Forgets the engines and the in-memory table of `dataset` (it was
    /// registered again or removed).
    pub fn forget(&self, dataset: &str) {
        let prefix = engine_key(dataset, "");
        if let Ok(mut engines) = self.engines.lock() {
            engines.retain(|key, _| !key.starts_with(&prefix));
        }
        if let Ok(mut tables) = self.memory_tables.lock() {
            tables.remove(dataset);
        }
    }

    /// The dataset held in memory, when its files total at most
    /// `memory_table_bytes`: read at the first query that needs it and
    /// shared by every agreement on it until the dataset is registered
    /// again.
    async fn memory_table(
        &self,
        id: &str,
        path: &Path,
        engine: &GovernedEngine,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let limit = self.memory_table_bytes;
        if limit == 0 {
            return Ok(None);
        }
        if let Some(table) = self
            .memory_tables
            .lock()
            .ok()
            .and_then(|t| t.get(id).cloned())
        {
            return Ok(Some(table));
        }
        let bytes = tables::files_bytes(path)?;
        if bytes > limit {
            return Ok(None);
        }
        let started = Instant::now();
        let files = tables::open_table(engine.state(), id, path, &self.data_roots).await?;
        let table: Arc<dyn TableProvider> = tables::in_memory(engine.state(), id, files).await?;
        let ms = started.elapsed().as_millis();
        tracing::info!(dataset = %id, bytes, ms, "dataset held in memory");
        if let Ok(mut tables) = self.memory_tables.lock() {
            tables.insert(id.to_owned(), Arc::clone(&table));
        }
        Ok(Some(table))
    }
}

/// The key of an engine: its dataset and its policy's hash.
fn engine_key(dataset: &str, policy_hash: &str) -> String {
    format!("{dataset}|{policy_hash}")
}
