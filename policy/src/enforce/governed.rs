//! The datasets a query may read, each with the policy that governs it.

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Access, UsagePolicy};

/// The datasets a caller may query, each with the policy that governs it,
/// under its dataset id (the table name).
#[derive(Debug, Clone, Default)]
pub struct Governed {
    tables: HashMap<String, Arc<UsagePolicy>>,
}

impl Governed {
    /// No datasets.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the dataset of `policy`, replacing any earlier policy for it.
    pub fn insert(&mut self, policy: Arc<UsagePolicy>) {
        self.tables.insert(policy.dataset().to_owned(), policy);
    }

    /// The policy governing the table `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<UsagePolicy>> {
        self.tables.get(name)
    }

    /// All governed datasets.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<UsagePolicy>> {
        self.tables.values()
    }

    /// Whether the table `name` is governed in aggregate mode.
    pub(crate) fn is_aggregate(&self, table: &str) -> bool {
        self.get(table)
            .is_some_and(|p| p.access == Access::Aggregate)
    }
}
