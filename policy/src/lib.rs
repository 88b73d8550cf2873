//! placeholder
pub mod barrier;
pub mod enforce;
pub mod error;
pub mod model;
pub mod sql;
pub use error::{Error, Result};
pub mod canonical;
pub mod contract;
pub mod credential;
pub mod document;
pub mod jws;
pub mod keys;
pub mod memo;
pub mod replay;
mod refusal;
pub mod token;
