//! A connector served on a loopback port, as the demo and the benchmark
//! run their participants: opened from its home, started, stopped.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use connector::server::RunningConnector;
use connector::service::Connector;
use tokio::net::TcpListener;

/// A connector served on a loopback port.
pub struct Served {
    /// The participant's connector.
    pub connector: Arc<Connector>,
    /// Its base URL.
    pub url: String,
    /// Its home folder.
    pub home: PathBuf,
    server: RunningConnector,
}

impl Served {
    /// Opens the connector of `home` and serves it on `listener`.
    pub fn start(home: PathBuf, listener: TcpListener) -> Result<Self> {
        let connector = Arc::new(connector::home::open(&home)?);
        let server = RunningConnector::start(Arc::clone(&connector), listener)?;
        Ok(Self {
            connector,
            url: server.url(),
            home,
            server,
        })
    }

    /// Stops the server and releases the connector's stores.
    pub async fn shut_down(self) -> Result<()> {
        let Self {
            connector, server, ..
        } = self;
        drop(connector);
        server.stop().await.context("stopping a connector")
    }
}
