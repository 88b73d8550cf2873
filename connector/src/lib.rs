//! A participant's connector: datasets under data roots, signed offers,
//! contract negotiation (provider and consumer side), governed queries
//! with signed receipts, a durable hash-chained audit log, the data
//! officer's views of it, and the HTTP API (`api`) over all of it. Domain
//! modules know no HTTP.
//!
//! Where to start reading:
//! - [`home::open`] makes a [`service::Connector`] from a home folder;
//!   `Connector` is what the API and the CLI call.
//! - [`provider::pipeline`] is a governed query from the agreement to the
//!   receipt, one step after the other; [`engine`] plans, enforces and runs
//!   the SQL with DataFusion under the policy (`policy::enforce`).
//! - [`contracting`] and [`negotiation`] are the provider's side of a
//!   contract, [`consumer`] the consumer's.
//! - [`audit`] is the log every decision lands in, [`officer`] what the
//!   data officer reads of it.

#![warn(missing_docs)]
#![warn(clippy::too_many_lines)]

pub mod answer;
pub mod api;
pub mod audit;
pub mod casefile;
pub mod client;
pub mod clock;
pub mod config;
pub mod consumer;
pub mod contracting;
pub mod datasets;
pub mod engine;
mod error;
pub mod home;
pub mod negotiation;
pub mod offers;
pub mod officer;
pub mod plan_cache;
pub mod provider;
pub mod publication;
pub mod refusals;
pub mod replay;
pub mod rooted;
pub mod server;
pub mod service;
pub mod store;
pub mod tables;

pub use error::{Error, Result};
