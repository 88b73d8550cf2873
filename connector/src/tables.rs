//! Registering dataset files (CSV with a header row, Parquet, Arrow IPC; a
//! file or a folder of files of one format) as DataFusion tables.

use std::path::Path;
use std::sync::Arc;

use datafusion::catalog::{MemTable, TableProvider};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::arrow::ArrowFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::SessionState;

use crate::{Error, Result};

/// The file formats a dataset can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// Apache Parquet.
    Parquet,
    /// Arrow IPC file format.
    Arrow,
}

impl Format {
    /// The format of `path` by its extension, or of the first file in a folder.
    pub fn detect(path: &Path) -> Option<Self> {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .ok()?
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .collect();
            entries.sort();
            return entries.iter().find_map(|p| Self::from_extension(p));
        }
        Self::from_extension(path)
    }

    fn from_extension(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Self::Csv),
            "parquet" | "pq" => Some(Self::Parquet),
            "arrow" | "ipc" | "feather" => Some(Self::Arrow),
            _ => None,
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Csv => ".csv",
            Self::Parquet => ".parquet",
            Self::Arrow => ".arrow",
        }
    }

    fn file_format(self) -> Arc<dyn FileFormat> {
        match self {
            Self::Csv => Arc::new(CsvFormat::default().with_has_header(true)),
            Self::Parquet => Arc::new(ParquetFormat::default()),
            Self::Arrow => Arc::new(ArrowFormat),
        }
    }
}

/// A table provider over the file or folder at `path`, schema inferred.
pub async fn open_table(
    state: &SessionState,
    name: &str,
    path: &Path,
) -> Result<Arc<dyn TableProvider>> {
    let fail = |reason: String| Error::Table {
        name: name.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let canonical = path.canonicalize().map_err(|e| fail(e.to_string()))?;
    let format = Format::detect(&canonical)
        .ok_or_else(|| fail("not a `.csv`, `.parquet` or `.arrow` file or folder".to_owned()))?;
    let mut location = canonical.display().to_string();
    if canonical.is_dir() && !location.ends_with('/') {
        location.push('/');
    }
    let url = ListingTableUrl::parse(&location).map_err(|e| fail(first_line(&e.to_string())))?;
    let extension = if canonical.is_dir() {
        format.extension().to_owned()
    } else {
        String::new()
    };
    let options = ListingOptions::new(format.file_format()).with_file_extension(extension);
    let schema = options
        .infer_schema(state, &url)
        .await
        .map_err(|e| fail(first_line(&e.to_string())))?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| fail(first_line(&e.to_string())))?;
    Ok(Arc::new(table))
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

/// Bytes of the dataset files at `path` (a file, or the files of its format
/// in a folder).
pub fn files_bytes(path: &Path) -> Result<u64> {
    let fail = |e: std::io::Error| Error::Table {
        name: "dataset".to_owned(),
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    if !path.is_dir() {
        return Ok(std::fs::metadata(path).map_err(fail)?.len());
    }
    let Some(format) = Format::detect(path) else {
        return Ok(0);
    };
    let mut total = 0_u64;
    for entry in std::fs::read_dir(path).map_err(fail)? {
        let file = entry.map_err(fail)?.path();
        if Format::from_extension(&file) == Some(format) {
            total = total.saturating_add(std::fs::metadata(&file).map_err(fail)?.len());
        }
    }
    Ok(total)
}

/// Reads every row of `table` into memory, spread over as many partitions
/// as there are cores.
pub async fn in_memory(
    state: &SessionState,
    name: &str,
    table: Arc<dyn TableProvider>,
) -> Result<Arc<MemTable>> {
    let ctx = datafusion::prelude::SessionContext::new_with_state(state.clone());
    let fail = |e: datafusion::error::DataFusionError| Error::Table {
        name: name.to_owned(),
        path: String::new(),
        reason: first_line(&e.strip_backtrace()),
    };
    let schema = table.schema();
    let batches = ctx
        .read_table(table)
        .map_err(fail)?
        .collect()
        .await
        .map_err(fail)?;
    let partitions = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
    let mut split = vec![Vec::new(); partitions];
    for (i, batch) in batches.into_iter().enumerate() {
        split[i % partitions].push(batch);
    }
    Ok(Arc::new(MemTable::try_new(schema, split).map_err(fail)?))
}

/// Counts the rows of a table.
pub async fn count_rows(state: &SessionState, table: Arc<dyn TableProvider>) -> Result<u64> {
    let ctx = datafusion::prelude::SessionContext::new_with_state(state.clone());
    let fail = |e: datafusion::error::DataFusionError| Error::Table {
        name: "dataset".to_owned(),
        path: String::new(),
        reason: first_line(&e.strip_backtrace()),
    };
    let frame = ctx.read_table(table).map_err(fail)?;
    let rows = frame.count().await.map_err(fail)?;
    Ok(u64::try_from(rows).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_folder_of_files_is_measured_and_read_into_memory_whole() {
        let dir = tempfile::tempdir().unwrap();
        let rows = |from: i32| {
            (from..from + 50)
                .map(|i| format!("{i},site-{}\n", i % 3))
                .collect::<String>()
        };
        let a = format!("id,site\n{}", rows(0));
        let b = format!("id,site\n{}", rows(50));
        std::fs::write(dir.path().join("a.csv"), &a).unwrap();
        std::fs::write(dir.path().join("b.csv"), &b).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not data").unwrap();
        assert_eq!(files_bytes(dir.path()).unwrap(), (a.len() + b.len()) as u64);
        let state = policy::sql::governed_state(policy::sql::governed_config());
        let files = open_table(&state, "t", dir.path()).await.unwrap();
        let table = in_memory(&state, "t", files).await.unwrap();
        assert_eq!(count_rows(&state, table).await.unwrap(), 100);
    }
}
