//! Data roots that cannot be escaped: the object store through which a
//! dataset's files are listed and read, at registration and at every scan.
//!
//! Each file is checked where it really is after it is opened and before a
//! byte of it is read: the path the kernel gives for the open file
//! (`/proc/self/fd`), not the name it was opened by, must lie under a data
//! root. A link in a registered folder that leads out of the roots, or a
//! registered file swapped for such a link after registration, is
//! therefore refused ([`OutsideRoots`]) and nothing behind it is read. A
//! link that resolves to a file inside a data root is read like that file
//! (and a hard link, being a name of the file itself, like any file).
//!
//! There is no race on Linux: the check is on the file opened, so a name
//! swapped for a link between a check and an open cannot slip through.
//! Where `/proc/self/fd` is missing, the name is resolved again after the
//! open and must lead, under a root, to the very file opened (same device
//! and inode); only someone who can write inside a data root and swaps a
//! link back and forth between those two steps could defeat that.
//!
//! Listing follows links (for their size and time only) and checks
//! nothing: files the scan will not read, such as those in subfolders, do
//! not refuse a dataset. The store refuses every write.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::execution::SessionState;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use futures::StreamExt;
use futures::stream::BoxStream;
use url::Url;

pub use crate::error::OutsideRoots;
use crate::{Error, Result};

/// The scheme of the URLs datasets are read under: one store per dataset,
/// so that a refusal can name it.
const SCHEME: &str = "dataset";

/// The refusal of a file outside the roots somewhere in the causes of
/// `error` (DataFusion wraps what a store reports).
pub fn outside_roots_in<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a OutsideRoots> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(found) = e.downcast_ref::<OutsideRoots>() {
            return Some(found);
        }
        cause = e.source();
    }
    None
}

/// The data roots of a tool run without a configuration: the folder
/// itself, or the folder of a file.
pub fn own_folder(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .map_or_else(|| path.to_path_buf(), Path::to_path_buf)
    }
}

/// Registers the store of dataset `dataset` in `state`, confined to
/// `roots`, and returns the URL under which its file or folder `path`
/// (absolute) is read through it.
pub fn confine(
    state: &SessionState,
    dataset: &str,
    path: &Path,
    roots: &[PathBuf],
) -> Result<ListingTableUrl> {
    let fail = |reason: String| Error::Table {
        name: dataset.to_owned(),
        path: path.display().to_string(),
        reason,
    };
    let file_url = if path.is_dir() {
        Url::from_directory_path(path)
    } else {
        Url::from_file_path(path)
    }
    .map_err(|()| fail("the path must be absolute".to_owned()))?;
    let mut url =
        Url::parse(&format!("{SCHEME}://{}", host_of(dataset))).map_err(|e| fail(e.to_string()))?;
    url.set_path(file_url.path());
    let store = RootedStore::new(dataset, roots);
    state
        .runtime_env()
        .register_object_store(&url, Arc::new(store));
    ListingTableUrl::try_new(url, None).map_err(|e| fail(e.strip_backtrace()))
}

/// The URL host of a dataset's store: its name when that is a plain
/// identifier, its bytes in hex otherwise.
fn host_of(dataset: &str) -> String {
    let plain = !dataset.is_empty()
        && dataset
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if plain {
        dataset.to_owned()
    } else {
        let hex: String = dataset.bytes().map(|b| format!("{b:02x}")).collect();
        format!("x-{hex}")
    }
}

/// The local file system, read-only, for one dataset, reading only files
/// that really lie under its data roots.
#[derive(Debug)]
pub struct RootedStore {
    dataset: String,
    /// The data roots, resolved (those that do not exist are left out).
    roots: Vec<PathBuf>,
    files: LocalFileSystem,
}

impl RootedStore {
    /// The store of `dataset`, confined to `roots`.
    pub fn new(dataset: &str, roots: &[PathBuf]) -> Self {
        Self {
            dataset: dataset.to_owned(),
            roots: roots.iter().filter_map(|r| r.canonicalize().ok()).collect(),
            files: LocalFileSystem::new(),
        }
    }

    /// Refuses `file`, opened by the name `name`, unless it really lies
    /// under a data root.
    fn check_opened(&self, file: &File, name: &Path) -> Result<(), OutsideRoots> {
        match opened_path(file, name) {
            Ok(real) if self.roots.iter().any(|root| real.starts_with(root)) => Ok(()),
            _ => Err(OutsideRoots {
                dataset: self.dataset.clone(),
                path: self.relative(name),
            }),
        }
    }

    /// `name` relative to the data root it lies under, as it is otherwise.
    fn relative(&self, name: &Path) -> String {
        self.roots
            .iter()
            .find_map(|root| name.strip_prefix(root).ok())
            .unwrap_or(name)
            .display()
            .to_string()
    }

    fn read_only(&self) -> datafusion::object_store::Error {
        datafusion::object_store::Error::NotSupported {
            source: format!("the files of the dataset `{}` are read-only", self.dataset).into(),
        }
    }
}

