//! Connector commands: `init`, `connector serve`, the owner's `dataset`,
//! `offer` and `agreement` commands (through the running connector's admin
//! API), the consumer's `negotiate` and `query`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use connector::answer::{AnswerFormat, from_arrow_stream};
use connector::client::HttpClient;
use connector::config::ConnectorConfig;
use connector::home::{InitOptions, admin_token, init};
use hyper::Method;
use serde_json::{Value, json};

use super::read_text;

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Arguments of `dataspace init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The connector's home folder (created).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// This participant's id.
    #[arg(long, value_name = "ID")]
    id: String,
    /// The authority to trust (`authority.json` from `authority init`).
    #[arg(long, value_name = "FILE")]
    authority: PathBuf,
    /// A folder datasets may be registered from (repeat for several).
    #[arg(long = "data-root", value_name = "DIR")]
    data_roots: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// The shared catalog's URL.
    #[arg(long, value_name = "URL")]
    catalog: Option<String>,
}

/// `dataspace init`: keys, configuration and admin token in a new home.
pub fn run_init(args: &InitArgs) -> Result<()> {
    let report = init(
        &args.home,
        &InitOptions {
            id: args.id.clone(),
            authority_file: args.authority.clone(),
            data_roots: args.data_roots.clone(),
            listen: args.listen.clone(),
            catalog_url: args.catalog.clone(),
        },
    )?;
    println!(
        "created connector `{}` in `{}` (key id {})",
        args.id,
        args.home.display(),
        report.key_id
    );
    println!(
        "admin token (also in {}/admin.token): {}",
        args.home.display(),
        report.admin_token
    );
    println!("next: have the authority issue a credential:");
    println!(
        "  dataspace authority issue --authority AUTHORITY_DIR --participant {} --public-key {} --out {}/credential.jws",
        args.id,
        report.public_key_file.display(),
        args.home.display()
    );
    Ok(())
}

/// Commands on a connector service.
#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// Run the connector's HTTP API until interrupted (Ctrl-C).
    Serve(ServeArgs),
}

/// Arguments of `dataspace connector serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The connector's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// Start even though the audit log is broken (damaged, cut short, or not
    /// what its signed head says): export the records from the first broken
    /// one on to `HOME/audit-lost-*.jsonl`, remove them, and append a signed
    /// `recovered` record naming what was lost. Without it, the connector
    /// refuses to start on a broken log.
    #[arg(long)]
    recover_audit: bool,
}

/// A home folder.
#[derive(Debug, Args)]
pub struct HomeArgs {
    /// The connector's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
}

impl ConnectorCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Serve(args) => runtime()?.block_on(serve(&args.home, args.recover_audit)),
        }
    }
}

async fn serve(home: &Path, recover_audit: bool) -> Result<()> {
    let connector = if recover_audit {
        let (connector, recovery) = connector::home::open_recovering(home)?;
        match recovery {
            Some(done) => {
                let c = &done.claims;
                let lost = match c.lost_to {
                    Some(to) => format!("records #{}..=#{to} are lost", c.lost_from),
                    None => format!("nothing is known lost after #{}", c.lost_from),
                };
                eprintln!(
                    "audit log recovered: {}; {lost}; signed `recovered` record #{}",
                    c.reason, c.seq
                );
                if let Some(path) = &done.exported {
                    eprintln!(
                        "the {} records removed are in `{}`",
                        c.removed,
                        path.display()
                    );
                }
            }
            None => eprintln!("the audit log is intact: nothing to recover"),
        }
        connector
    } else {
        connector::home::open(home)?
    };
    let connector = Arc::new(connector);
    let listen = connector.config().listen.clone();
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on `{listen}`"))?;
    println!(
        "connector `{}` listening on http://{}",
        connector.id(),
        listener.local_addr()?
    );
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    connector::server::serve(connector, listener, shutdown).await?;
    Ok(())
}

/// How long owner commands wait for a connector that is starting.
const STARTUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The owner's connection to its running connector.
struct Owner {
    base: String,
    token: String,
    http: HttpClient,
}

