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
    Table {
        name: String,
        path: String,
        reason: String,
    },
    /// A dataset file leads outside the data roots (a link, or a file
    /// swapped for one); nothing of it was read.
    #[error(transparent)]
    OutsideRoots(#[from] crate::rooted::OutsideRoots),
    /// A case file could not be read.
    #[error("cannot read the case file `{path}`: {reason}")]
    CaseFile { path: String, reason: String },
    /// The store failed or holds corrupt data.
    #[error("storage error: {0}")]
    Storage(String),
    /// Bad input from a caller; `field` names what is wrong.
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    /// Something asked for does not exist.
    #[error("no {what} `{id}`")]
    NotFound { what: &'static str, id: String },
    /// The caller is not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A peer (another connector or the catalog) failed or answered badly.
    #[error("peer error: {0}")]
    Peer(String),
    /// An error of the trust core (policy loading, signatures).
    #[error(transparent)]
    Policy(#[from] policy::Error),
}

impl From<crate::audit::AuditError> for Error {
    fn from(error: crate::audit::AuditError) -> Self {
        Self::Storage(error.to_string())
    }
}
