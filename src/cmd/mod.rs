//! Command-line interface: the top-level commands and what they share.

mod audit;
mod authority;
mod bench;
mod catalog;
mod demo;
mod files;
mod keys;
mod participant;
mod policy;
mod policy_cases;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// A trusted data-space connector: keys, membership credentials and usage
/// policies.
#[derive(Debug, Parser)]
#[command(name = "dataspace", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a participant's Ed25519 key pair.
    Keygen(keys::KeygenArgs),
    /// Run the data-space authority: create its key, issue membership credentials.
    #[command(subcommand)]
    Authority(authority::AuthorityCommand),
    /// Sign and verify usage policies.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Run, search and browse the shared catalog.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Create a connector's home folder: keys, configuration, admin token.
    Init(participant::InitArgs),
    /// Run a connector.
    #[command(subcommand)]
    Connector(participant::ConnectorCommand),
    /// Register, list and remove datasets (owner, through the running connector).
    #[command(subcommand)]
    Dataset(participant::DatasetCommand),
    /// Offer datasets under signed usage policies (owner).
    #[command(subcommand)]
    Offer(participant::OfferCommand),
    /// List, approve, reject and revoke agreements (owner).
    #[command(subcommand)]
    Agreement(participant::AgreementCommand),
    /// Contract for a provider's offer, for a purpose (consumer).
    Negotiate(participant::NegotiateArgs),
    /// Query a provider's dataset under an agreement (consumer).
    Query(participant::QueryArgs),
    /// Export the receipts a consumer kept, for a data officer to check a
    /// provider's log against (consumer).
    #[command(subcommand)]
    Receipts(participant::ReceiptsCommand),
    /// Read, verify, query and export the audit log (owner and data officers).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Measure what governance costs on TPC-H data: raw, governed and over HTTP.
    Bench(bench::BenchArgs),
    /// Run the whole data space on this machine and walk through it, narrated.
    Demo(demo::DemoArgs),
}

impl Cli {
    /// The log filter when `RUST_LOG` is unset: the demo keeps the services
    /// it starts quiet, so its narration stays readable; so does the bench
    /// (a log line per query would be timed too).
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Bench(_) | Command::Demo(_) => "warn",
            _ => "warn,connector=info",
        }
    }
}

impl Cli {
    /// Runs the chosen command.
    pub fn run(self) -> Result<()> {
        match self.command {
            Command::Keygen(args) => keys::keygen(&args),
            Command::Authority(command) => command.run(),
            Command::Policy(command) => command.run(),
            Command::Catalog(command) => command.run(),
            Command::Init(args) => participant::run_init(&args),
            Command::Connector(command) => command.run(),
            Command::Dataset(command) => command.run(),
            Command::Offer(command) => command.run(),
            Command::Agreement(command) => command.run(),
            Command::Negotiate(args) => participant::run_negotiate(&args),
            Command::Query(args) => participant::run_query(&args),
            Command::Receipts(command) => command.run(),
            Command::Audit(command) => command.run(),
            Command::Bench(args) => bench::run(&args),
            Command::Demo(args) => demo::run(&args),
        }
    }
}
