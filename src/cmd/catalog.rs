//! `dataspace catalog`: run the shared catalog, search it, show a dataset.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use catalog::client::CatalogClient;
use catalog::config::CatalogConfig;
use catalog::model::PublishedDataset;
use catalog::search::{SearchPage, SearchQuery};
use clap::{Args, Subcommand, ValueEnum};
use policy::model::Access;

/// Commands of the shared catalog.
#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// Run the catalog service (HTTP) over the store in its home folder.
    Serve(ServeArgs),
    /// Search a catalog by words (title, description, keywords) and filters.
    Search(SearchArgs),
    /// Show one published dataset, its columns and offers, after verifying
    /// the provider's signatures.
    Show(ShowArgs),
}

impl CatalogCommand {
    /// Runs the chosen catalog command.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Serve(args) => serve(&args),
            Self::Search(args) => search(&args),
            Self::Show(args) => show(&args),
        }
    }
}

/// Arguments of `dataspace catalog serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The catalog's home folder: `catalog.toml` (optional) and the store
    /// (`store/`, created if missing).
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// Address to listen on [default: from `catalog.toml`, else 127.0.0.1:8090].
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The trusted authority: `authority.json` from `authority init`, or its
    /// public JWK [default: `authority_key` of `catalog.toml`].
    #[arg(long, value_name = "FILE")]
    authority_key: Option<PathBuf>,
    /// The authority's id, when `--authority-key` is a bare JWK
    /// [default: `authority`].
    #[arg(long, value_name = "ID")]
    authority_id: Option<String>,
}

/// Access modes an offer may grant.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum AccessArg {
    /// Only thresholded aggregates.
    Aggregate,
    /// Rows of the allowed columns.
    Rows,
}

/// Arguments of `dataspace catalog search`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The catalog's base URL, e.g. `http://127.0.0.1:8090`.
    #[arg(long, value_name = "URL")]
    catalog: String,
    /// Words that must all appear in title, description or keywords.
    #[arg(value_name = "WORDS")]
    words: Vec<String>,
    /// Only datasets of this sector.
    #[arg(long, value_name = "S")]
    sector: Option<String>,
    /// Only datasets listing this column.
    #[arg(long, value_name = "C")]
    column: Option<String>,
    /// Only datasets of this provider (participant id).
    #[arg(long, value_name = "P")]
    provider: Option<String>,
    /// Only datasets offered for this purpose.
    #[arg(long, value_name = "P")]
    purpose: Option<String>,
    /// Only datasets offered in this access mode.
    #[arg(long, value_enum)]
    access: Option<AccessArg>,
    /// Hits per page.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Hits to skip.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Print the page as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `dataspace catalog show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The catalog's base URL, e.g. `http://127.0.0.1:8090`.
    #[arg(long, value_name = "URL")]
    catalog: String,
    /// The dataset, as PROVIDER/DATASET (as `search` prints it).
    #[arg(value_name = "ID")]
    id: String,
    /// Print the dataset as JSON (with the signed description).
    #[arg(long)]
    json: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn serve(args: &ServeArgs) -> Result<()> {
    let mut config = CatalogConfig::load(&args.home)?;
    if let Some(listen) = &args.listen {
        config.listen.clone_from(listen);
    }
    if let Some(path) = &args.authority_key {
        let absolute =
            std::path::absolute(path).with_context(|| format!("`{}`", path.display()))?;
        config.authority_key = Some(absolute);
    }
    if let Some(id) = &args.authority_id {
        config.authority_id.clone_from(id);
    }
    config.validate()?;
    runtime()?.block_on(async {
        let ready = |addr, published| {
            println!("catalog listening on http://{addr} with {published} published datasets (home `{}`)", args.home.display());
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        catalog::server::serve(&args.home, &config, ready, shutdown).await
    })?;
    println!("catalog stopped");
    Ok(())
}

fn search(args: &SearchArgs) -> Result<()> {
    let client = CatalogClient::new(&args.catalog)?;
    let words = args.words.join(" ");
    let query = SearchQuery {
        q: Some(words).filter(|w| !w.trim().is_empty()),
        provider: args.provider.clone(),
        sector: args.sector.clone(),
        column: args.column.clone(),
        purpose: args.purpose.clone(),
        access: args.access.map(|a| match a {
            AccessArg::Aggregate => Access::Aggregate,
            AccessArg::Rows => Access::Rows,
        }),
        limit: Some(args.limit),
        offset: Some(args.offset),
    };
    let page = runtime()?.block_on(client.search(&query))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&page)?);
    } else {
        print_page(&page);
    }
    Ok(())
}

fn access_name(access: Access) -> &'static str {
    match access {
        Access::Aggregate => "aggregate",
        Access::Rows => "rows",
    }
}

fn print_page(page: &SearchPage) {
    let shown = page.hits.len();
    match shown {
        0 => println!("{} datasets found; none on this page", page.total),
        _ => println!(
            "{} datasets found; {} to {}:",
            page.total,
            page.offset + 1,
            page.offset + shown
        ),
    }
    for hit in &page.hits {
        let access: Vec<&str> = hit.access.iter().map(|a| access_name(*a)).collect();
        println!(
            "{}/{}  v{}  {}  [{}]  purposes: {}; access: {}",
            hit.provider,
            hit.id,
            hit.version,
            hit.title,
            hit.sector.as_deref().unwrap_or("-"),
            hit.purposes.join(", "),
            access.join(", ")
        );
    }
}

fn show(args: &ShowArgs) -> Result<()> {
    let Some((provider, id)) = args.id.rsplit_once('/') else {
        bail!("`{}` is not PROVIDER/DATASET", args.id);
    };
    let client = CatalogClient::new(&args.catalog)?;
    let published = runtime()?.block_on(client.show(provider, id))?;
    let signed = published
        .verify()
        .context("the provider's signature does not verify")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&published)?);
    } else {
        print_dataset(&published, &signed.signer().key_id());
    }
    Ok(())
}

fn print_dataset(published: &PublishedDataset, key_id: &str) {
    let d = &published.dataset;
    println!("{}/{} version {}: {}", d.provider, d.id, d.version, d.title);
    println!("signed by {} (key id {key_id}); verified", d.provider);
    if !d.description.is_empty() {
        println!("{}", d.description);
    }
    println!("sector: {}", d.sector.as_deref().unwrap_or("-"));
    println!("keywords: {}", d.keywords.join(", "));
    println!(
        "rows: {}; updated {}; endpoint {}",
        d.row_count,
        d.updated_at.to_rfc3339(),
        d.endpoint
    );
    println!("columns:");
    for column in &d.columns {
        println!(
            "  {} {} ({})",
            column.name,
            column.data_type,
            column.class.as_str()
        );
    }
    println!("offers:");
    for offer in &d.offers {
        let policy = &offer.policy;
        let thresholds = policy
            .aggregation
            .as_ref()
            .map(|a| {
                format!(
                    "; at least {} rows and {} entities per group",
                    a.min_rows, a.min_entities
                )
            })
            .unwrap_or_default();
        println!(
            "  {} (policy {}, {}): purposes {}; access {}{thresholds}; valid {} to {}",
            offer.id,
            policy.id,
            offer.policy_hash,
            policy.purposes.join(", "),
            access_name(policy.access),
            policy.validity.not_before.to_rfc3339(),
            policy.validity.not_after.to_rfc3339()
        );
    }
}
