//! The steps of the demo's story, a function each, in the order they are
//! told: the space founded, its members admitted, the data published,
//! found, contracted for, asked (answered and refused), revoked, and the
//! audit log read by the data officer.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use catalog::client::CatalogClient;
use catalog::search::SearchQuery;
use catalog::server::RunningCatalog;
use connector::answer::{AnswerFormat, from_arrow_stream};
use connector::audit::{AuditRecord, AuditStore};
use connector::consumer::Contract;
use connector::datasets::DatasetSpec;
use connector::officer::{AuditFilter, Bucket, SqlLimits, run_audit_sql, usage_figures};
use connector::service::Connector;
use datafusion::arrow::util::pretty::pretty_format_batches;
use policy::contract::Offer;

use super::data;
use super::narrator::{Narrator, millis, short};
use super::policies;
use super::space::{PLATFORM, SME, Space};
use crate::served::Served;

/// Step 1: an authority and the shared catalog.
pub async fn found_the_space(n: &mut Narrator, dir: &Path) -> Result<(Space, RunningCatalog)> {
    n.step("An authority founds the data space; a shared catalog opens");
    let (space, catalog) = Space::found(dir).await?;
    n.say(&format!(
        "authority `authority` (Ed25519 key in {})",
        space.authority_file.display()
    ));
    n.say(&format!("catalog at {}", space.catalog_url));
    n.done();
    Ok((space, catalog))
}

/// Step 2: the platform (reading from `data`) and the SME, each with its
/// own connector.
pub async fn admit_the_members(
    n: &mut Narrator,
    space: &Space,
    data: &Path,
) -> Result<(Served, Served)> {
    n.step("The authority admits a platform and an SME; each runs its own connector");
    std::fs::create_dir_all(data)?;
    let platform = space
        .admit(PLATFORM, "platform", vec![data.to_path_buf()])
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
    Ok((platform, sme))
}