/// Where the open `file` (opened by the name `name`) really is.
fn opened_path(file: &File, name: &Path) -> std::io::Result<PathBuf> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if let Ok(real) = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())) {
            return Ok(real);
        }
    }
    same_file_by_name(file, name)
}

/// `name` resolved, when it leads to the very file `file` (same device and
/// inode).
fn same_file_by_name(file: &File, name: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let real = name.canonicalize()?;
    let (opened, named) = (file.metadata()?, std::fs::metadata(&real)?);
    if (opened.dev(), opened.ino()) == (named.dev(), named.ino()) {
        Ok(real)
    } else {
        Err(std::io::Error::other(
            "the file changed while it was opened",
        ))
    }
}

impl fmt::Display for RootedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootedStore({})", self.dataset)
    }
}

type StoreResult<T> = datafusion::object_store::Result<T>;

#[async_trait]
impl ObjectStore for RootedStore {
    async fn put_opts(
        &self,
        _: &StorePath,
        _: PutPayload,
        _: PutOptions,
    ) -> StoreResult<PutResult> {
        Err(self.read_only())
    }

    async fn put_multipart_opts(
        &self,
        _: &StorePath,
        _: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        Err(self.read_only())
    }

    /// Every read (of a range, of metadata too) goes through here: the
    /// file is opened, then checked, then handed over.
    async fn get_opts(&self, location: &StorePath, options: GetOptions) -> StoreResult<GetResult> {
        let result = self.files.get_opts(location, options).await?;
        let checked = match &result.payload {
            GetResultPayload::File(file, name) => self.check_opened(file, name),
            GetResultPayload::Stream(_) => Err(OutsideRoots {
                dataset: self.dataset.clone(),
                path: location.to_string(),
            }),
        };
        checked.map_err(|refusal| datafusion::object_store::Error::Generic {
            store: "data roots",
            source: Box::new(refusal),
        })?;
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<StorePath>>,
    ) -> BoxStream<'static, StoreResult<StorePath>> {
        let dataset = self.dataset.clone();
        locations
            .map(move |_| {
                Err(datafusion::object_store::Error::NotSupported {
                    source: format!("the files of the dataset `{dataset}` are read-only").into(),
                })
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&StorePath>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.files.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&StorePath>,
        offset: &StorePath,
    ) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        self.files.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&StorePath>) -> StoreResult<ListResult> {
        self.files.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, _: &StorePath, _: &StorePath, _: CopyOptions) -> StoreResult<()> {
        Err(self.read_only())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::ObjectStoreExt;
    use std::os::unix::fs::symlink;

    struct Layout {
        root: tempfile::TempDir,
        outside: tempfile::TempDir,
    }

    fn layout() -> Layout {
        let layout = Layout {
            root: tempfile::tempdir().unwrap(),
            outside: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir(layout.root.path().join("data")).unwrap();
        std::fs::write(layout.root.path().join("data/a.csv"), "x\n1\n").unwrap();
        std::fs::write(layout.outside.path().join("secret.csv"), "x\n999\n").unwrap();
        layout
    }

    fn store(layout: &Layout) -> RootedStore {
        RootedStore::new("readings", &[layout.root.path().to_path_buf()])
    }

    fn location(path: &Path) -> StorePath {
        StorePath::from_absolute_path(path).unwrap()
    }

    fn refusal(error: &datafusion::object_store::Error) -> OutsideRoots {
        outside_roots_in(error).cloned().unwrap()
    }

    #[tokio::test]
    async fn a_file_under_the_root_is_read() {
        let layout = layout();
        let store = store(&layout);
        let bytes = store
            .get(&location(&layout.root.path().join("data/a.csv")))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"x\n1\n");
    }

    #[tokio::test]
    async fn a_link_out_of_the_roots_is_refused_for_reads_ranges_and_metadata() {
        let layout = layout();
        let link = layout.root.path().join("data/b.csv");
        symlink(layout.outside.path().join("secret.csv"), &link).unwrap();
        let store = store(&layout);
        let at = location(&link);
        let read = store.get(&at).await.unwrap_err();
        assert_eq!(
            refusal(&read),
            OutsideRoots {
                dataset: "readings".into(),
                path: "data/b.csv".into()
            }
        );
        let text = refusal(&read).to_string();
        assert!(text.contains("`data_roots`"), "{text}");
        assert!(!text.contains("999") && !text.contains("secret"), "{text}");
        assert!(store.get_range(&at, 0..3).await.is_err());
        assert!(store.get_ranges(&at, &[0..1, 2..3]).await.is_err());
        assert!(store.head(&at).await.is_err());
    }

    #[tokio::test]
    async fn a_link_to_a_file_inside_a_root_is_read_like_the_file() {
        let layout = layout();
        let link = layout.root.path().join("data/again.csv");
        symlink(layout.root.path().join("data/a.csv"), &link).unwrap();
        let bytes = store(&layout)
            .get_range(&location(&link), 0..4)
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"x\n1\n");
    }

