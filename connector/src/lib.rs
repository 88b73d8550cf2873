//! A participant's connector: governed query execution over registered
//! datasets, and the red-team case runner. (The HTTP service, negotiation
//! and the audit log are built on top of these.)

pub mod casefile;
pub mod engine;
mod error;
pub mod tables;

pub use error::{Error, Result};
