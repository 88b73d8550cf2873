//! The one error type of the connector.

use policy::enforce::Refusal;
use thiserror::Error;

use crate::audit::AuditError;

/// Result with the connector's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the connector.
#[derive(Debug, Error)]
pub enum Error {
    /// A query refused by a usage policy.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// An accepted query failed while executing. The engine's message, which
    /// can quote data values, is only logged, under `id`.
    #[error("the query failed while executing (error id `{id}`)")]
    Execution {
        /// The id the engine's message is logged under.
        id: String,
    },
    /// A table could not be registered.
    #[error("cannot register `{name}` from `{path}`: {reason}")]
    Table {
        /// The dataset's id.
        name: String,
        /// Where its files were looked for.
        path: String,
        /// Why they could not be read as a table.
        reason: String,
    },
    /// A dataset file leads outside the data roots (a link, or a file
    /// swapped for one); nothing of it was read.
    #[error(transparent)]
    OutsideRoots(#[from] OutsideRoots),
    /// A case file could not be read.
    #[error("cannot read the case file `{path}`: {reason}")]
    CaseFile {
        /// The case file.
        path: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The store failed or holds corrupt data.
    #[error("storage error: {0}")]
    Storage(String),
    /// Bad input from a caller; `field` names what is wrong.
    #[error("invalid `{field}`: {reason}")]
    Invalid {
        /// The input that is wrong.
        field: String,
        /// What is wrong with it, and how to mend it.
        reason: String,
    },
    /// Something asked for does not exist.
    #[error("no {what} `{id}`")]
    NotFound {
        /// What kind of thing (`dataset`, `offer`, ...).
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The caller is not allowed to do this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// The request conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A peer (another connector or the catalog) failed or answered badly.
    #[error("peer error: {0}")]
    Peer(String),
    /// A peer answered a request with an error: its HTTP status, its
    /// message and, when a usage policy refused, the id of the rule.
    #[error("peer error: {status}: {message}{}", rule_note(rule.as_deref(), message))]
    PeerAnswered {
        /// The peer's HTTP status.
        status: u16,
        /// The peer's message (`"error"` of its body).
        message: String,
        /// The refusing rule (`"rule"` of its body), if any.
        rule: Option<String>,
    },
    /// An error of the trust core (policy loading, signatures). A refusal
    /// of the trust core arrives as [`Error::Refused`], never here.
    #[error(transparent)]
    Policy(policy::Error),
    /// The audit log failed, or refuses to serve (a broken chain).
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl From<policy::Error> for Error {
    /// A refusal takes one path whichever layer made it: [`Error::Refused`].
    fn from(error: policy::Error) -> Self {
        match error {
            policy::Error::Refused(refusal) => Self::Refused(refusal),
            other => Self::Policy(other),
        }
    }
}

/// A dataset file whose real place is outside every data root; nothing of
/// it was read. `path` is relative to the root it was listed under.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the dataset `{dataset}` reads `{path}`, which leads outside the data roots, so it is not read: \
     replace the link with the file itself or add its target's folder to `data_roots`"
)]
pub struct OutsideRoots {
    /// The dataset.
    pub dataset: String,
    /// The offending file, relative to its data root.
    pub path: String,
}

/// ` (rule `id`)` after a peer's message that does not name its rule
/// already; nothing otherwise.
fn rule_note(rule: Option<&str>, message: &str) -> String {
    match rule {
        Some(rule) if !message.contains(rule) => format!(" (rule `{rule}`)"),
        _ => String::new(),
    }
}
