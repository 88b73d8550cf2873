//! placeholder
pub mod error;
pub mod enforce;
pub mod model;
pub mod sql;
pub use error::{Error, Result};
pub mod canonical;
pub mod credential;
pub mod document;
pub mod jws;
pub mod keys;
pub mod replay;
pub mod token;
