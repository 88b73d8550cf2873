//! The signed head of the log, kept outside the log's database, and the
//! check of a stored chain against it.
//!
//! A chain cannot prove that nothing was cut from its end, and sled treats a
//! damaged log entry like a torn write: it opens on a shorter log without a
//! word. So after every group commit the writer rewrites `HOME/audit-head.jws`
//! in place, a compact JWS (`typ` [`HEAD_TYP`], the connector's Ed25519 key) over
//! [`HeadClaims`]: the last record's `seq`, its hash and the record count.
//! The head is written after the batch is durable and before any appender of
//! the batch is answered, so every record a receipt names is at or below it.
//!
//! The store also keeps, in the same atomic write as each batch, which
//! sequence numbers that batch held ([`AuditStore::last_batch`]). That tells
//! the one legitimate lag (a crash after the batch was flushed and before
//! the head was replaced: the head names the record just before the last
//! batch) from an old head put back in place of the current one. An old head
//! exactly one batch behind is indistinguishable from that crash; an older
//! one is caught.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use policy::jws::{sign_jws, verify_jws};
use policy::keys::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};

use super::error::{AuditError, Result};
use super::record::AuditRecord;
use super::report::{Broken, VerifyReport};
use super::store::AuditStore;

/// The JWS `typ` of the head.
pub const HEAD_TYP: &str = "audit-head+jws";

/// The head file, relative to the home folder.
pub const HEAD_FILE: &str = "audit-head.jws";

/// `HOME/audit-head.jws`.
pub fn head_path(home: &Path) -> PathBuf {
    home.join(HEAD_FILE)
}

/// What the head vouches for: the log ends with record `seq`, whose hash is
/// `hash`, and holds `count` records (`seq + 1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadClaims {
    /// The last record's sequence number.
    pub seq: u64,
    /// The last record's hash.
    pub hash: String,
    /// How many records the log holds.
    pub count: u64,
}

/// What was found where the head should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadState {
    /// No head file.
    Missing,
    /// A head file that is not a valid head signed by the connector.
    Invalid(String),
    /// A valid head.
    Valid(HeadClaims),
}

/// Bytes of the head file: the JWS, padded with spaces. Written in place at
/// a fixed size, so that a replacement is one `pwrite` of one block, with
/// no file created or renamed per batch.
const HEAD_BYTES: usize = 1024;

/// Writes the signed head after each batch.
pub struct HeadWriter {
    path: PathBuf,
    key: Arc<KeyPair>,
    file: Mutex<Option<std::fs::File>>,
}

impl std::fmt::Debug for HeadWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeadWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HeadWriter {
    /// A writer of the head file `path`, signing with `key`.
    pub fn new(path: PathBuf, key: Arc<KeyPair>) -> Self {
        Self {
            path,
            key,
            file: Mutex::new(None),
        }
    }

    /// The head file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the head with one naming `last`, in place: one write of
    /// [`HEAD_BYTES`] at offset 0. The write is in the page cache when this
    /// returns, so it survives the process being killed (like sled's own
    /// flush); it is not synced to the device per batch (that cost 3 to 4
    /// times the append rate of one appender). After a power cut the head
    /// may be older than the log or torn: the log is then reported broken
    /// and the owner's recovery signs what it found.
    pub fn write(&self, last: &AuditRecord) -> Result<()> {
        let claims = HeadClaims {
            seq: last.seq,
            hash: last.hash.clone(),
            count: last.seq + 1,
        };
        let jws = sign_jws(HEAD_TYP, false, &claims, &self.key)?;
        let io = |e: std::io::Error| {
            AuditError::store(format!(
                "cannot write the audit head `{}`: {e}",
                self.path.display()
            ))
        };
        if jws.len() >= HEAD_BYTES {
            return Err(AuditError::Encode(format!(
                "a signed head of {} bytes does not fit in {HEAD_BYTES}",
                jws.len()
            )));
        }
        let mut block = jws.into_bytes();
        block.resize(HEAD_BYTES - 1, b' ');
        block.push(b'\n');
        let mut file = self
            .file
            .lock()
            .map_err(|_| AuditError::store("the audit head lock is poisoned"))?;
        if file.is_none() {
            let opened = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.path)
                .map_err(io)?;
            opened.set_len(HEAD_BYTES as u64).map_err(io)?;
            *file = Some(opened);
        }
        match file.as_ref() {
            Some(file) => file.write_all_at(&block, 0).map_err(io),
            None => Err(AuditError::store("the audit head is not open")),
        }
    }
}