    #[tokio::test]
    async fn a_folder_linked_out_of_the_roots_is_refused_and_nothing_is_written() {
        let layout = layout();
        let linked = layout.root.path().join("elsewhere");
        symlink(layout.outside.path(), &linked).unwrap();
        let store = store(&layout);
        let error = store
            .get(&location(&linked.join("secret.csv")))
            .await
            .unwrap_err();
        assert_eq!(refusal(&error).path, "elsewhere/secret.csv");
        let target = location(&layout.root.path().join("data/new.csv"));
        assert!(store.put(&target, "x".into()).await.is_err());
        assert!(
            store
                .delete(&location(&layout.root.path().join("data/a.csv")))
                .await
                .is_err()
        );
        assert!(layout.root.path().join("data/a.csv").exists());
        assert!(!layout.root.path().join("data/new.csv").exists());
    }

    #[test]
    fn without_proc_the_name_must_lead_to_the_file_opened() {
        let layout = layout();
        let name = layout.root.path().join("data/a.csv");
        let file = File::open(&name).unwrap();
        let real = same_file_by_name(&file, &name).unwrap();
        assert_eq!(real, name.canonicalize().unwrap());
        // The name swapped for a link after the open: not the file opened.
        std::fs::remove_file(&name).unwrap();
        symlink(layout.outside.path().join("secret.csv"), &name).unwrap();
        assert!(same_file_by_name(&file, &name).is_err());
    }

    #[test]
    fn store_hosts_are_plain_or_hex() {
        assert_eq!(host_of("telemetry_2026"), "telemetry_2026");
        assert_eq!(host_of("A b"), "x-412062");
    }

    fn rows_policy() -> policy::model::UsagePolicy {
        policy::model::UsagePolicy::from_json_str(
            r#"{"type": "UsagePolicy", "version": 1, "id": "p", "issuer": "x",
                "target": {"dataset": "readings"}, "purposes": ["test"],
                "validity": {"not_before": "2020-01-01T00:00:00Z", "not_after": "2099-01-01T00:00:00Z"},
                "access": "rows", "columns": {"x": "measure"}}"#,
        )
        .unwrap()
    }

    async fn engine_over(layout: &Layout, path: &Path) -> crate::engine::GovernedEngine {
        let limits = crate::engine::ExecutionLimits::default();
        let mut engine = crate::engine::GovernedEngine::new(limits).unwrap();
        let roots = [layout.root.path().to_path_buf()];
        engine
            .add_dataset(rows_policy(), path, &roots)
            .await
            .unwrap();
        engine
    }

    fn assert_refused(result: Result<crate::engine::Answer>, path: &str) {
        match result {
            Err(Error::OutsideRoots(refusal)) => {
                assert_eq!(
                    (refusal.dataset.as_str(), refusal.path.as_str()),
                    ("readings", path)
                );
            }
            Err(other) => panic!("refused otherwise: {other}"),
            Ok(answer) => panic!("answered {} rows", answer.rows),
        }
    }

    #[tokio::test]
    async fn a_query_over_a_file_swapped_for_a_link_is_refused_each_time() {
        let layout = layout();
        let file = layout.root.path().join("data/a.csv");
        let engine = engine_over(&layout, &file).await;
        let sql = "SELECT x FROM readings";
        let now = chrono::Utc::now();
        assert_eq!(engine.query(sql, now).await.unwrap().rows, 1);
        std::fs::remove_file(&file).unwrap();
        symlink(layout.outside.path().join("secret.csv"), &file).unwrap();
        // The cached plan too reads the files afresh, through the check.
        assert_refused(engine.query(sql, now).await, "data/a.csv");
        assert_refused(
            engine.query("SELECT sum(x) AS s FROM readings", now).await,
            "data/a.csv",
        );
        // Mended: the file itself again.
        std::fs::remove_file(&file).unwrap();
        std::fs::write(&file, "x\n5\n").unwrap();
        assert_eq!(engine.query(sql, now).await.unwrap().rows, 1);
    }

    #[tokio::test]
    async fn a_link_added_to_a_folder_after_its_listing_is_never_read() {
        let layout = layout();
        let folder = layout.root.path().join("data");
        // The engine lists the folder when the dataset is added and keeps
        // that listing: a file added later is not read at all.
        let engine = engine_over(&layout, &folder).await;
        symlink(
            layout.outside.path().join("secret.csv"),
            folder.join("b.csv"),
        )
        .unwrap();
        let sql = "SELECT x FROM readings";
        let answer = engine.query(sql, chrono::Utc::now()).await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&answer.batches)
            .unwrap()
            .to_string();
        assert_eq!(answer.rows, 1, "{text}");
        assert!(!text.contains("999"), "{text}");
        // An engine that lists the folder with the link in it refuses.
        let fresh = crate::engine::GovernedEngine::new(crate::engine::ExecutionLimits::default());
        let mut fresh = fresh.unwrap();
        let roots = [layout.root.path().to_path_buf()];
        let added = fresh.add_dataset(rows_policy(), &folder, &roots).await;
        assert!(
            matches!(&added, Err(Error::OutsideRoots(r)) if r.path == "data/b.csv"),
            "{added:?}"
        );
    }
}
