//! A provider and a consumer through the library API, without the CLI:
//! an authority admits both, the provider serves a CSV file under an
//! aggregate-only usage policy, the consumer contracts for a purpose and
//! queries; one answer, one refusal.
//!
//! ```sh
//! cargo run --example provider_consumer
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use connector::answer::{AnswerFormat, from_arrow_stream};
use connector::datasets::DatasetSpec;
use connector::home::{InitOptions, init, issue_credential};
use connector::server::RunningConnector;
use datafusion::arrow::util::pretty::pretty_format_batches;
use policy::credential::{Attributes, Authority};
use policy::keys::KeyPair;
use policy::model::UsagePolicy;
use tokio::net::TcpListener;

/// Creates `id`'s home under `dir` with a credential from `authority`, opens
/// its connector and serves it on a free loopback port until stopped.
async fn participant(
    dir: &Path,
    authority: &Authority,
    id: &str,
    role: &str,
    data_roots: Vec<std::path::PathBuf>,
) -> Result<RunningConnector> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let home = dir.join(id);
    init(
        &home,
        &InitOptions {
            id: id.into(),
            authority_file: dir.join("authority.json"),
            data_roots,
            listen: Some(addr.to_string()),
            catalog_url: None,
        },
    )?;
    // The authority attests who the participant is and which key it holds.
    let mut attributes = Attributes::default();
    attributes.set("role", role)?;
    issue_credential(&home, authority, attributes, 86_400)?;
    let connector = Arc::new(connector::home::open(&home)?);
    Ok(RunningConnector::start(connector, listener)?)
}

#[tokio::main]
async fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let authority = Authority::new("authority", KeyPair::generate()?);
    std::fs::write(
        dir.path().join("authority.json"),
        serde_json::to_string(&authority.trusted())?,
    )?;

    // The provider's data: one reading per machine and hour.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let mut csv = String::from("machine,site,temperature\n");
    for i in 0..600 {
        let site = ["north", "south"][i % 2];
        csv.push_str(&format!("M{},{site},{}\n", i % 30, 60 + i % 25));
    }
    std::fs::write(data.join("readings.csv"), csv)?;

    let provider_server = participant(
        dir.path(),
        &authority,
        "provider",
        "platform",
        vec![data.clone()],
    )
    .await?;
    let consumer_server = participant(dir.path(), &authority, "consumer", "sme", vec![]).await?;
    let (provider, consumer) = (provider_server.connector(), consumer_server.connector());

    provider
        .register_dataset(DatasetSpec {
            id: "readings".into(),
            path: data.join("readings.csv"),
            title: "Machine readings".into(),
            description: String::new(),
            keywords: vec![],
            sector: None,
        })
        .await?;
    let policy = UsagePolicy::from_json_str(
        r#"{
          "type": "UsagePolicy", "version": 1, "id": "urn:policy:example",
          "issuer": "provider", "target": { "dataset": "readings" },
          "purposes": ["benchmarking"],
          "validity": { "not_before": "2026-01-01T00:00:00Z", "not_after": "2030-12-31T23:59:59Z" },
          "access": "aggregate",
          "columns": { "machine": "entity", "site": "dimension", "temperature": "measure" },
          "aggregation": { "min_rows": 5, "min_entities": 5, "functions": ["count", "avg"] },
          "joins": "none"
        }"#,
    )?;
    provider
        .create_offer("readings_offer", "readings", policy)
        .await?;

    // The consumer contracts for a purpose; both sides sign the agreement.
    let contract = consumer
        .negotiate(
            &provider_server.url(),
            "readings_offer",
            "benchmarking",
            Duration::from_secs(5),
        )
        .await
        .context("negotiating")?;
    println!("agreement {}", contract.id);

    let sql = "SELECT site, count(*) AS n, avg(temperature) AS avg_t FROM readings GROUP BY site ORDER BY site";
    let answer = consumer
        .query_remote(&contract.id, sql, AnswerFormat::Arrow)
        .await?;
    println!(
        "{}",
        pretty_format_batches(&from_arrow_stream(&answer.body)?)?
    );
    println!(
        "receipt for audit record #{}",
        answer.receipt.payload().audit_seq
    );

    let refused = consumer
        .query_remote(
            &contract.id,
            "SELECT machine, temperature FROM readings",
            AnswerFormat::Arrow,
        )
        .await;
    match refused {
        Ok(_) => anyhow::bail!("the policy should have refused a per-machine query"),
        Err(e) => println!("refused, as the policy says: {e}"),
    }
    consumer_server.stop().await?;
    provider_server.stop().await?;
    Ok(())
}
