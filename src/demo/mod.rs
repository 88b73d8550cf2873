//! `dataspace demo`: the whole mission on real services, narrated.
//!
//! An authority admits a platform and an SME; a catalog and both connectors
//! run on loopback with sled stores in one folder; the platform publishes
//! generated telemetry (aggregates only) and supplier figures (rows); the
//! SME finds them, contracts, queries, is refused, loses access when the
//! platform revokes; the data officer verifies the audit chain.

mod data;
mod policies;

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use catalog::client::CatalogClient;
use catalog::config::CatalogConfig;
use catalog::search::SearchQuery;
use catalog::server::{RunningCatalog, open_catalog};
use connector::answer::{AnswerFormat, from_arrow_stream};
use connector::audit::AuditRecord;
use connector::datasets::DatasetSpec;
use connector::home::{InitOptions, admin_token, init, issue_credential};
use connector::officer::{AuditFilter, Bucket, SqlLimits, run_audit_sql, usage_figures};
use connector::server::RunningConnector;
use connector::service::Connector;
use datafusion::arrow::util::pretty::pretty_format_batches;
use policy::credential::{Attributes, Authority};
use policy::keys::KeyPair;

/// The platform's participant id.
pub const PLATFORM: &str = "platform-north";
/// The SME's participant id.
pub const SME: &str = "sme-south";
/// Steps of the walk-through.
const STEPS: usize = 10;

/// What `dataspace demo` was asked for.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Telemetry rows to generate.
    pub rows: usize,
    /// Keep everything running afterwards, until Ctrl-C.
    pub serve: bool,
    /// Folder for homes, stores and data; a temporary one when absent.
    pub dir: Option<PathBuf>,
}

/// Prints numbered steps with their timing.
struct Narrator {
    step: usize,
    started: Instant,
    step_started: Instant,
}

impl Narrator {
    fn new() -> Self {
        let now = Instant::now();
        Self {
            step: 0,
            started: now,
            step_started: now,
        }
    }

    fn step(&mut self, title: &str) {
        self.step += 1;
        self.step_started = Instant::now();
        println!("\n[{}/{STEPS}] {title}", self.step);
    }

    fn say(&self, text: &str) {
        for line in text.lines() {
            println!("      {line}");
        }
    }

    fn done(&self) {
        println!("      ({})", millis(self.step_started.elapsed()));
    }
}

fn millis(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{:.0} ms", d.as_secs_f64() * 1000.0)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A connector served on a loopback port.
struct Served {
    connector: Arc<Connector>,
    url: String,
    home: PathBuf,
    server: RunningConnector,
}

impl Served {
    async fn shut_down(self) -> Result<()> {
        let Self {
            connector, server, ..
        } = self;
        drop(connector);
        server.stop().await.context("stopping a connector")
    }
}

/// The authority, its file, and what it issues.
struct Space {
    authority: Authority,
    authority_file: PathBuf,
    dir: PathBuf,
    catalog_url: String,
}

impl Space {
    /// Creates a participant's home (keys, config, admin token), issues its
    /// credential, and serves its connector on a free loopback port.
    async fn admit(&self, id: &str, role: &str, roots: Vec<PathBuf>) -> Result<Served> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on loopback")?;
        let addr = listener.local_addr()?;
        let home = self.dir.join(id);
        init(
            &home,
            &InitOptions {
                id: id.to_owned(),
                authority_file: self.authority_file.clone(),
                data_roots: roots,
                listen: Some(addr.to_string()),
                catalog_url: Some(self.catalog_url.clone()),
            },
        )
        .with_context(|| format!("cannot create the home of `{id}`"))?;
        let mut attributes = Attributes::default();
        attributes.set("role", role)?;
        attributes.set("sme", if role == "sme" { "true" } else { "false" })?;
        attributes.set("sector", "manufacturing")?;
        issue_credential(&home, &self.authority, attributes, 7 * 86_400)
            .with_context(|| format!("cannot issue the credential of `{id}`"))?;
        let connector = Arc::new(connector::home::open(&home)?);
        let server = RunningConnector::start(Arc::clone(&connector), listener)?;
        Ok(Served {
            connector,
            url: server.url(),
            home,
            server,
        })
    }
}

