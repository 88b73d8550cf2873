//! A participant's connector: datasets under data roots, signed offers,
//! contract negotiation (provider and consumer side), governed query
//! execution with signed receipts, a durable hash-chained audit log, and the
//! HTTP API (`api`) over it. Domain modules know no HTTP.

pub mod answer;
pub mod api;
pub mod audit;
pub mod casefile;
pub mod client;
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
pub mod publication;
pub mod query;
pub mod refusals;
pub mod replay;
pub mod rooted;
pub mod server;
pub mod service;
pub mod store;
pub mod tables;

pub use error::{Error, Result};
