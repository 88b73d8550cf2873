//! `dataspace audit`: the data officer's commands. `verify` checks the chain
//! offline from a home folder (the connector stopped) or asks a running
//! connector; `list`, `usage`, `sql` and `export` ask a running connector
//! over HTTP with the owner's admin token (from the home folder or
//! `--token`).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use connector::client::HttpClient;
use connector::config::ConnectorConfig;
use connector::home::admin_token;
use hyper::Method;
use serde_json::{Value, json};

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain and signed checkpoints; names the first broken
    /// record. Offline from `--home` (the connector stopped), or through a
    /// running connector with `--connector`.
    Verify(Target),
    /// List audit records, newest first, with filters and pages.
    List(ListArgs),
    /// Usage figures per dataset, consumer and purpose; refusals by rule.
    Usage(UsageArgs),
    /// Run one read-only SQL query over the table `audit`.
    Sql(SqlArgs),
    /// Export audit records as JSON Lines or Parquet.
    Export(ExportArgs),
}

/// Which connector, and how to sign in.
#[derive(Debug, Args)]
pub struct Target {
    /// The connector's home folder (its URL and admin token; `verify` alone
    /// reads the log offline from it).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    /// The running connector's URL [default: the home's public URL].
    #[arg(long, value_name = "URL")]
    connector: Option<String>,
    /// The admin token [default: the home's `admin.token`].
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
}

/// Which records.
#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Records at or after this time (RFC 3339, e.g. 2025-01-31T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Records before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// The other participant.
    #[arg(long, value_name = "ID")]
    counterparty: Option<String>,
    /// The dataset.
    #[arg(long, value_name = "ID")]
    dataset: Option<String>,
    /// The agreement.
    #[arg(long, value_name = "ID")]
    agreement: Option<String>,
    /// The declared purpose.
    #[arg(long)]
    purpose: Option<String>,
    /// The decision (`answered`, `refused`, `failed`, ...).
    #[arg(long)]
    decision: Option<String>,
    /// The rule that decided (`denied_column`, ...).
    #[arg(long)]
    rule: Option<String>,
    /// The record kind (`query_refused`, `agreement_revoked`, ...).
    #[arg(long)]
    kind: Option<String>,
}

impl FilterArgs {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("counterparty", &self.counterparty),
            ("dataset", &self.dataset),
            ("agreement", &self.agreement),
            ("purpose", &self.purpose),
            ("decision", &self.decision),
            ("rule", &self.rule),
            ("kind", &self.kind),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|v| (name, v)))
        .collect()
    }
}

/// Arguments of `dataspace audit list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    filter: FilterArgs,
    /// Records per page (1 to 1000).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Continue after this record (the `next` a previous page printed).
    #[arg(long, value_name = "SEQ")]
    cursor: Option<u64>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    oldest_first: bool,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `dataspace audit usage`.
#[derive(Debug, Args)]
pub struct UsageArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    filter: FilterArgs,
}

/// Arguments of `dataspace audit sql`.
#[derive(Debug, Args)]
pub struct SqlArgs {
    #[command(flatten)]
    target: Target,
    /// One `SELECT` over the table `audit`.
    #[arg(value_name = "SQL")]
    sql: String,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

/// Export formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    /// One stored record per line, as stored (hashes included).
    Jsonl,
    /// The columns of the table `audit`.
    Parquet,
}

/// Arguments of `dataspace audit export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    target: Target,
    #[command(flatten)]
    filter: FilterArgs,
    /// The file format.
    #[arg(long, value_enum)]
    format: ExportFormat,
    /// The file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// An officer's connection to a running connector.
struct Officer {
    base: String,
    token: String,
    http: HttpClient,
}

impl Officer {
    fn of(target: &Target) -> Result<Self> {
        let base = match (&target.connector, &target.home) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(home)) => ConnectorConfig::load(home)?.public_url(),
            (None, None) => bail!("give the connector's `--connector URL` or its `--home DIR`"),
        };
        let token = match (&target.token, &target.home) {
            (Some(token), _) => token.clone(),
            (None, Some(home)) => admin_token(home)?,
            (None, None) => bail!("give `--token` or the connector's `--home DIR`"),
        };
        Ok(Self {
            base,
            token,
            http: HttpClient::new(),
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<connector::client::Reply> {
        let auth = format!("Bearer {}", self.token);
        let url = format!("{}{path}", self.base);
        let reply = self
            .http
            .send(
                method,
                &url,
                &[("authorization", auth.as_str())],
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
            .context("is the connector running?")?;
        if !reply.status.is_success() {
            reply.json()?;
            bail!("the connector answered {}", reply.status);
        }
        Ok(reply)
    }

    async fn json(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        Ok(self.send(method, path, body).await?.json()?)
    }
}

/// `pairs` as a query string (percent-encoded).
fn query(pairs: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(name);
        out.push('=');
        for byte in value.bytes() {
            if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                out.push(char::from(byte));
            } else {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

impl AuditCommand {
    /// Runs the command.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Verify(target) => verify(&target),
            Self::List(args) => runtime()?.block_on(list(&args)),
            Self::Usage(args) => runtime()?.block_on(usage(&args)),
            Self::Sql(args) => runtime()?.block_on(sql(&args)),
            Self::Export(args) => runtime()?.block_on(export(&args)),
        }
    }
}

fn verify(target: &Target) -> Result<()> {
    let (summary, intact, place) = match (&target.connector, &target.home) {
        (None, Some(home)) => {
            let report = connector::audit::verify_home(home)?;
            (
                report.to_string(),
                report.is_intact(),
                home.display().to_string(),
            )
        }
        _ => {
            let officer = Officer::of(target)?;
            let report = runtime()?.block_on(officer.json(Method::GET, "/audit/verify", None))?;
            let summary = report["summary"]
                .as_str()
                .unwrap_or("no summary")
                .to_owned();
            (summary, report["intact"] == json!(true), officer.base)
        }
    };
    println!("{summary}");
    if !intact {
        bail!("the audit log of `{place}` is broken");
    }
    Ok(())
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Prints rows of cells as aligned columns.
fn print_table(header: &[String], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count().min(60));
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let cell: String = cell.chars().take(60).collect();
            let _ = write!(out, "{cell:<width$}  ");
        }
        println!("{}", out.trim_end());
    };
    line(header);
    for row in rows {
        line(row);
    }
}

