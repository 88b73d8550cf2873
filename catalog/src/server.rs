//! Running the catalog: open its home folder, listen, serve until told to
//! stop, flush the store.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{CatalogConfig, STORE_DIR};
use crate::service::{Catalog, CatalogSettings};
use crate::store::SledStore;
use crate::{Error, Result, api};

/// Opens the catalog of home folder `home`: its sled store (`HOME/store`)
/// and the trusted authority of `config`; rebuilds the search index.
pub fn open_catalog(home: &Path, config: &CatalogConfig) -> Result<Catalog> {
    config.validate()?;
    let authority = config.load_authority(home)?;
    let store = SledStore::open(&home.join(STORE_DIR))?;
    Catalog::open(Arc::new(store), authority, CatalogSettings::from(config))
}

/// A catalog serving HTTP in the background.
pub struct RunningCatalog {
    addr: SocketAddr,
    catalog: Arc<Catalog>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl RunningCatalog {
    /// Binds `listen` (port 0 picks a free port) and serves `catalog`.
    pub async fn start(catalog: Arc<Catalog>, listen: &str, max_body_bytes: usize) -> Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Listen {
                address: listen.to_owned(),
                source,
            })?;
        let addr = listener.local_addr().map_err(Error::Server)?;
        let app = api::router(Arc::clone(&catalog), max_body_bytes);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(Self {
            addr,
            catalog,
            shutdown,
            task,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The catalog it serves.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// Stops serving (open requests finish), then flushes the store.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        match self.task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(Error::Server(e)),
            Err(e) => return Err(Error::Server(std::io::Error::other(e))),
        }
        self.catalog.flush()
    }
}

/// `dataspace catalog serve`: opens the catalog in `home`, serves it on
/// `config.listen` until `shutdown` completes, then flushes the store.
/// `ready` is called with the bound address.
pub async fn serve(
    home: &Path,
    config: &CatalogConfig,
    ready: impl FnOnce(SocketAddr, usize),
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let catalog = Arc::new(open_catalog(home, config)?);
    let published = catalog.len();
    let running = RunningCatalog::start(catalog, &config.listen, config.max_body_bytes).await?;
    ready(running.addr(), published);
    shutdown.await;
    running.stop().await
}
