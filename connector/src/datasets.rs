//! The provider's dataset registry: files or folders that lie under one of
//! the configured data roots, with their schema and row count.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::Schema;
use serde::{Deserialize, Serialize};

use crate::store::{Store, get_json, put_json, scan_json};
use crate::{Error, Result};

const TREE: &str = "datasets";

/// A registered dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The dataset id, also the table name consumers query.
    pub id: String,
    /// Canonical path of the file or folder.
    pub path: PathBuf,
    /// A human title.
    pub title: String,
    /// What the data is.
    pub description: String,
    /// Search words.
    pub keywords: Vec<String>,
    /// Industrial sector.
    pub sector: Option<String>,
    /// Column name and Arrow type, in order.
    pub columns: Vec<(String, String)>,
    /// Rows at registration.
    pub rows: u64,
    /// When it was registered or last updated.
    pub updated_at: DateTime<Utc>,
}

/// What the owner supplies to register a dataset.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// The dataset id: letters, digits and `_`, starting with a letter.
    pub id: String,
    /// The file or folder.
    pub path: PathBuf,
    /// A human title (default: the id).
    #[serde(default)]
    pub title: String,
    /// What the data is.
    #[serde(default)]
    pub description: String,
    /// Search words.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Industrial sector.
    #[serde(default)]
    pub sector: Option<String>,
}

/// Checks a dataset id: a plain SQL identifier, so consumers can name it unquoted.
pub fn check_dataset_id(id: &str) -> Result<()> {
    let mut chars = id.chars();
    let ok = id.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid {
            field: "id".into(),
            reason: format!(
                "`{id}` must be 1 to 64 lower-case letters, digits or `_`, starting with a letter"
            ),
        })
    }
}

/// Resolves `path` (following symlinks) and refuses it unless it lies under
/// one of `roots`.
pub fn resolve_under_roots(path: &Path, roots: &[PathBuf]) -> Result<PathBuf> {
    let outside = || {
        Error::Forbidden(format!(
            "`{}` is not under a configured data root",
            path.display()
        ))
    };
    let canonical = path.canonicalize().map_err(|e| Error::Invalid {
        field: "path".into(),
        reason: format!("`{}`: {e}", path.display()),
    })?;
    for root in roots {
        if let Ok(root) = root.canonicalize()
            && canonical.starts_with(&root)
        {
            return Ok(canonical);
        }
    }
    Err(outside())
}

/// Dataset records in a [`Store`].
pub struct DatasetRegistry<'a> {
    store: &'a dyn Store,
}

impl<'a> DatasetRegistry<'a> {
    /// The registry in `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// Saves a dataset record (insert or update).
    pub fn save(&self, dataset: &Dataset) -> Result<()> {
        put_json(self.store, TREE, &dataset.id, dataset)
    }

    /// The dataset `id`.
    pub fn get(&self, id: &str) -> Result<Dataset> {
        get_json(self.store, TREE, id)?.ok_or_else(|| Error::NotFound {
            what: "dataset",
            id: id.to_owned(),
        })
    }

    /// Every dataset.
    pub fn list(&self) -> Result<Vec<Dataset>> {
        scan_json(self.store, TREE)
    }

    /// Removes the dataset `id`.
    pub fn remove(&self, id: &str) -> Result<()> {
        self.get(id)?;
        self.store.remove(TREE, id.as_bytes())
    }
}

/// The (name, type) pairs of a schema.
pub fn describe_columns(schema: &Schema) -> Vec<(String, String)> {
    schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_roots_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let inside_file = root.path().join("a.csv");
        std::fs::write(&inside_file, "x\n1\n").unwrap();
        let outside_file = outside.path().join("b.csv");
        std::fs::write(&outside_file, "x\n1\n").unwrap();
        let roots = vec![root.path().to_path_buf()];
        assert!(resolve_under_roots(&inside_file, &roots).is_ok());
        assert!(matches!(
            resolve_under_roots(&outside_file, &roots),
            Err(Error::Forbidden(_))
        ));
        let dotdot = root
            .path()
            .join("..")
            .join(outside.path().file_name().unwrap())
            .join("b.csv");
        assert!(matches!(
            resolve_under_roots(&dotdot, &roots),
            Err(Error::Forbidden(_))
        ));
        let link = root.path().join("link.csv");
        std::os::unix::fs::symlink(&outside_file, &link).unwrap();
        assert!(matches!(
            resolve_under_roots(&link, &roots),
            Err(Error::Forbidden(_))
        ));
        assert!(resolve_under_roots(&root.path().join("missing.csv"), &roots).is_err());
    }

    #[test]
    fn dataset_ids_are_plain_identifiers() {
        assert!(check_dataset_id("telemetry_2026").is_ok());
        for bad in ["", "Telemetry", "1abc", "a-b", "a b", "a;drop"] {
            assert!(check_dataset_id(bad).is_err(), "{bad}");
        }
    }
}