/// Reads the head at `path`, checking it is signed by `signer`.
pub fn read_head(path: &Path, signer: &PublicKey) -> HeadState {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HeadState::Missing,
        Err(e) => return HeadState::Invalid(format!("it cannot be read: {e}")),
    };
    let Ok(text) = std::str::from_utf8(&text) else {
        return HeadState::Invalid("it is not text".into());
    };
    match verify_jws::<HeadClaims>(text.trim(), signer, "audit head") {
        Ok((header, _)) if header.typ() != HEAD_TYP => HeadState::Invalid(format!(
            "its `typ` is `{}`, expected `{HEAD_TYP}`",
            header.typ()
        )),
        Ok((_, claims)) if claims.count != claims.seq + 1 => {
            HeadState::Invalid("its count does not follow from its sequence number".into())
        }
        Ok((_, claims)) => HeadState::Valid(claims),
        Err(e) => HeadState::Invalid(format!("it is not a valid signed head: {e}")),
    }
}

/// Whether the verified chain `report` of `store` is what `head` vouches
/// for. `live` is for a log being written while it is checked: records
/// after the head are then expected. Returns the first break it implies,
/// naming a sequence number; `None` when the log is complete.
pub fn check_head(
    store: &dyn AuditStore,
    head: &HeadState,
    report: &VerifyReport,
    live: bool,
) -> Result<Option<Broken>> {
    // The records verified intact: #0 ..= #(len - 1).
    let len = report.records;
    let claims = match head {
        HeadState::Missing if len == 0 => return Ok(None),
        // A crash after the very first batch was flushed, before its head.
        HeadState::Missing if !live && store.last_batch()? == Some((0, len - 1)) => {
            return Ok(None);
        }
        HeadState::Missing => {
            return Ok(Some(Broken {
                seq: len,
                reason: "the signed audit head is missing, so nothing vouches that the log \
                         ended here: records from this one on may have been cut"
                    .into(),
            }));
        }
        HeadState::Invalid(why) => {
            return Ok(Some(Broken {
                seq: len,
                reason: format!(
                    "the signed audit head is damaged ({why}), so nothing vouches that the \
                     log ended here: records from this one on may have been cut"
                ),
            }));
        }
        HeadState::Valid(claims) => claims,
    };
    if claims.seq >= len {
        return Ok(Some(Broken {
            seq: len,
            reason: format!(
                "it is missing: the signed audit head says the log ends at #{} ({} records), \
                 so records #{}..=#{} were lost",
                claims.seq, claims.count, len, claims.seq
            ),
        }));
    }
    let Some(record) = store.get(claims.seq)? else {
        return Ok(Some(Broken {
            seq: claims.seq,
            reason: "it is missing, though the signed audit head names it".into(),
        }));
    };
    if record.hash != claims.hash {
        return Ok(Some(Broken {
            seq: claims.seq,
            reason: "its hash differs from the one the signed audit head names: the log \
                     was rewritten from here on or before"
                .into(),
        }));
    }
    let last = len - 1;
    if claims.seq == last || live {
        return Ok(None);
    }
    // The log goes on after the head: only a crash between the flush of the
    // last batch and the head's replacement leaves that, and then the head
    // names the record just before the last batch.
    match store.last_batch()? {
        Some((first, batch_last)) if batch_last == last && first == claims.seq + 1 => Ok(None),
        _ => Ok(Some(Broken {
            seq: claims.seq + 1,
            reason: format!(
                "the signed audit head names #{} but the log goes on to #{last}: the head \
                 is older than the log (an older head put back?)",
                claims.seq
            ),
        })),
    }
}