impl Owner {
    fn of(home: &Path) -> Result<Self> {
        let config = ConnectorConfig::load(home)?;
        Ok(Self {
            base: config.public_url(),
            token: admin_token(home)?,
            http: HttpClient::new(),
        })
    }

    /// Waits up to [`STARTUP_WAIT`] for the connector to accept
    /// connections, so that a command right after `connector serve ... &`
    /// does not fail while the server is still starting. Nothing is sent
    /// until a connection is accepted, so no request is ever repeated.
    async fn wait_until_listening(&self) {
        let address = self
            .base
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let deadline = std::time::Instant::now() + STARTUP_WAIT;
        let mut told = false;
        while tokio::net::TcpStream::connect(&address).await.is_err()
            && std::time::Instant::now() < deadline
        {
            if !told {
                eprintln!("waiting for the connector at {} ...", self.base);
                told = true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        self.wait_until_listening().await;
        let auth = format!("Bearer {}", self.token);
        let body = body.map(|b| b.to_string().into_bytes());
        let reply = self
            .http
            .send(
                method,
                &format!("{}{path}", self.base),
                &[("authorization", auth.as_str())],
                body,
            )
            .await
            .context("is `dataspace connector serve` running for this home?")?;
        if reply.status == hyper::StatusCode::NO_CONTENT {
            return Ok(Value::Null);
        }
        Ok(reply.json()?)
    }
}

/// The owner's dataset commands.
#[derive(Debug, Subcommand)]
pub enum DatasetCommand {
    /// Register (or update) a CSV, Parquet or Arrow IPC file or folder under a data root.
    Add(DatasetAddArgs),
    /// List the registered datasets.
    List(HomeArgs),
    /// Remove a dataset and its offers.
    Remove(IdArgs),
}

/// Arguments of `dataspace dataset add`.
#[derive(Debug, Args)]
pub struct DatasetAddArgs {
    /// The connector's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The dataset id (lower-case letters, digits, `_`): the table name consumers query.
    #[arg(long, value_name = "ID")]
    id: String,
    /// The file or folder.
    #[arg(long, value_name = "PATH")]
    path: PathBuf,
    /// A human title.
    #[arg(long, default_value = "")]
    title: String,
    /// What the data is.
    #[arg(long, default_value = "")]
    description: String,
    /// A search word (repeat).
    #[arg(long = "keyword")]
    keywords: Vec<String>,
    /// Industrial sector.
    #[arg(long)]
    sector: Option<String>,
}

/// A home and an id.
#[derive(Debug, Args)]
pub struct IdArgs {
    /// The connector's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The id.
    #[arg(value_name = "ID")]
    id: String,
}

impl DatasetCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        runtime()?.block_on(async {
            match self {
                Self::Add(a) => {
                    let owner = Owner::of(&a.home)?;
                    let path = std::path::absolute(&a.path).context("cannot resolve the path")?;
                    let body = json!({ "id": a.id, "path": path, "title": a.title, "description": a.description,
                                       "keywords": a.keywords, "sector": a.sector });
                    let done = with_progress("registering (reading schema and counting rows)", owner.call(Method::POST, "/admin/datasets", Some(body))).await?;
                    println!("registered `{}`: {} rows, {} columns", a.id, done["rows"], done["columns"].as_array().map_or(0, Vec::len));
                }
                Self::List(h) => print_json(&Owner::of(&h.home)?.call(Method::GET, "/admin/datasets", None).await?),
                Self::Remove(i) => {
                    Owner::of(&i.home)?.call(Method::DELETE, &format!("/admin/datasets/{}", i.id), None).await?;
                    println!("removed `{}`", i.id);
                }
            }
            Ok(())
        })
    }
}

