//! The shared catalog of the data space: where providers publish signed
//! descriptions of their datasets and offers, and consumers find them.
//!
//! - [`registry`]: participants register with their membership credential;
//!   the catalog keeps their keys and attributes.
//! - [`publish`]: a description, its offers and their policies must all be
//!   signed with the provider's registered key; versions only grow.
//! - [`search`]: an in-memory inverted index with filters and stable pages.
//! - [`openness`]: each provider's openness list (开放清单), JSON and HTML.
//! - [`dcat`]: the whole catalog as DCAT 3 with ODRL offers (JSON-LD).
//! - [`store`]: the storage trait, sled and in-memory.
//! - [`service`]: [`Catalog`], tying them together; [`api`] is its HTTP
//!   layer (axum) and the only module that knows HTTP status codes;
//!   [`server`] runs it; [`client`] talks to it. [`api::kit`] and
//!   [`api::reply`] are the HTTP error layer the connector's API shares.
//! - [`sample`]: sample providers and descriptions for tests and benches.
//!
//! Domain modules never import axum.
//!
//! Where to start reading: [`service::Catalog`] (each of its methods is
//! one request: verify, store, index), then [`publish`] for what makes a
//! description acceptable, [`model`] for what is stored and answered, and
//! [`api`] for how it is served; [`api::kit`] is the error layer the
//! connector's API shares. [`sample`] makes signed sample data for tests
//! and benchmarks.

#![warn(missing_docs)]
#![warn(clippy::too_many_lines)]

pub mod api;
pub mod client;
pub mod config;
pub mod dcat;
mod error;
pub mod model;
pub mod openness;
pub mod publish;
pub mod registry;
pub mod sample;
pub mod search;
pub mod server;
pub mod service;
pub mod store;

pub use client::CatalogClient;
pub use error::{BoxError, Error, Result};
pub use model::{ColumnDescription, DatasetDescription, Unpublish};
pub use service::{Catalog, CatalogSettings};
