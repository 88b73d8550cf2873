//! The one error type of the catalog.

use thiserror::Error;

/// Result with the catalog's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the catalog, its store and its client. Messages are
/// lower-case and put user input in backticks.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad input; `field` names the offending part (a JSON path or a
    /// parameter name).
    #[error("invalid `{field}`: {reason}")]
    Invalid { field: String, reason: String },
    /// A signed document or credential that does not verify, is malformed,
    /// or comes from an untrusted authority.
    #[error("{context}: {source}")]
    Trust {
        context: String,
        #[source]
        source: policy::Error,
    },
    /// A document signed by someone other than the participant it names.
    #[error("the {what} names `{claimed}` but is not signed with its registered key")]
    WrongSigner { what: String, claimed: String },
    /// A participant that never registered with this catalog.
    #[error("participant `{0}` is not registered")]
    NotRegistered(String),
    /// A document signed with a key no registered participant holds.
    #[error("the {what} is signed with key `{key_id}`, which no registered participant holds")]
    UnknownSigner { what: &'static str, key_id: String },
    /// A registered participant whose credential has expired.
    #[error("the membership credential of `{0}` has expired; register again")]
    CredentialExpired(String),
    /// Something asked for does not exist.
    #[error("no {what} `{id}`")]
    NotFound { what: &'static str, id: String },
    /// A request that conflicts with the current state (stale version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store failed or holds corrupt data.
    #[error("storage error: {0}")]
    Storage(String),
    /// The configuration is invalid.
    #[error("configuration: `{field}` {reason}")]
    Config { field: String, reason: String },
    /// The HTTP server failed.
    #[error("the server failed: {0}")]
    Server(String),
    /// The catalog could not be reached, or answered with something that is
    /// not a catalog response (client side).
    #[error("catalog unreachable or answered badly: {0}")]
    Transport(String),
    /// The catalog refused a request (client side): its status and message.
    #[error("the catalog answered {status}: {message}")]
    Refused {
        status: u16,
        message: String,
        field: Option<String>,
    },
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Trust`].
    pub fn trust(context: impl Into<String>, source: policy::Error) -> Self {
        Self::Trust {
            context: context.into(),
            source,
        }
    }

    /// Shorthand for [`Error::Storage`].
    pub fn storage(detail: impl std::fmt::Display) -> Self {
        Self::Storage(detail.to_string())
    }

    /// Shorthand for [`Error::Config`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}