/// Step 3: the platform writes its two datasets into `data`, registers and
/// offers them; returns the telemetry's row count.
pub async fn publish_the_data(
    n: &mut Narrator,
    p: &Connector,
    data: &Path,
    rows: usize,
) -> Result<usize> {
    n.step("The platform generates its data, registers it, and publishes signed offers");
    let (telemetry, rows) = generate_telemetry(n, data, rows)?;
    let suppliers = data.join("supplier_quality.parquet");
    let supplier_rows = data::write_supplier_quality(&suppliers)?;
    n.say(&format!(
        "supplier_quality.parquet: {supplier_rows} weekly figures of {} suppliers",
        data::SUPPLIERS
    ));
    publish(
        p,
        telemetry_spec(telemetry),
        "telemetry_quality",
        &policies::telemetry(PLATFORM)?,
    )
    .await?;
    publish(
        p,
        suppliers_spec(suppliers),
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
    Ok(rows)
}

/// Writes `telemetry.parquet` (at least a reading per machine), showing
/// the progress on a terminal; returns its path and row count.
fn generate_telemetry(n: &Narrator, data: &Path, rows: usize) -> Result<(PathBuf, usize)> {
    let telemetry = data.join("telemetry.parquet");
    let rows = rows.max(data::MACHINES);
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
    Ok((telemetry, rows))
}

/// The telemetry dataset, as the platform registers it.
fn telemetry_spec(path: PathBuf) -> DatasetSpec {
    DatasetSpec {
        id: "telemetry".into(),
        path,
        title: "Machine telemetry of three plants".into(),
        description: "Temperature, vibration and energy readings of 240 machines, \
                      with defect flags, over 30 days."
            .into(),
        keywords: vec!["telemetry".into(), "machine".into(), "quality".into()],
        sector: Some("manufacturing".into()),
    }
}

/// The supplier scorecard, as the platform registers it.
fn suppliers_spec(path: PathBuf) -> DatasetSpec {
    DatasetSpec {
        id: "supplier_quality".into(),
        path,
        title: "Supplier quality scorecard".into(),
        description: "Weekly defect rates and on-time delivery of the platform's suppliers.".into(),
        keywords: vec!["supplier".into(), "quality".into(), "scorecard".into()],
        sector: Some("manufacturing".into()),
    }
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

/// Step 4: the SME finds the telemetry in the catalog and verifies its
/// signed description; returns its first offer.
pub async fn search_the_catalog(n: &mut Narrator, space: &Space) -> Result<Offer> {
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
    Ok(offer)
}

/// Step 5: the SME contracts for `offer`, for quality analysis.
pub async fn contract_for_the_telemetry(
    n: &mut Narrator,
    s: &Connector,
    offer: &Offer,
) -> Result<Contract> {
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
    Ok(contract)
}

/// Step 6: an aggregate the policy answers, over the telemetry's `rows`.
pub async fn ask_a_useful_question(
    n: &mut Narrator,
    s: &Connector,
    agreement: &str,
    rows: usize,
) -> Result<()> {
    n.step("A useful question: where and when do defects happen, and how hot do machines run?");
    let sql = "SELECT site, shift, count(*) AS defects, round(avg(temperature), 1) AS avg_temp_c, \
               round(avg(vibration), 2) AS avg_vibration, round(sum(energy_kwh)) AS energy_kwh \
               FROM telemetry WHERE defect = true GROUP BY site, shift ORDER BY site, shift";
    n.sql(sql);
    let answer = s
        .query_remote(agreement, sql, AnswerFormat::Arrow)
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
    Ok(())
}

/// Step 7: three questions the telemetry's policy refuses.
pub async fn ask_what_the_policy_refuses(
    n: &mut Narrator,
    s: &Connector,
    agreement: &str,
) -> Result<()> {
    n.step("Questions the policy refuses, with the rule that refused them");
    for sql in [
        "SELECT machine_id, avg(temperature) FROM telemetry GROUP BY machine_id",
        "SELECT operator_name, count(*) FROM telemetry GROUP BY operator_name",
        "SELECT site, temperature FROM telemetry LIMIT 10",
    ] {
        n.sql(sql);
        say_refusal(
            n,
            s,
            agreement,
            sql,
            &format!("the policy should have refused `{sql}`"),
        )
        .await?;
    }
    n.done();
    Ok(())
}

/// Step 8: rows of the supplier scorecard under a second agreement, and a
/// denied column refused; returns that agreement's id.
pub async fn read_supplier_rows(n: &mut Narrator, s: &Connector, platform: &str) -> Result<String> {
    n.step("Row access under a second offer: the supplier scorecard");
    let suppliers = s
        .negotiate(
            platform,
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
    n.sql(sql);
    let answer = s
        .query_remote(&suppliers.id, sql, AnswerFormat::Arrow)
        .await
        .context("the supplier query")?;
    n.say(&pretty_format_batches(&from_arrow_stream(&answer.body)?)?.to_string());
    let sql = "SELECT supplier, contact_email FROM supplier_quality";
    n.sql(sql);
    let answered = format!("the policy should have refused `{sql}`");
    say_refusal(n, s, &suppliers.id, sql, &answered).await?;
    n.done();
    Ok(suppliers.id)
}

/// Step 9: the platform revokes the telemetry agreement; the SME's next
/// question is refused.
pub async fn revoke_the_telemetry(
    n: &mut Narrator,
    p: &Connector,
    s: &Connector,
    agreement: &str,
) -> Result<()> {
    n.step("The platform revokes the telemetry agreement");
    p.revoke(agreement, "demo: the contract ended")
        .await
        .context("revoking")?;
    let sql = "SELECT site, count(*) AS readings FROM telemetry GROUP BY site";
    n.say(&format!("the SME asks again: {sql}"));
    say_refusal(
        n,
        s,
        agreement,
        sql,
        "a revoked agreement was still answered",
    )
    .await?;
    n.done();
    Ok(())
}

/// Asks `sql` under `agreement` and says why it was refused; an answer is
/// the error `answered`.
async fn say_refusal(
    n: &Narrator,
    s: &Connector,
    agreement: &str,
    sql: &str,
    answered: &str,
) -> Result<()> {
    match s.query_remote(agreement, sql, AnswerFormat::Arrow).await {
        Ok(_) => bail!("{answered}"),
        Err(e) => {
            n.say(&format!("  refused: {e}"));
            Ok(())
        }
    }
}

/// Step 10: the platform's data officer verifies the audit chain, reads
/// its latest records and usage figures, and queries it with SQL.
pub async fn read_the_audit_log(n: &mut Narrator, p: &Connector) -> Result<()> {
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
    say_latest_and_usage(n, store.as_ref())?;
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
    Ok(())
}

/// The latest ten records of the log, then its usage figures per dataset.
fn say_latest_and_usage(n: &Narrator, store: &dyn AuditStore) -> Result<()> {
    let len = store.len()?;
    let latest = store.range(len.saturating_sub(10), 10)?;
    n.say(&format!("the latest {} of {len} records:", latest.len()));
    n.say(&audit_table(&latest));
    let usage = usage_figures(store, &AuditFilter::default(), Bucket::Day)?;
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
    Ok(())
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
