//! Signed checkpoints: every so many records the log appends a
//! [`RecordKind::Checkpoint`] record whose `detail` is a compact JWS, signed
//! with the connector's Ed25519 key, over [`CheckpointClaims`].
//!
//! No `policy::document::DocumentKind` names an audit checkpoint (that enum
//! is the trust core's list of exchanged documents), so the JWS is made with
//! `policy::jws::sign_jws` directly, `typ` [`CHECKPOINT_TYP`], `kid` the
//! signer's key id, without an embedded `jwk`: a checkpoint is verified with
//! the connector's known public key, never with a key it carries.

use serde::{Deserialize, Serialize};

use policy::jws::{sign_jws, verify_jws};
use policy::keys::{KeyPair, PublicKey};

use super::error::Result;
use super::record::{AuditEntry, AuditRecord, RecordKind};

/// The JWS `typ` of a checkpoint.
pub const CHECKPOINT_TYP: &str = "audit-checkpoint+jws";

/// What a checkpoint vouches for: the chain up to and including record
/// `seq - 1`, whose hash is `prev_hash`. `count` is the number of records
/// before the checkpoint (equal to `seq`, signed so that an exported
/// checkpoint alone states the length of the log it saw).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointClaims {
    /// The checkpoint record's own sequence number.
    pub seq: u64,
    /// The hash of the record before it.
    pub prev_hash: String,
    /// How many records precede it.
    pub count: u64,
}

/// The checkpoint entry that follows a record with hash `prev_hash`, to be
/// sealed as record `seq`. Its actor is the signer's key id.
pub fn checkpoint_entry(seq: u64, prev_hash: &str, key: &KeyPair) -> Result<AuditEntry> {
    let claims = CheckpointClaims {
        seq,
        prev_hash: prev_hash.to_owned(),
        count: seq,
    };
    let jws = sign_jws(CHECKPOINT_TYP, false, &claims, key)?;
    Ok(AuditEntry::new(RecordKind::Checkpoint, key.public_key().key_id()).with_detail(jws))
}

/// Checks a checkpoint record: a JWS by `signer` of `typ`
/// [`CHECKPOINT_TYP`] whose claims match the record. `Err` holds the reason.
pub fn check_checkpoint(record: &AuditRecord, signer: &PublicKey) -> Result<(), String> {
    let jws = record
        .detail
        .as_deref()
        .ok_or("the checkpoint carries no signature")?;
    let (header, claims): (_, CheckpointClaims) = verify_jws(jws, signer, "audit checkpoint")
        .map_err(|e| format!("the checkpoint is not valid: {e}"))?;
    if header.typ() != CHECKPOINT_TYP {
        return Err(format!(
            "the checkpoint's `typ` is `{}`, expected `{CHECKPOINT_TYP}`",
            header.typ()
        ));
    }
    let expected = CheckpointClaims {
        seq: record.seq,
        prev_hash: record.prev_hash.clone(),
        count: record.seq,
    };
    if claims != expected {
        return Err(format!(
            "the checkpoint signs #{} after `{}` ({} records), not this position",
            claims.seq, claims.prev_hash, claims.count
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::GENESIS_HASH;

    fn sealed(seq: u64, prev: &str, key: &KeyPair) -> AuditRecord {
        AuditRecord::seal(checkpoint_entry(seq, prev, key).unwrap(), seq, prev.into()).unwrap()
    }

    #[test]
    fn a_checkpoint_verifies_with_its_signer_only() {
        let key = KeyPair::generate().unwrap();
        let record = sealed(5, GENESIS_HASH, &key);
        assert_eq!(record.actor, key.public_key().key_id());
        check_checkpoint(&record, &key.public_key()).unwrap();
        let other = KeyPair::generate().unwrap().public_key();
        let reason = check_checkpoint(&record, &other).unwrap_err();
        assert!(reason.contains("signature"), "{reason}");
    }

    #[test]
    fn a_checkpoint_moved_elsewhere_is_refused() {
        let key = KeyPair::generate().unwrap();
        let mut record = sealed(5, GENESIS_HASH, &key);
        record.seq = 6;
        let reason = check_checkpoint(&record, &key.public_key()).unwrap_err();
        assert!(reason.contains("not this position"), "{reason}");
        let mut record = sealed(5, GENESIS_HASH, &key);
        record.prev_hash = format!("sha256:{}", "f".repeat(64));
        assert!(check_checkpoint(&record, &key.public_key()).is_err());
    }

    #[test]
    fn a_missing_or_foreign_jws_is_refused() {
        let key = KeyPair::generate().unwrap();
        let mut record = sealed(1, GENESIS_HASH, &key);
        record.detail = None;
        assert!(check_checkpoint(&record, &key.public_key()).is_err());
        let claims = CheckpointClaims {
            seq: 1,
            prev_hash: GENESIS_HASH.into(),
            count: 1,
        };
        record.detail = Some(sign_jws("receipt+jws", false, &claims, &key).unwrap());
        let reason = check_checkpoint(&record, &key.public_key()).unwrap_err();
        assert!(reason.contains("typ"), "{reason}");
    }
}
