//! Registering dataset files (CSV with a header row, Parquet, Arrow IPC; a
//! file or a folder of files of one format) as DataFusion tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::{MemTable, TableProvider};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::arrow::ArrowFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig};
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;

use crate::{Error, Result, rooted};

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

/// A table provider over the file or folder at `path`, schema inferred,
/// whose files are read only where they really lie under `roots`
/// ([`rooted`]): at the inference here and at every scan. It reads through
/// a store registered in `state`'s runtime, so it is scanned by sessions
/// that share that runtime (any other finds no store and reads nothing).
pub async fn open_table(
    state: &SessionState,
    name: &str,
    path: &Path,
    roots: &[PathBuf],
) -> Result<Arc<dyn TableProvider>> {
    let fail = |reason: String| Error::Table {
        name: name.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    // Not resolved: a link swapped in for the file is the store's to refuse.
    let path = std::path::absolute(path).map_err(|e| fail(e.to_string()))?;
    let format = Format::detect(&path)
        .ok_or_else(|| fail("not a `.csv`, `.parquet` or `.arrow` file or folder".to_owned()))?;
    let url = rooted::confine(state, name, &path, roots)?;
    let extension = if path.is_dir() {
        format.extension().to_owned()
    } else {
        String::new()
    };
    let options = ListingOptions::new(format.file_format()).with_file_extension(extension);
    let schema = options
        .infer_schema(state, &url)
        .await
        .map_err(|e| table_error(name, &path, &e))?;
    let config = ListingTableConfig::new(url)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(|e| table_error(name, &path, &e))?;
    Ok(Arc::new(table))
}

/// A DataFusion error while opening or reading dataset `name`: a file
/// refused outside the data roots as it is, anything else by its first line.
fn table_error(name: &str, path: &Path, error: &DataFusionError) -> Error {
    if let Some(refusal) = rooted::outside_roots_in(error) {
        return Error::OutsideRoots(refusal.clone());
    }
    Error::Table {
        name: name.to_owned(),
        path: path.display().to_string(),
        reason: first_line(&error.strip_backtrace()),
    }
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
    let fail = |e: DataFusionError| table_error(name, Path::new(""), &e);
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
    let fail = |e: DataFusionError| table_error("dataset", Path::new(""), &e);
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
        let roots = [dir.path().to_path_buf()];
        let files = open_table(&state, "t", dir.path(), &roots).await.unwrap();
        let table = in_memory(&state, "t", files).await.unwrap();
        assert_eq!(count_rows(&state, table).await.unwrap(), 100);
    }

    /// A data root with `data/a.csv` (3 rows) and, outside it, a CSV with
    /// a value that must never be read.
    struct Roots {
        root: tempfile::TempDir,
        outside: tempfile::TempDir,
    }

    const OUTSIDE_VALUE: &str = "Zebulon-9";

    fn roots() -> Roots {
        let roots = Roots {
            root: tempfile::tempdir().unwrap(),
            outside: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(roots.root.path().join("data")).unwrap();
        std::fs::write(roots.data("a.csv"), "id,site\n1,north\n2,south\n3,east\n").unwrap();
        let secret = format!("id,site\n9999,{OUTSIDE_VALUE}\n");
        std::fs::write(roots.outside.path().join("secret.csv"), secret).unwrap();
        roots
    }

    impl Roots {
        fn data(&self, file: &str) -> PathBuf {
            self.root.path().join("data").join(file)
        }

        fn secret(&self) -> PathBuf {
            self.outside.path().join("secret.csv")
        }

        fn list(&self) -> Vec<PathBuf> {
            vec![self.root.path().to_path_buf()]
        }
    }

    /// Opens `path` as `t` and counts its rows.
    async fn rows_of(state: &SessionState, path: &Path, roots: &[PathBuf]) -> Result<u64> {
        let table = open_table(state, "t", path, roots).await?;
        count_rows(state, table).await
    }

    fn assert_outside(result: Result<u64>, path: &str) {
        match result {
            Err(Error::OutsideRoots(refusal)) => {
                assert_eq!(
                    (refusal.dataset.as_str(), refusal.path.as_str()),
                    ("t", path)
                );
                let text = Error::OutsideRoots(refusal).to_string();
                assert!(text.contains("replace the link"), "{text}");
                assert!(
                    !text.contains(OUTSIDE_VALUE) && !text.contains("9999"),
                    "{text}"
                );
            }
            other => panic!("not refused: {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_folder_with_a_link_out_of_the_roots_is_refused() {
        let roots = roots();
        std::os::unix::fs::symlink(roots.secret(), roots.data("b.csv")).unwrap();
        let state = policy::sql::governed_state(policy::sql::governed_config());
        let result = rows_of(&state, &roots.data(""), &roots.list()).await;
        assert_outside(result, "data/b.csv");
    }

    #[tokio::test]
    async fn a_parquet_folder_with_a_link_out_of_the_roots_is_refused() {
        let roots = roots();
        let ctx = datafusion::prelude::SessionContext::new();
        for (sql, path) in [
            ("SELECT 1 AS id", roots.data("a.parquet")),
            (
                "SELECT 9999 AS id",
                roots.outside.path().join("secret.parquet"),
            ),
        ] {
            let options = datafusion::dataframe::DataFrameWriteOptions::new();
            let frame = ctx.sql(sql).await.unwrap();
            frame
                .write_parquet(
                    path.to_str().unwrap(),
                    options.with_single_file_output(true),
                    None,
                )
                .await
                .unwrap();
        }
        std::fs::remove_file(roots.data("a.csv")).unwrap();
        let state = policy::sql::governed_state(policy::sql::governed_config());
        let folder = roots.data("");
        assert_eq!(rows_of(&state, &folder, &roots.list()).await.unwrap(), 1);
        let link = roots.data("b.parquet");
        std::os::unix::fs::symlink(roots.outside.path().join("secret.parquet"), link).unwrap();
        let state = policy::sql::governed_state(policy::sql::governed_config());
        assert_outside(
            rows_of(&state, &folder, &roots.list()).await,
            "data/b.parquet",
        );
    }

    #[tokio::test]
    async fn a_file_swapped_for_a_link_after_opening_is_refused_at_the_next_scan() {
        let roots = roots();
        let state = policy::sql::governed_state(policy::sql::governed_config());
        let table = open_table(&state, "t", &roots.data("a.csv"), &roots.list())
            .await
            .unwrap();
        assert_eq!(count_rows(&state, Arc::clone(&table)).await.unwrap(), 3);
        std::fs::remove_file(roots.data("a.csv")).unwrap();
        std::os::unix::fs::symlink(roots.secret(), roots.data("a.csv")).unwrap();
        assert_outside(count_rows(&state, Arc::clone(&table)).await, "data/a.csv");
        let memory = in_memory(&state, "t", table).await.map(|_| 0);
        assert_outside(memory, "data/a.csv");
    }

    #[tokio::test]
    async fn links_that_stay_inside_a_root_are_read() {
        let roots = roots();
        let elsewhere = roots.root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::write(elsewhere.join("c.csv"), "id,site\n4,west\n").unwrap();
        std::os::unix::fs::symlink(elsewhere.join("c.csv"), roots.data("c.csv")).unwrap();
        let state = policy::sql::governed_state(policy::sql::governed_config());
        let folder = roots.data("");
        assert_eq!(rows_of(&state, &folder, &roots.list()).await.unwrap(), 4);
        // A data root given through a link is the folder it leads to.
        let alias = roots.outside.path().join("alias");
        std::os::unix::fs::symlink(roots.root.path(), &alias).unwrap();
        let state = policy::sql::governed_state(policy::sql::governed_config());
        assert_eq!(rows_of(&state, &folder, &[alias]).await.unwrap(), 4);
    }
}