/// Runs the demo; `Err` names the step that failed.
pub async fn run(options: &DemoOptions) -> Result<()> {
    let temporary;
    let dir = match &options.dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                bail!(
                    "`{}` is not empty; give a new or empty folder",
                    dir.display()
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            dir.clone()
        }
        None => {
            temporary = tempfile::Builder::new()
                .prefix("dataspace-demo-")
                .tempdir()
                .context("cannot create a temporary folder")?;
            temporary.path().to_path_buf()
        }
    };
    println!(
        "A trusted data space on this machine, in `{}`.",
        dir.display()
    );
    println!("Everything below runs on real services over loopback HTTP, with embedded storage.");
    if cfg!(debug_assertions) {
        println!(
            "This is a debug build: the times shown are those of unoptimised code, about ten \
             times a release build's (`cargo run --release -- demo`); benchmark figures are in \
             the README's Performance section."
        );
    }
    let mut n = Narrator::new();
    walk(&mut n, &dir, options).await
}

async fn walk(n: &mut Narrator, dir: &Path, options: &DemoOptions) -> Result<()> {
    // 1. Authority and catalog.
    n.step("An authority founds the data space; a shared catalog opens");
    let authority = Authority::new("authority", KeyPair::generate()?);
    let authority_file = dir.join("authority.json");
    std::fs::write(
        &authority_file,
        serde_json::to_string_pretty(&authority.trusted())?,
    )?;
    let catalog_home = dir.join("catalog");
    std::fs::create_dir_all(&catalog_home)?;
    std::fs::copy(&authority_file, catalog_home.join("authority.json"))?;
    let config = CatalogConfig {
        authority_key: Some("authority.json".into()),
        ..CatalogConfig::default()
    };
    let opened = open_catalog(&catalog_home, &config).context("cannot open the catalog")?;
    let catalog = RunningCatalog::start(Arc::new(opened), "127.0.0.1:0", config.max_body_bytes)
        .await
        .context("cannot start the catalog")?;
    let space = Space {
        authority,
        authority_file,
        dir: dir.to_path_buf(),
        catalog_url: catalog.url(),
    };
    n.say(&format!(
        "authority `authority` (Ed25519 key in {})",
        space.authority_file.display()
    ));
    n.say(&format!("catalog at {}", space.catalog_url));
    n.done();

    // 2. Participants.
    n.step("The authority admits a platform and an SME; each runs its own connector");
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    let platform = space
        .admit(PLATFORM, "platform", vec![data.clone()])
        .await?;
    let sme = space.admit(SME, "sme", Vec::new()).await?;
    n.say(&format!(
        "{PLATFORM}: connector at {} (membership credential, role platform)",
        platform.url
    ));
    n.say(&format!(
        "{SME}: connector at {} (membership credential, role sme)",
        sme.url
    ));
    n.done();

    let outcome = story(n, &space, &platform, &sme, &data, options).await;
    if outcome.is_ok() {
        println!(
            "\nDone in {}: every step above was enforced and audited.",
            millis(n.started.elapsed())
        );
    }
    if let (Ok(live), true) = (&outcome, options.serve) {
        serve_until_interrupted(&space, &platform, &sme, live, options.dir.is_some()).await?;
    }
    let stopped = async {
        sme.shut_down().await?;
        platform.shut_down().await?;
        catalog.stop().await.context("cannot stop the catalog")
    }
    .await;
    outcome.map(drop).and(stopped)
}

