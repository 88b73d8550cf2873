//! The error type of the audit log.

use thiserror::Error;

/// Result with the audit log's error as default.
pub type Result<T, E = AuditError> = std::result::Result<T, E>;

/// What can go wrong while writing, reading or verifying the audit log.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The storage engine failed (I/O, a damaged database, a lock held by
    /// another process).
    #[error("audit store error: {0}")]
    Store(String),
    /// The audit database exists but cannot be opened: its files are
    /// damaged.
    #[error("the audit store `{path}` cannot be opened: {reason}")]
    Unopenable {
        /// The audit database's folder.
        path: String,
        /// What the storage engine said.
        reason: String,
    },
    /// A stored record cannot be decoded, or is stored under another
    /// sequence number than its own.
    #[error("audit record #{seq} cannot be read: {reason}")]
    Corrupt {
        /// The record's sequence number.
        seq: u64,
        /// Why it cannot be read.
        reason: String,
    },
    /// A record could not be encoded as JSON.
    #[error("cannot encode an audit record: {0}")]
    Encode(String),
    /// The last stored record does not match its hash, so the chain cannot be
    /// resumed on top of it.
    #[error("the last audit record #{seq} does not match its hash; verify the audit log")]
    TamperedHead {
        /// The last record's sequence number.
        seq: u64,
    },
    /// The stored chain is broken or shorter than its signed head says.
    #[error(
        "the audit log is broken at record #{seq}: {reason}. The connector does not serve on a \
         broken log: inspect it with `dataspace audit verify --home {home}`, then start with \
         `--recover-audit` to export and remove the records from #{seq} on and sign a \
         `recovered` record (see docs/officer.md)"
    )]
    Broken {
        /// The first record that fails or is missing.
        seq: u64,
        /// Why, as verification said.
        reason: String,
        /// The connector's home folder, for the commands to run.
        home: String,
    },
    /// A write failed earlier; the log accepts no more records until the
    /// connector is restarted (it resumes from what is durable).
    #[error("the audit log stopped after a failed write: {reason}")]
    Halted {
        /// Why the write failed.
        reason: String,
    },
    /// The log was closed.
    #[error("the audit log is closed")]
    Closed,
    /// An invalid setting.
    #[error("invalid audit setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No audit log where one was expected.
    #[error("no audit log at `{path}`")]
    Missing {
        /// Where the log was looked for.
        path: String,
    },
    /// Keys, hashes and signatures (the trust core).
    #[error(transparent)]
    Policy(#[from] policy::Error),
}

impl AuditError {
    /// Shorthand for [`AuditError::Store`].
    pub(crate) fn store(error: impl std::fmt::Display) -> Self {
        Self::Store(error.to_string())
    }
}
