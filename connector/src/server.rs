//! Serving a connector on a TCP listener, with start and stop audited.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::audit::{AuditEntry, RecordKind};
use crate::service::Connector;
use crate::{Error, Result};

/// Serves `connector` on `listener` until `shutdown` resolves.
pub async fn serve(
    connector: Arc<Connector>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let address = listener
        .local_addr()
        .map_err(|e| Error::Storage(e.to_string()))?;
    connector
        .record(
            AuditEntry::new(RecordKind::Start, connector.id())
                .with_detail(format!("listening on {address}")),
        )
        .await?;
    // Each request knows its peer's address: refusals name it.
    let app = crate::api::router(Arc::clone(&connector))
        .into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    connector
        .record(AuditEntry::new(RecordKind::Stop, connector.id()))
        .await?;
    served.map_err(|e| Error::Storage(format!("the server stopped: {e}")))
}

/// How long [`RunningConnector::stop`] waits for the connector's other
/// handles to be dropped.
const RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connector served in a background task on a listener bound beforehand
/// (so its address can go into the home's configuration first): the demo,
/// the benchmarks and the tests run participants this way.
pub struct RunningConnector {
    connector: Arc<Connector>,
    addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

impl RunningConnector {
    /// Serves `connector` on `listener` until [`Self::stop`]. Must be
    /// called inside a tokio runtime.
    pub fn start(connector: Arc<Connector>, listener: TcpListener) -> Result<Self> {
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Storage(e.to_string()))?;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Arc::clone(&connector), listener, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            connector,
            addr,
            shutdown,
            task,
        })
    }

    /// Its base URL, `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The connector it serves.
    pub fn connector(&self) -> &Arc<Connector> {
        &self.connector
    }

    /// Stops serving (open requests finish), then closes the connector so
    /// that its home can be opened again. Every other handle of the
    /// connector must have been dropped.
    pub async fn stop(self) -> Result<()> {
        let _ = self.shutdown.send(());
        let served = self
            .task
            .await
            .map_err(|e| Error::Storage(format!("the server task failed: {e}")));
        // Work a request started may still hold the connector for a moment
        // after its connection closed (a task the client stopped waiting
        // for); wait for it, as for sled's lock.
        let deadline = std::time::Instant::now() + RELEASE_WAIT;
        while Arc::strong_count(&self.connector) > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Closed even when serving failed, so the stores are released.
        match Arc::try_unwrap(self.connector) {
            Ok(connector) => connector.close().await,
            Err(_) => {
                return Err(Error::Conflict(format!(
                    "the connector is still in use elsewhere after {} s",
                    RELEASE_WAIT.as_secs()
                )));
            }
        }
        served?
    }
}