/// Steps 3 to 10; returns the agreement still in force (the supplier one).
async fn story(
    n: &mut Narrator,
    space: &Space,
    platform: &Served,
    sme: &Served,
    data: &Path,
    options: &DemoOptions,
) -> Result<String> {
    let p = &platform.connector;
    let s = &sme.connector;

    // 3. Data and publication.
    n.step("The platform generates its data, registers it, and publishes signed offers");
    let telemetry = data.join("telemetry.parquet");
    let rows = options.rows.max(data::MACHINES);
    let generation = Instant::now();
    let live = std::io::stderr().is_terminal();
    data::write_telemetry(&telemetry, rows, |done| {
        if live {
            eprint!("\r      generating telemetry: {done} of {rows} rows");
        }
    })?;
    if live {
        eprint!("\r\x1b[2K");
    }
    let size = std::fs::metadata(&telemetry)?.len();
    n.say(&format!(
        "telemetry.parquet: {rows} readings of {} machines at 4 sites, {:.1} MB, in {}",
        data::MACHINES,
        size as f64 / 1e6,
        millis(generation.elapsed())
    ));
    let suppliers = data.join("supplier_quality.parquet");
    let supplier_rows = data::write_supplier_quality(&suppliers)?;
    n.say(&format!(
        "supplier_quality.parquet: {supplier_rows} weekly figures of {} suppliers",
        data::SUPPLIERS
    ));
    publish(
        p,
        DatasetSpec {
            id: "telemetry".into(),
            path: telemetry,
            title: "Machine telemetry of three plants".into(),
            description: "Temperature, vibration and energy readings of 240 machines, \
                          with defect flags, over 30 days."
                .into(),
            keywords: vec!["telemetry".into(), "machine".into(), "quality".into()],
            sector: Some("manufacturing".into()),
        },
        "telemetry_quality",
        &policies::telemetry(PLATFORM)?,
    )
    .await?;
    publish(
        p,
        DatasetSpec {
            id: "supplier_quality".into(),
            path: suppliers,
            title: "Supplier quality scorecard".into(),
            description: "Weekly defect rates and on-time delivery of the platform's suppliers."
                .into(),
            keywords: vec!["supplier".into(), "quality".into(), "scorecard".into()],
            sector: Some("manufacturing".into()),
        },
        "supplier_scorecard",
        &policies::suppliers(PLATFORM)?,
    )
    .await?;
    n.say("offer telemetry_quality: aggregates only, purposes quality-analysis and");
    n.say("  predictive-maintenance; groups need 10 rows and 5 machines; operator names denied;");
    n.say("  the prototype lab is filtered out");
    n.say("offer supplier_scorecard: rows, purpose supplier-development; prices and e-mail");
    n.say("  addresses denied; restricted suppliers filtered out");
    n.say("both descriptions were signed and published to the catalog automatically");
    n.done();

    // 4. Search.
    n.step("The SME searches the catalog");
    let catalog = CatalogClient::new(&space.catalog_url)?;
    let page = catalog
        .search(&SearchQuery {
            q: Some("machine telemetry".into()),
            ..SearchQuery::default()
        })
        .await
        .context("searching the catalog")?;
    n.say(&format!(
        "search \"machine telemetry\": {} dataset(s)",
        page.total
    ));
    for hit in &page.hits {
        n.say(&format!(
            "  {}/{}  \"{}\"  purposes: {}",
            hit.provider,
            hit.id,
            hit.title,
            hit.purposes.join(", ")
        ));
    }
    let Some(hit) = page.hits.first() else {
        bail!("the catalog did not find the published telemetry");
    };
    let shown = catalog.show(&hit.provider, &hit.id).await?;
    let description = shown.verify().context("the description's signature")?;
    let d = description.payload();
    let columns: Vec<&str> = d.columns.iter().map(|c| c.name.as_str()).collect();
    n.say(&format!(
        "signed description verified: {} rows; columns {}",
        d.row_count,
        columns.join(", ")
    ));
    n.say("(operator_name is denied, so the catalog never lists it)");
    let Some(offer) = d.offers.first().map(|o| o.payload().clone()) else {
        bail!("the published telemetry carries no offer");
    };
    n.done();

    // 5. Negotiation.
    n.step("The SME contracts for the telemetry, for quality analysis");
    let contract = s
        .negotiate(
            &offer.endpoint,
            &offer.id,
            "quality-analysis",
            Duration::from_secs(10),
        )
        .await
        .context("negotiating the telemetry offer")?;
    n.say(&format!(
        "agreement {} signed by {PLATFORM} and countersigned by {SME}",
        contract.id
    ));
    n.say(&format!(
        "it binds the purpose `{}` and the policy hash {}",
        contract.agreement.payload().purpose,
        short(&contract.agreement.payload().policy_hash)
    ));
    n.done();

    // 6. Useful aggregate.
    n.step("A useful question: where and when do defects happen, and how hot do machines run?");
    let sql = "SELECT site, shift, count(*) AS defects, round(avg(temperature), 1) AS avg_temp_c, \
               round(avg(vibration), 2) AS avg_vibration, round(sum(energy_kwh)) AS energy_kwh \
               FROM telemetry WHERE defect = true GROUP BY site, shift ORDER BY site, shift";
    n.say(&format!("SQL: {sql}"));
    let answer = s
        .query_remote(&contract.id, sql, AnswerFormat::Arrow)
        .await
        .context("the aggregate query")?;
    let batches = from_arrow_stream(&answer.body)?;
    n.say(&pretty_format_batches(&batches)?.to_string());
    let r = answer.receipt.payload();
    n.say(&format!(
        "{} rows computed over {rows} readings, sent over HTTP as Arrow IPC; signed receipt \
         verified (audit record #{}, result hash {})",
        r.rows,
        r.audit_seq,
        short(&r.result_hash)
    ));
    n.say("no row of the prototype lab, and only groups of 10+ readings from 5+ machines");
    n.done();

    // 7. Refusals.
    n.step("Questions the policy refuses, with the rule that refused them");
    for sql in [
        "SELECT machine_id, avg(temperature) FROM telemetry GROUP BY machine_id",
        "SELECT operator_name, count(*) FROM telemetry GROUP BY operator_name",
        "SELECT site, temperature FROM telemetry LIMIT 10",
    ] {
        n.say(&format!("SQL: {sql}"));
        match s.query_remote(&contract.id, sql, AnswerFormat::Arrow).await {
            Ok(_) => bail!("the policy should have refused `{sql}`"),
            Err(e) => n.say(&format!("  refused: {e}")),
        }
    }
    n.done();

    // 8. Rows mode.
    n.step("Row access under a second offer: the supplier scorecard");
    let suppliers = s
        .negotiate(
            &platform.url,
            "supplier_scorecard",
            "supplier-development",
            Duration::from_secs(10),
        )
        .await
        .context("negotiating the supplier offer")?;
    let sql = "SELECT supplier, region, part, defects_ppm, on_time_rate FROM supplier_quality \
               WHERE week = 47 ORDER BY defects_ppm DESC, supplier LIMIT 5";
    n.say(&format!(
        "agreement {} for supplier-development",
        suppliers.id
    ));
    n.say(&format!("SQL: {sql}"));
    let answer = s
        .query_remote(&suppliers.id, sql, AnswerFormat::Arrow)
        .await
        .context("the supplier query")?;
    n.say(&pretty_format_batches(&from_arrow_stream(&answer.body)?)?.to_string());
    let sql = "SELECT supplier, contact_email FROM supplier_quality";
    n.say(&format!("SQL: {sql}"));
    match s
        .query_remote(&suppliers.id, sql, AnswerFormat::Arrow)
        .await
    {
        Ok(_) => bail!("the policy should have refused `{sql}`"),
        Err(e) => n.say(&format!("  refused: {e}")),
    }
    n.done();

    // 9. Revocation.
    n.step("The platform revokes the telemetry agreement");
    p.revoke(&contract.id, "demo: the contract ended")
        .await
        .context("revoking")?;
    let sql = "SELECT site, count(*) AS readings FROM telemetry GROUP BY site";
    n.say(&format!("the SME asks again: {sql}"));
    match s.query_remote(&contract.id, sql, AnswerFormat::Arrow).await {
        Ok(_) => bail!("a revoked agreement was still answered"),
        Err(e) => n.say(&format!("  refused: {e}")),
    }
    n.done();

    // 10. The data officer.
    n.step("The platform's data officer verifies and reads the audit log");
    let store = Arc::clone(p.audit().store());
    let signer = p.key().public_key();
    let report =
        tokio::task::spawn_blocking(move || connector::audit::verify(store.as_ref(), &signer))
            .await
            .context("the verification task")??;
    n.say(&report.to_string());
    if !report.is_intact() {
        bail!("the audit chain is broken");
    }
    let store = p.audit().store();
    let len = store.len()?;
    let latest = store.range(len.saturating_sub(10), 10)?;
    n.say(&format!("the latest {} of {len} records:", latest.len()));
    n.say(&audit_table(&latest));
    let usage = usage_figures(store.as_ref(), &AuditFilter::default(), Bucket::Day)?;
    n.say("usage figures, as the platform reports them about the data it opens:");
    for d in &usage.datasets {
        n.say(&format!(
            "  {}: {} answered, {} refused, {} rows released, {} consumer(s)",
            d.dataset.as_deref().unwrap_or("(no dataset)"),
            d.answered,
            d.refused,
            d.rows_released,
            d.distinct_consumers
        ));
    }
    let sql = "SELECT rule, count(*) AS refusals FROM audit \
               WHERE kind = 'query_refused' GROUP BY rule ORDER BY refusals DESC, rule";
    n.say(&format!("the officer's SQL over the log: {sql}"));
    let answer = run_audit_sql(Arc::clone(store), sql, SqlLimits::default()).await?;
    for row in &answer.rows {
        n.say(&format!(
            "  {:<22} {}",
            row["rule"].as_str().unwrap_or("(none)"),
            row["refusals"]
        ));
    }
    n.done();
    Ok(suppliers.id)
}