/// Shows a spinner on stderr while `work` runs.
async fn with_progress<T>(
    what: &str,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let started = std::time::Instant::now();
    let mut work = std::pin::pin!(work);
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            done = &mut work => {
                eprintln!("\r{what}: done in {:.1} s", started.elapsed().as_secs_f64());
                return done;
            }
            _ = tick.tick() => {
                eprint!("\r{what}: {:.0} s", started.elapsed().as_secs_f64());
                let _ = std::io::stderr().flush();
            }
        }
    }
}

fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// The owner's offer commands.
#[derive(Debug, Subcommand)]
pub enum OfferCommand {
    /// Sign a usage policy and offer a registered dataset under it.
    Create(OfferCreateArgs),
}

/// Arguments of `dataspace offer create`.
#[derive(Debug, Args)]
pub struct OfferCreateArgs {
    /// The connector's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The offer id (lower-case letters, digits, `_`).
    #[arg(long, value_name = "ID")]
    id: String,
    /// The registered dataset.
    #[arg(long, value_name = "ID")]
    dataset: String,
    /// The usage policy (JSON, `docs/usage-policy.md`).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
}

impl OfferCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self::Create(a) = self;
        let policy: Value =
            serde_json::from_str(&read_text(&a.policy)?).context("the policy is not JSON")?;
        runtime()?.block_on(async {
            let done = Owner::of(&a.home)?
                .call(
                    Method::POST,
                    "/admin/offers",
                    Some(json!({ "id": a.id, "dataset": a.dataset, "policy": policy })),
                )
                .await?;
            println!(
                "offered `{}` as `{}`",
                a.dataset,
                done["id"].as_str().unwrap_or_default()
            );
            Ok(())
        })
    }
}

/// The owner's agreement commands.
#[derive(Debug, Subcommand)]
pub enum AgreementCommand {
    /// List negotiations and agreements.
    List(HomeArgs),
    /// Approve a waiting contract request (manual approval mode).
    Approve(IdArgs),
    /// Reject a waiting contract request.
    Reject(IdArgs),
    /// Revoke an agreement; its very next query is refused.
    Revoke(IdArgs),
}

impl AgreementCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        runtime()?.block_on(async {
            let (home, method, path) = match &self {
                Self::List(h) => (&h.home, Method::GET, "/admin/negotiations".to_owned()),
                Self::Approve(i) => (
                    &i.home,
                    Method::POST,
                    format!("/admin/negotiations/{}/approve", i.id),
                ),
                Self::Reject(i) => (
                    &i.home,
                    Method::POST,
                    format!("/admin/negotiations/{}/reject", i.id),
                ),
                Self::Revoke(i) => (
                    &i.home,
                    Method::POST,
                    format!("/admin/agreements/{}/revoke", i.id),
                ),
            };
            let answer = Owner::of(home)?.call(method, &path, None).await?;
            let list = match answer.get("negotiations").and_then(Value::as_array) {
                Some(all) => all.clone(),
                None => vec![answer],
            };
            for n in &list {
                let reason = n["reason"]
                    .as_str()
                    .map(|r| format!("  ({r})"))
                    .unwrap_or_default();
                println!(
                    "{}  {}{reason}",
                    n["id"].as_str().unwrap_or("?"),
                    n["state"].as_str().unwrap_or("?")
                );
            }
            if list.is_empty() {
                println!("no negotiations yet");
            }
            Ok(())
        })
    }
}

/// Arguments of `dataspace negotiate`.
#[derive(Debug, Args)]
pub struct NegotiateArgs {
    /// The consumer's home folder (its connector must not be serving).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The provider connector's URL.
    #[arg(long, value_name = "URL")]
    provider: String,
    /// The offer id.
    #[arg(long, value_name = "ID")]
    offer: String,
    /// The purpose to declare (one of the policy's purposes).
    #[arg(long, value_name = "PURPOSE")]
    purpose: String,
    /// Seconds to wait for a provider's manual approval.
    #[arg(long, default_value_t = 60)]
    wait: u64,
}

