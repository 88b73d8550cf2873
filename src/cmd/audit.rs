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
    /// Verify the hash chain, the signed checkpoints and the signed head;
    /// names the first broken or missing record. Offline from `--home` (the
    /// connector stopped), or through a running connector with
    /// `--connector`. With `--receipts` and `--checkpoints` (offline), also
    /// checks that the log holds what consumers' receipts and exported
    /// checkpoints prove.
    Verify(VerifyArgs),
    /// Export the signed checkpoints and head of a log (offline, from
    /// `--home`), one JSON object per line, to keep or publish elsewhere.
    Checkpoints(CheckpointsArgs),
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

/// Arguments of `dataspace audit verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    target: Target,
    /// A folder of receipts a consumer kept (`*.jws` files, one receipt
    /// each, as `dataspace receipts export` writes them): each must name a
    /// record the log holds. Needs `--home`.
    #[arg(long, value_name = "DIR")]
    receipts: Option<PathBuf>,
    /// A file of exported checkpoints (`dataspace audit checkpoints`, or
    /// `audit export --kind checkpoint --format jsonl`): each must be in the
    /// log. Needs `--home`.
    #[arg(long, value_name = "FILE")]
    checkpoints: Option<PathBuf>,
}

/// Arguments of `dataspace audit checkpoints`.
#[derive(Debug, Args)]
pub struct CheckpointsArgs {
    /// The connector's home folder (the connector stopped).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The file to write [default: stdout].
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
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
            Self::Verify(args) => verify(&args),
            Self::Checkpoints(args) => checkpoints(&args),
            Self::List(args) => runtime()?.block_on(list(&args)),
            Self::Usage(args) => runtime()?.block_on(usage(&args)),
            Self::Sql(args) => runtime()?.block_on(sql(&args)),
            Self::Export(args) => runtime()?.block_on(export(&args)),
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<()> {
    if args.receipts.is_some() || args.checkpoints.is_some() {
        return verify_against(args);
    }
    let target = &args.target;
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

/// `audit verify --home H --receipts DIR --checkpoints FILE`.
fn verify_against(args: &VerifyArgs) -> Result<()> {
    let (Some(home), None) = (&args.target.home, &args.target.connector) else {
        bail!(
            "`--receipts` and `--checkpoints` check a log offline: give `--home DIR` (the connector stopped), not `--connector`"
        );
    };
    let receipts = match &args.receipts {
        Some(dir) => read_receipts(dir)?,
        None => Vec::new(),
    };
    let checkpoints = match &args.checkpoints {
        Some(file) => read_checkpoints(file)?,
        None => Vec::new(),
    };
    let (report, evidence) = connector::audit::verify_home_against(home, &receipts, &checkpoints)?;
    println!("{report}");
    println!(
        "evidence: {} receipts, {} checkpoints read: {evidence}",
        receipts.len(),
        checkpoints.len()
    );
    if !report.is_intact() {
        bail!("the audit log of `{}` is broken", home.display());
    }
    if !evidence.contradicted.is_empty() {
        bail!(
            "the audit log of `{}` does not hold what {} pieces of evidence prove: it was cut short or rewritten",
            home.display(),
            evidence.contradicted.len()
        );
    }
    if !evidence.admitted_lost.is_empty() {
        bail!(
            "the audit log of `{}` lost {} records that receipts or checkpoints name (admitted by a signed recovery)",
            home.display(),
            evidence.admitted_lost.len()
        );
    }
    Ok(())
}

/// Most evidence files read (receipts or checkpoint lines).
const MAX_EVIDENCE: usize = 10_000_000;

/// Largest receipt file read, in bytes.
const MAX_RECEIPT_BYTES: u64 = 1024 * 1024;

/// The `*.jws` files of `dir`, in name order.
fn read_receipts(dir: &std::path::Path) -> Result<Vec<connector::audit::Evidence>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read `{}`", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "jws") {
            paths.push(path);
        }
        if paths.len() > MAX_EVIDENCE {
            bail!("more than {MAX_EVIDENCE} receipts in `{}`", dir.display());
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let size = std::fs::metadata(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?
                .len();
            if size > MAX_RECEIPT_BYTES {
                bail!(
                    "`{}` is {size} bytes: not a receipt (at most {MAX_RECEIPT_BYTES})",
                    path.display()
                );
            }
            let jws = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            Ok(connector::audit::Evidence {
                source: path.display().to_string(),
                jws: jws.trim().to_owned(),
            })
        })
        .collect()
}

/// The checkpoints of a file: one per line, a bare JWS, or a JSON object
/// with the JWS under `jws` (as `audit checkpoints` writes) or `detail` (an
/// exported checkpoint record). Lines with neither are skipped.
fn read_checkpoints(file: &std::path::Path) -> Result<Vec<connector::audit::Evidence>> {
    use std::io::BufRead;
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("cannot read `{}`", file.display()))?,
    );
    let mut out = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("cannot read `{}`", file.display()))?;
        let line = line.trim();
        let jws = if line.starts_with('{') {
            let value: Value = serde_json::from_str(line)
                .with_context(|| format!("`{}` line {} is not JSON", file.display(), n + 1))?;
            match (&value["jws"], &value["detail"], &value["kind"]) {
                (Value::String(jws), _, _) => jws.clone(),
                (_, Value::String(jws), Value::String(kind)) if kind == "checkpoint" => jws.clone(),
                _ => continue,
            }
        } else if line.is_empty() {
            continue;
        } else {
            line.to_owned()
        };
        out.push(connector::audit::Evidence {
            source: format!("{} line {}", file.display(), n + 1),
            jws,
        });
        if out.len() > MAX_EVIDENCE {
            bail!(
                "more than {MAX_EVIDENCE} checkpoints in `{}`",
                file.display()
            );
        }
    }
    Ok(out)
}

/// `audit checkpoints`.
fn checkpoints(args: &CheckpointsArgs) -> Result<()> {
    let (checkpoints, head) = connector::audit::checkpoints_home(&args.home)?;
    let mut text = String::new();
    for (seq, jws) in &checkpoints {
        let _ = writeln!(
            text,
            "{}",
            json!({ "kind": "checkpoint", "seq": seq, "jws": jws })
        );
    }
    if let Some(head) = &head {
        let _ = writeln!(text, "{}", json!({ "kind": "head", "head": head }));
    }
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
            eprintln!(
                "{} checkpoints{} written to `{}`",
                checkpoints.len(),
                if head.is_some() { " and the head" } else { "" },
                path.display()
            );
        }
        None => print!("{text}"),
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