/// Registers a dataset and offers it; a failed publication is an error here.
async fn publish(
    connector: &Connector,
    spec: DatasetSpec,
    offer: &str,
    policy: &policy::model::UsagePolicy,
) -> Result<()> {
    let id = spec.id.clone();
    let (_, failed) = connector
        .register_and_publish(spec)
        .await
        .with_context(|| format!("registering `{id}`"))?;
    if let Some(reason) = failed {
        bail!("publishing `{id}` to the catalog failed: {reason}");
    }
    let (_, failed) = connector
        .offer_and_publish(offer, &id, policy.clone())
        .await
        .with_context(|| format!("offering `{id}`"))?;
    if let Some(reason) = failed {
        bail!("publishing the offer `{offer}` failed: {reason}");
    }
    Ok(())
}

/// The first characters of a hash or id, for display.
fn short(text: &str) -> String {
    let cut: String = text.chars().take(19).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// Audit records as a text table.
fn audit_table(records: &[AuditRecord]) -> String {
    let mut out = format!(
        "{:>4}  {:<20}  {:<10}  {:<17}  {:<21}  {:<31}  {:>5}\n",
        "seq", "kind", "with", "dataset", "purpose", "decision", "rows"
    );
    for r in records {
        let decision = match (&r.decision, &r.rule) {
            (Some(d), Some(rule)) => format!("{d} ({rule})"),
            (Some(d), None) => d.clone(),
            (None, _) => String::new(),
        };
        let _ = writeln!(
            out,
            "{:>4}  {:<20}  {:<10}  {:<17}  {:<21}  {:<31}  {:>5}",
            r.seq,
            r.kind.as_str(),
            r.counterparty.as_deref().unwrap_or(""),
            r.dataset.as_deref().unwrap_or(""),
            r.purpose.as_deref().unwrap_or(""),
            decision,
            r.rows.map(|n| n.to_string()).unwrap_or_default()
        );
    }
    out.trim_end().to_owned()
}

async fn serve_until_interrupted(
    space: &Space,
    platform: &Served,
    sme: &Served,
    agreement: &str,
    keep: bool,
) -> Result<()> {
    let platform_home = platform.home.display();
    let token = admin_token(&platform.home)?;
    println!("\nEverything keeps running. Try:");
    println!("  catalog        {}", space.catalog_url);
    println!(
        "  platform       {}   (admin token in {platform_home}/admin.token)",
        platform.url
    );
    println!("  SME            {}", sme.url);
    println!(
        "  officer        {}/officer   (sign in with the admin token)",
        platform.url
    );
    println!();
    println!(
        "  dataspace catalog search --catalog {} \"supplier\"",
        space.catalog_url
    );
    println!(
        "  dataspace catalog show --catalog {} {PLATFORM}/telemetry",
        space.catalog_url
    );
    println!(
        "  curl {}/providers/{PLATFORM}/openness.html",
        space.catalog_url
    );
    println!("  curl {}/.well-known/dcat", space.catalog_url);
    println!("  curl {}/offers", platform.url);
    println!("  dataspace dataset list --home {platform_home}");
    println!("  dataspace agreement list --home {platform_home}");
    println!("  dataspace audit list --home {platform_home} --decision refused");
    println!(
        "  dataspace audit sql --home {platform_home} \"SELECT kind, count(*) FROM audit GROUP BY kind\""
    );
    println!(
        "  dataspace audit verify --connector {} --token {token}",
        platform.url
    );
    println!(
        "  curl -H 'Authorization: Bearer {token}' {}/admin/negotiations",
        platform.url
    );
    println!(
        "  python3 examples/query_arrow.py --home {} --provider {} --agreement {agreement} \\\n      \"SELECT part, count(*) AS weeks, avg(defects_ppm) AS ppm FROM supplier_quality GROUP BY part\"",
        sme.home.display(),
        platform.url
    );
    println!(
        "    (needs `pip install pyarrow cryptography`; the SME's agreement {agreement} is in force)"
    );
    if keep {
        println!("\nPress Ctrl-C to stop; the folder stays.");
    } else {
        println!("\nPress Ctrl-C to stop and remove the demo's folder.");
    }
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    println!("stopping");
    Ok(())
}
