//! The end-to-end leg: a provider connector serving the TPC-H tables over
//! loopback HTTP, a consumer connector that contracted for both offers, and
//! governed queries answered as Arrow IPC streams.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use connector::answer::from_arrow_stream;
use connector::client::PeerClient;
use connector::datasets::DatasetSpec;
use connector::home::{InitOptions, init, issue_credential};
use connector::server::RunningConnector;
use connector::service::Connector;
use datafusion::arrow::record_batch::RecordBatch;
use hyper::Method;
use policy::credential::{Attributes, Authority};
use policy::keys::KeyPair;
use policy::model::UsagePolicy;
use serde_json::{Value, json};

use super::queries::{Mode, PURPOSE, policy_json};

/// The provider's participant id.
pub const PROVIDER: &str = "platform-tpch";
const CONSUMER: &str = "sme-bench";

/// One connector serving on loopback.
struct Served {
    connector: Arc<Connector>,
    url: String,
    server: RunningConnector,
}

impl Served {
    async fn stop(self) -> Result<()> {
        let Self {
            connector, server, ..
        } = self;
        drop(connector);
        server.stop().await.context("stopping a connector")
    }
}

/// A provider and a consumer on loopback, with one agreement per mode for
/// each dataset the provider serves.
pub struct Loopback {
    provider: Served,
    consumer: Served,
    consumer_key: Arc<KeyPair>,
    agreements: Vec<(String, Mode, String)>,
    _homes: tempfile::TempDir,
}

impl Loopback {
    /// Starts both connectors; the provider serves `datasets` (id, folder),
    /// all under the data root `root`, each offered in both modes.
    pub async fn start(root: &Path, datasets: &[(&str, &Path)]) -> Result<Self> {
        let homes = tempfile::tempdir().context("cannot create a temporary folder")?;
        let authority = Authority::new("authority", KeyPair::generate()?);
        let authority_file = homes.path().join("authority.json");
        std::fs::write(
            &authority_file,
            serde_json::to_string(&authority.trusted())?,
        )
        .context("cannot write the authority file")?;
        let provider = serve(&authority, &authority_file, homes.path(), PROVIDER, root).await?;
        let consumer = serve(&authority, &authority_file, homes.path(), CONSUMER, root).await?;
        let consumer_key = Arc::new(KeyPair::load(
            &homes.path().join(CONSUMER).join("keys/private.pk8"),
        )?);
        let mut agreements = Vec::new();
        for (id, dir) in datasets {
            provider
                .connector
                .register_dataset(DatasetSpec {
                    id: (*id).to_owned(),
                    path: dir.to_path_buf(),
                    title: String::new(),
                    description: "TPC-H lineitem".to_owned(),
                    keywords: Vec::new(),
                    sector: None,
                })
                .await?;
            for mode in [Mode::Rows, Mode::Aggregate] {
                let offer = format!("{id}_{}", mode.as_str());
                let policy = UsagePolicy::from_json_str(&policy_json(mode, id, PROVIDER))?;
                provider.connector.create_offer(&offer, id, policy).await?;
                let contract = consumer
                    .connector
                    .negotiate(&provider.url, &offer, PURPOSE, Duration::from_secs(10))
                    .await?;
                agreements.push(((*id).to_owned(), mode, contract.agreement.jws().to_owned()));
            }
        }
        Ok(Self {
            provider,
            consumer,
            consumer_key,
            agreements,
            _homes: homes,
        })
    }

    /// A client of the consumer's, for one concurrent caller.
    pub fn client(&self) -> PeerClient {
        PeerClient::new(
            CONSUMER,
            self.consumer.connector.credential(),
            Arc::clone(&self.consumer_key),
        )
    }

    /// The body of a query on `dataset` under its `mode` agreement.
    pub fn request(&self, dataset: &str, mode: Mode, sql: &str) -> Result<Value> {
        let agreement = self
            .agreements
            .iter()
            .find(|(id, m, _)| id == dataset && *m == mode)
            .map(|(_, _, jws)| jws)
            .ok_or_else(|| anyhow!("no `{}` agreement on `{dataset}`", mode.as_str()))?;
        Ok(json!({ "agreement": agreement, "sql": sql }))
    }

    /// The provider's query endpoint.
    pub fn query_url(&self) -> String {
        format!("{}/query", self.provider.url)
    }

    /// Sends a query and decodes the Arrow IPC answer.
    pub async fn query(&self, client: &PeerClient, body: &Value) -> Result<Vec<RecordBatch>> {
        post_query(client, &self.query_url(), body).await
    }

    /// Stops both connectors.
    pub async fn stop(self) -> Result<()> {
        self.consumer.stop().await?;
        self.provider.stop().await
    }
}

/// `memory_table_bytes` of the benchmark's provider.
pub const MEMORY_TABLE_BYTES: u64 = 128 << 20;

/// Sends `body` to the provider's `url` and decodes the Arrow IPC answer.
pub async fn post_query(client: &PeerClient, url: &str, body: &Value) -> Result<Vec<RecordBatch>> {
    let reply = client.call(Method::POST, url, PROVIDER, Some(body)).await?;
    if reply.status != 200 {
        return Err(anyhow!(
            "the provider answered {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ));
    }
    Ok(from_arrow_stream(&reply.body)?)
}

/// Creates the home of participant `id` (credential issued by
/// `authority`) and serves its connector on a free loopback port.
async fn serve(
    authority: &Authority,
    authority_file: &Path,
    homes: &Path,
    id: &str,
    root: &Path,
) -> Result<Served> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot listen on loopback")?;
    let address = listener.local_addr()?;
    let home: PathBuf = homes.join(id);
    init(
        &home,
        &InitOptions {
            id: id.to_owned(),
            authority_file: authority_file.to_owned(),
            data_roots: vec![root.to_owned()],
            listen: Some(address.to_string()),
            catalog_url: None,
        },
    )?;
    // Datasets up to 128 MiB of files are held in memory: the small-query
    // table is, `lineitem` at scale factor 1 (359 MB) is read from Parquet.
    let config = home.join(connector::config::CONFIG_FILE);
    let text = std::fs::read_to_string(&config).context("cannot read the config")?;
    let mut lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with("memory_table_bytes"))
        .map(str::to_owned)
        .collect();
    lines.insert(0, format!("memory_table_bytes = {MEMORY_TABLE_BYTES}"));
    std::fs::write(&config, lines.join("\n") + "\n").context("cannot write the config")?;
    issue_credential(&home, authority, Attributes::default(), 86_400)
        .context("cannot issue the credential")?;
    let connector = Arc::new(connector::home::open(&home)?);
    let server = RunningConnector::start(Arc::clone(&connector), listener)?;
    Ok(Served {
        connector,
        url: server.url(),
        server,
    })
}