/// `dataspace negotiate`.
pub fn run_negotiate(a: &NegotiateArgs) -> Result<()> {
    runtime()?.block_on(async {
        let connector = connector::home::open(&a.home)?;
        let contract = connector
            .negotiate(
                &a.provider,
                &a.offer,
                &a.purpose,
                Duration::from_secs(a.wait),
            )
            .await?;
        println!(
            "agreement `{}` with `{}` is FINALIZED",
            contract.id, contract.provider
        );
        println!(
            "dataset `{}`, purpose `{}`",
            contract.agreement.payload().dataset,
            contract.agreement.payload().purpose
        );
        Ok(())
    })
}

/// Output formats of `dataspace query`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    /// An aligned table.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON rows.
    Json,
    /// The raw Arrow IPC stream (to stdout or `--out`).
    Arrow,
}

/// Arguments of `dataspace query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The consumer's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The agreement id.
    #[arg(long, value_name = "ID")]
    agreement: String,
    /// One `SELECT` over the agreement's dataset.
    #[arg(long, value_name = "SQL")]
    sql: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write the answer to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// `dataspace query`.
pub fn run_query(a: &QueryArgs) -> Result<()> {
    runtime()?.block_on(async {
        let connector = connector::home::open(&a.home)?;
        let wire = if matches!(a.format, OutputFormat::Json) {
            AnswerFormat::Json
        } else {
            AnswerFormat::Arrow
        };
        let answer = connector.query_remote(&a.agreement, &a.sql, wire).await?;
        let bytes = match a.format {
            OutputFormat::Json | OutputFormat::Arrow => answer.body.clone(),
            OutputFormat::Table => {
                let batches = from_arrow_stream(&answer.body)?;
                format!(
                    "{}\n",
                    datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
                )
                .into_bytes()
            }
            OutputFormat::Csv => {
                let batches = from_arrow_stream(&answer.body)?;
                let mut out = Vec::new();
                let mut writer = datafusion::arrow::csv::Writer::new(&mut out);
                for b in &batches {
                    writer.write(b)?;
                }
                drop(writer);
                out
            }
        };
        match &a.out {
            Some(path) => std::fs::write(path, &bytes)
                .with_context(|| format!("cannot write `{}`", path.display()))?,
            None => std::io::stdout().write_all(&bytes)?,
        }
        let r = answer.receipt.payload();
        eprintln!(
            "{} rows; receipt verified (audit record #{} at the provider)",
            r.rows, r.audit_seq
        );
        Ok(())
    })
}

/// The consumer's receipts.
#[derive(Debug, Subcommand)]
pub enum ReceiptsCommand {
    /// Write every kept receipt to a folder, one `*.jws` file each, for a
    /// data officer's `dataspace audit verify --home PROVIDER_HOME --receipts DIR`.
    Export(ReceiptsExportArgs),
}

/// Arguments of `dataspace receipts export`.
#[derive(Debug, Args)]
pub struct ReceiptsExportArgs {
    /// The consumer's home folder.
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The folder to write to (created; existing receipts are kept).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Only the receipts of this provider.
    #[arg(long, value_name = "ID")]
    provider: Option<String>,
}

impl ReceiptsCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        let Self::Export(a) = self;
        runtime()?.block_on(async {
            let connector = connector::home::open(&a.home)?;
            std::fs::create_dir_all(&a.out)
                .with_context(|| format!("cannot create `{}`", a.out.display()))?;
            let mut written = 0;
            for receipt in connector.all_receipts()? {
                let r = receipt.payload();
                if a.provider.as_ref().is_some_and(|p| *p != r.provider) {
                    continue;
                }
                let name = format!(
                    "{}-{}-{:020}.jws",
                    safe_name(&r.provider),
                    safe_name(&r.agreement_id),
                    r.audit_seq
                );
                let path = a.out.join(name);
                std::fs::write(&path, format!("{}\n", receipt.jws()))
                    .with_context(|| format!("cannot write `{}`", path.display()))?;
                written += 1;
            }
            connector.close().await;
            println!("{written} receipts written to `{}`", a.out.display());
            Ok(())
        })
    }
}

/// `id` with every character but letters, digits, `-` and `_` replaced, for
/// a file name.
fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
