//! The connector's audit log: append-only, hash-chained, durable, with
//! signed checkpoints.
//!
//! Every negotiation step, agreement, revocation, query, refusal and quota
//! charge is an [`AuditEntry`] handed to [`AuditLog::append`], which returns
//! the stored [`AuditRecord`] only once it is durable, so the reply it
//! records can be sent afterwards. Each record carries `seq` (0, 1, 2, ...
//! without gaps), the hash of the record before it (`prev_hash`) and its own
//! `hash` over everything else; every `checkpoint_every` records the log
//! adds a [`RecordKind::Checkpoint`] signed with the connector's Ed25519 key.
//! [`verify`] checks a stored chain end to end and names the first broken
//! record.
//!
//! | file | holds |
//! |---|---|
//! | `bounded` | [`audit_sql`], [`bounded_text`]: inputs cut to a known size |
//! | `record` | [`AuditEntry`], [`AuditRecord`], [`RecordKind`], the record hash |
//! | `chain` | [`Chain`]: the pure sequencing core (seq, links, checkpoints) |
//! | `checkpoint` | the signed checkpoint JWS |
//! | `store`, `sled_store` | [`AuditStore`] with [`MemoryAuditStore`] and [`SledAuditStore`] |
//! | `log` | [`AuditLog`]: the writer thread and group commit |
//! | `verify`, `chunk` | [`verify`]; the check of one chunk |
//! | `report` | [`VerifyReport`], [`Broken`], [`Recovery`]: what a verification finds |
//! | `head` | the signed head outside the log, and the check against it |
//! | `recovery` | the owner's recovery of a broken log: the signed `recovered` record |
//! | `evidence` | a log checked against kept receipts and exported checkpoints |
//! | `home` | the home-folder layout, [`open_log`] and [`verify_home`] |
//!
//! This module has its own error type, [`AuditError`].

mod bounded;
mod chain;
mod checkpoint;
mod chunk;
mod error;
mod evidence;
mod head;
mod home;
mod log;
mod record;
mod recovery;
mod report;
mod sled_store;
mod store;
mod verify;

pub use bounded::{audit_sql, bounded_text};
pub use chain::{Chain, DEFAULT_CHECKPOINT_EVERY};
pub use checkpoint::{CHECKPOINT_TYP, CheckpointClaims};
pub use error::{AuditError, Result};
pub use evidence::{Evidence, EvidenceReport, Finding, check_evidence};
pub use head::{
    HEAD_FILE, HEAD_TYP, HeadClaims, HeadState, HeadWriter, check_head, head_path, read_head,
};
pub use home::{
    AUDIT_DIR, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, RecoveryDone, SignedStatements, audit_dir,
    checkpoints_home, open_log, verify_home, verify_home_against, write_new_keys,
};
pub use log::{AuditLog, MAX_BATCH};
pub use record::{AuditEntry, AuditRecord, GENESIS_HASH, RecordKind};
pub use recovery::{RECOVERED_TYP, RecoveredClaims};
pub use report::{Broken, Recovery, VerifyReport};
pub use sled_store::{AUDIT_TREE, SledAuditStore};
pub use store::{AuditStore, MemoryAuditStore};
pub use verify::{VERIFY_CHUNK, verify};