async fn list(args: &ListArgs) -> Result<()> {
    let officer = Officer::of(&args.target)?;
    let mut pairs = args.filter.pairs();
    pairs.push(("limit", args.limit.to_string()));
    if let Some(cursor) = args.cursor {
        pairs.push(("cursor", cursor.to_string()));
    }
    if args.oldest_first {
        pairs.push(("order", "asc".into()));
    }
    let page = officer
        .json(
            Method::GET,
            &format!("/audit/records{}", query(&pairs)),
            None,
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
        return Ok(());
    }
    let columns = [
        "seq",
        "time",
        "kind",
        "counterparty",
        "dataset",
        "purpose",
        "decision",
        "rule",
        "rows",
    ];
    let records = page["records"].as_array().cloned().unwrap_or_default();
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| text(&r[*c]).replace(['\n', '\r', '\t'], " "))
                .collect()
        })
        .collect();
    let header: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
    print_table(&header, &rows);
    match page["next_cursor"].as_u64() {
        Some(next) => println!("{} records; more with --cursor {next}", rows.len()),
        None => println!("{} records", rows.len()),
    }
    Ok(())
}

async fn usage(args: &UsageArgs) -> Result<()> {
    let officer = Officer::of(&args.target)?;
    let report = officer
        .json(
            Method::GET,
            &format!("/audit/usage{}", query(&args.filter.pairs())),
            None,
        )
        .await?;
    let header: Vec<String> = [
        "dataset", "consumer", "purpose", "answered", "refused", "failed", "rows", "last use",
    ]
    .iter()
    .map(|h| (*h).to_owned())
    .collect();
    let mut rows = Vec::new();
    for dataset in report["datasets"].as_array().cloned().unwrap_or_default() {
        let name = text(&dataset["dataset"]);
        for c in dataset["consumers"].as_array().cloned().unwrap_or_default() {
            rows.push(
                [
                    &c["consumer"],
                    &c["purpose"],
                    &c["answered"],
                    &c["refused"],
                    &c["failed"],
                    &c["rows_released"],
                    &c["last_use"],
                ]
                .into_iter()
                .fold(vec![name.clone()], |mut row, v| {
                    row.push(text(v));
                    row
                }),
            );
        }
        rows.push(vec![
            name,
            format!("{} consumers", text(&dataset["distinct_consumers"])),
            "(all)".into(),
            text(&dataset["answered"]),
            text(&dataset["refused"]),
            text(&dataset["failed"]),
            text(&dataset["rows_released"]),
            text(&dataset["last_use"]),
        ]);
    }
    print_table(&header, &rows);
    if let Some(rules) = report["refusals_by_rule"].as_object() {
        for (rule, count) in rules {
            println!("refused by `{rule}`: {count}");
        }
    }
    Ok(())
}

async fn sql(args: &SqlArgs) -> Result<()> {
    let officer = Officer::of(&args.target)?;
    let answer = officer
        .json(Method::POST, "/audit/sql", Some(json!({ "sql": args.sql })))
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(());
    }
    let header: Vec<String> = answer["columns"]
        .as_array()
        .map(|c| c.iter().map(text).collect())
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = answer["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| header.iter().map(|c| text(&row[c.as_str()])).collect())
                .collect()
        })
        .unwrap_or_default();
    print_table(&header, &rows);
    let cut = if answer["truncated"] == json!(true) {
        " (cut)"
    } else {
        ""
    };
    println!(
        "{} rows{cut} over {} audit records",
        rows.len(),
        text(&answer["records"])
    );
    Ok(())
}

async fn export(args: &ExportArgs) -> Result<()> {
    let officer = Officer::of(&args.target)?;
    let format = match args.format {
        ExportFormat::Jsonl => "jsonl",
        ExportFormat::Parquet => "parquet",
    };
    let mut pairs = args.filter.pairs();
    pairs.push(("format", format.to_owned()));
    let reply = officer
        .send(
            Method::GET,
            &format!("/audit/export{}", query(&pairs)),
            None,
        )
        .await?;
    std::fs::write(&args.out, &reply.body)
        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
    println!(
        "exported {} bytes of {format} to `{}`",
        reply.body.len(),
        args.out.display()
    );
    Ok(())
}
