//! The one error type of the connector.

use thiserror::Error;

/// Result with the connector's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the connector.
#[derive(Debug, Error)]
pub enum Error {
    /// A query refused by a usage policy.
    #[error(transparent)]
    Refused(#[from] policy::enforce::Refusal),
    /// An accepted query failed while executing. The engine's message, which
    /// can quote data values, is only logged, under `id`.
    #[error("the query failed while executing (error id `{id}`)")]
    Execution { id: String },
    /// A table could not be registered.
    #[error("cannot register `{name}` from `{path}`: {reason}")]
    Table { name: String, path: String, reason: String },
    /// A case file could not be read.
    #[error("cannot read the case file `{path}`: {reason}")]
    CaseFile { path: String, reason: String },
    /// An error of the trust core (policy loading, signatures).
    #[error(transparent)]
    Policy(#[from] policy::Error),
}
