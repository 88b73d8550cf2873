//! Recovering a broken log, on the owner's explicit request: the records
//! from the first broken one on are exported to a file and removed, and a
//! [`RecordKind::Recovered`] record is appended whose `detail` is a compact
//! JWS (`typ` [`RECOVERED_TYP`], the connector's key) over
//! [`RecoveredClaims`]: what was lost, what the head had vouched for, why.
//!
//! Sequence numbers go on from the last intact record, so the numbers of
//! the lost records are used again; the signed `recovered` record is what
//! tells a receipt for a lost record from a rewritten log (see
//! `dataspace audit verify --receipts`).

use std::io::Write;
use std::path::{Path, PathBuf};

use policy::jws::{sign_jws, verify_jws};
use policy::keys::{KeyPair, PublicKey};
use serde::{Deserialize, Serialize};

use super::error::{AuditError, Result};
use super::head::HeadState;
use super::record::{AuditEntry, AuditRecord, RecordKind};
use super::report::{Broken, Recovery};
use super::store::AuditStore;

/// The JWS `typ` of a recovery statement.
pub const RECOVERED_TYP: &str = "audit-recovered+jws";

/// What a `recovered` record states, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveredClaims {
    /// The `recovered` record's own sequence number.
    pub seq: u64,
    /// The hash of the record before it (the last intact one).
    pub prev_hash: String,
    /// The first sequence number found broken or missing (equal to `seq`).
    pub lost_from: u64,
    /// The last sequence number the head vouched for, if it was readable
    /// and beyond `lost_from`: records `lost_from..=lost_to` are gone.
    pub lost_to: Option<u64>,
    /// The hash of that last record, as the head named it.
    pub lost_head_hash: Option<String>,
    /// Records removed from the store (damaged or unlinked), exported first.
    pub removed: u64,
    /// Why the log was broken, as verification said.
    pub reason: String,
    /// Unix seconds.
    pub at: i64,
}

/// Checks a `recovered` record: a JWS by `signer` of `typ` [`RECOVERED_TYP`]
/// whose claims match the record's position. `Err` holds the reason.
pub fn check_recovered(record: &AuditRecord, signer: &PublicKey) -> Result<Recovery, String> {
    let jws = record
        .detail
        .as_deref()
        .ok_or("the recovery statement carries no signature")?;
    let (header, claims): (_, RecoveredClaims) = verify_jws(jws, signer, "audit recovery")
        .map_err(|e| format!("the recovery statement is not valid: {e}"))?;
    if header.typ() != RECOVERED_TYP {
        return Err(format!(
            "the recovery statement's `typ` is `{}`, expected `{RECOVERED_TYP}`",
            header.typ()
        ));
    }
    if claims.seq != record.seq || claims.prev_hash != record.prev_hash {
        return Err(format!(
            "the recovery statement signs #{} after `{}`, not this position",
            claims.seq, claims.prev_hash
        ));
    }
    Ok(Recovery {
        seq: claims.seq,
        lost_from: claims.lost_from,
        lost_to: claims.lost_to,
        reason: claims.reason,
    })
}

/// What [`prepare`] did to the store before the `recovered` record.
#[derive(Debug)]
pub struct Prepared {
    /// The entry to append (its JWS already signed for its position).
    pub entry: AuditEntry,
    /// Where the removed records were exported, if any was.
    pub exported: Option<PathBuf>,
    /// The statement signed.
    pub claims: RecoveredClaims,
}

/// Exports and removes the records from `from` on, the first record that is
/// not intact (those the store can still read go to
/// `HOME/audit-lost-<unix seconds>.jsonl`), and signs the `recovered` entry
/// that will take its place after the last intact record. `broken` is what
/// verification found (a damaged record, or a head the log does not match).
pub fn prepare(
    home: &Path,
    store: &dyn AuditStore,
    head: &HeadState,
    from: u64,
    broken: &Broken,
    key: &KeyPair,
    now: i64,
) -> Result<Prepared> {
    let exported = export_from(home, store, from, now)?;
    let removed = exported.as_ref().map_or(0, |(_, n)| *n);
    store.remove_from(from)?;
    let prev_hash = match from {
        0 => super::record::GENESIS_HASH.to_owned(),
        _ => {
            store
                .get(from - 1)?
                .ok_or_else(|| AuditError::store(format!("record #{} vanished", from - 1)))?
                .hash
        }
    };
    let (lost_to, lost_head_hash) = match head {
        HeadState::Valid(claims) if claims.seq >= from => {
            (Some(claims.seq), Some(claims.hash.clone()))
        }
        _ => (None, None),
    };
    let claims = RecoveredClaims {
        seq: from,
        prev_hash,
        lost_from: from,
        lost_to,
        lost_head_hash,
        removed,
        reason: broken.reason.clone(),
        at: now,
    };
    let jws = sign_jws(RECOVERED_TYP, false, &claims, key)?;
    let entry = AuditEntry::new(RecordKind::Recovered, key.public_key().key_id())
        .with_decision("recovered".to_owned())
        .with_detail(jws);
    Ok(Prepared {
        entry,
        exported: exported.map(|(path, _)| path),
        claims,
    })
}

/// Writes the readable records from `from` on as JSON Lines; `None` when
/// there is none.
fn export_from(
    home: &Path,
    store: &dyn AuditStore,
    from: u64,
    now: i64,
) -> Result<Option<(PathBuf, u64)>> {
    let path = home.join(format!("audit-lost-{now}.jsonl"));
    let io =
        |e: std::io::Error| AuditError::store(format!("cannot write `{}`: {e}", path.display()));
    let mut out: Option<std::io::BufWriter<std::fs::File>> = None;
    let mut count = 0;
    let mut next = from;
    loop {
        // Read one at a time past damaged records: export what can be read.
        let chunk = match store.range(next, 1024) {
            Ok(chunk) => chunk,
            Err(AuditError::Corrupt { seq, .. }) => {
                next = seq + 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let Some(last) = chunk.last() else { break };
        next = last.seq + 1;
        for record in &chunk {
            let writer = match &mut out {
                Some(writer) => writer,
                None => out.insert(std::io::BufWriter::new(
                    std::fs::File::create_new(&path).map_err(io)?,
                )),
            };
            let line =
                serde_json::to_string(record).map_err(|e| AuditError::Encode(e.to_string()))?;
            writeln!(writer, "{line}").map_err(io)?;
            count += 1;
        }
    }
    match out {
        Some(mut writer) => {
            writer.flush().map_err(io)?;
            writer.get_ref().sync_all().map_err(io)?;
            Ok(Some((path, count)))
        }
        None => Ok(None),
    }
}
