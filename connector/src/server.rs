//! Serving a connector on a TCP listener, with start and stop audited.

use std::sync::Arc;

use tokio::net::TcpListener;

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
    let app = crate::api::router(Arc::clone(&connector));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    connector
        .record(AuditEntry::new(RecordKind::Stop, connector.id()))
        .await?;
    served.map_err(|e| Error::Storage(format!("the server stopped: {e}")))
}
