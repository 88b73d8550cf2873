//! The one error type of the catalog.

use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// Result with the catalog's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A fault of any kind, as the HTTP client's body reader reports it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What can go wrong in the catalog, its store and its client. Messages are
/// lower-case and put user input in backticks. Where a lower layer failed,
/// its error is kept as the typed source, never flattened to text.
#[derive(Debug, Error)]
pub enum Error {
    /// Bad input; `field` names the offending part (a JSON path or a
    /// parameter name).
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The offending part: a JSON path or a parameter name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A signed document or credential that does not verify, is malformed,
    /// or comes from an untrusted authority.
    #[error("{context}: {source}")]
    Trust {
        /// What was being verified.
        context: String,
        /// Why it does not verify.
        #[source]
        source: policy::Error,
    },
    /// A document signed by someone other than the participant it names.
    #[error("the {what} names `{claimed}` but is not signed with its registered key")]
    WrongSigner {
        /// The document (or the part of it) at fault.
        what: String,
        /// The participant it names.
        claimed: String,
    },
    /// A participant that never registered with this catalog.
    #[error("participant `{0}` is not registered")]
    NotRegistered(String),
    /// A document signed with a key no registered participant holds.
    #[error("the {what} is signed with key `{key_id}`, which no registered participant holds")]
    UnknownSigner {
        /// The document.
        what: &'static str,
        /// The id of the key in its header.
        key_id: String,
    },
    /// A registered participant whose credential has expired.
    #[error("the membership credential of `{0}` has expired; register again")]
    CredentialExpired(String),
    /// Something asked for does not exist.
    #[error("no {what} `{id}`")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its id.
        id: String,
    },
    /// A request that conflicts with the current state (stale version).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The sled store could not be opened.
    #[error("cannot open the store `{path}`: {source}")]
    StoreOpen {
        /// The store's folder.
        path: PathBuf,
        /// Why.
        #[source]
        source: sled::Error,
    },
    /// The sled store failed.
    #[error("storage error: {0}")]
    Storage(#[from] sled::Error),
    /// The store holds data that does not decode.
    #[error("the store holds a corrupt {what}")]
    Corrupt {
        /// What does not decode.
        what: &'static str,
        /// The decoding error, where the corrupt part is JSON.
        #[source]
        source: Option<serde_json::Error>,
    },
    /// A value could not be encoded as JSON.
    #[error("cannot encode the {what}: {source}")]
    Encode {
        /// The value.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The configuration is invalid.
    #[error("configuration: `{field}` {reason}")]
    Config {
        /// The option at fault.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file could not be read.
    #[error("cannot read `{path}`: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A configuration file is not valid TOML for its options.
    #[error("invalid `{file}`: {source}")]
    ConfigSyntax {
        /// The file.
        file: String,
        /// Where and why.
        #[source]
        source: Box<toml::de::Error>,
    },
    /// The authority key file is neither an `authority.json` nor a public
    /// JWK.
    #[error("`{path}` is neither `authority.json` nor a public JWK: {source}")]
    AuthorityKey {
        /// The file.
        path: PathBuf,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// The HTTP server could not listen on its address.
    #[error("cannot listen on `{address}`: {source}")]
    Listen {
        /// The address.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("the server failed: {0}")]
    Server(#[source] std::io::Error),
    /// A request to the catalog could not be built (client side).
    #[error("cannot build a request to `{url}`: {source}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper::http::Error,
    },
    /// The catalog could not be reached (client side).
    #[error("cannot reach `{url}`: {source}")]
    Unreachable {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The catalog did not answer in time (client side).
    #[error("`{url}` did not answer within {after:?}")]
    Timeout {
        /// The URL.
        url: String,
        /// The time limit.
        after: Duration,
    },
    /// The catalog answered with something that is not a catalog response,
    /// or its answer could not be read (client side).
    #[error("the answer of `{url}` is not what was expected: {source}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// Why: the body reader's, the JSON decoder's or the UTF-8 error.
        #[source]
        source: BoxError,
    },
    /// The catalog refused a request (client side): its status and message.
    #[error("the catalog answered {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The catalog's message.
        message: String,
        /// The part of the request at fault, if the catalog named one.
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

    /// Shorthand for [`Error::Config`].
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Corrupt`] of a part that is not JSON.
    pub fn corrupt(what: &'static str) -> Self {
        Self::Corrupt { what, source: None }
    }
}
