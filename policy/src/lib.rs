//! The pure trust core of the data space: no network, no storage, no data
//! rows. It holds identities and signatures ([`keys`], [`jws`],
//! [`credential`], [`token`], [`replay`]), signed documents and their
//! canonical hashes ([`document`], [`canonical`], [`contract`]), the
//! usage-policy model ([`model`]), and the enforcement of a policy on a
//! DataFusion plan ([`sql`] is the entry point, [`enforce`] the rules, one
//! per file, [`barrier`] the plan nodes the optimizer cannot cross), with a
//! bounded cache ([`memo`]), random ids ([`id`]) and the red-team
//! fixture's schema for tests ([`sample`]).
//!
//! Start with [`sql::plan_governed_sql`] for a query, [`model::UsagePolicy`]
//! for a policy and [`document::SignedDocument`] for what is signed;
//! `ARCHITECTURE.md` at the repository root shows how the crates fit.

#![warn(missing_docs)]
#![warn(clippy::too_many_lines)]

pub mod barrier;
pub mod canonical;
pub mod contract;
pub mod credential;
pub mod document;
pub mod enforce;
pub mod error;
pub mod id;
pub mod jws;
pub mod keys;
pub mod memo;
pub mod model;
mod refusal;
pub mod replay;
pub mod sample;
pub mod sql;
pub mod token;

pub use error::{Error, Result};
