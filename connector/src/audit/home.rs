//! Where the audit log and the connector's keys live in a home folder, and
//! the two ways in: the running connector's [`open_log`] (checked against
//! the signed head, refused when broken unless recovering) and the offline
//! [`verify_home`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use policy::keys::{KeyPair, PublicKey};

use super::chain::Chain;
use super::error::{AuditError, Result};
use super::evidence::{Evidence, EvidenceReport, check_evidence};
use super::head::{HeadState, HeadWriter, check_head, head_path, read_head};
use super::log::AuditLog;
use super::record::RecordKind;
use super::recovery::{RecoveredClaims, prepare};
use super::report::{Broken, VerifyReport};
use super::sled_store::SledAuditStore;
use super::store::AuditStore;
use super::verify::verify;

/// The audit database folder, relative to the home folder.
pub const AUDIT_DIR: &str = "audit";
/// The connector's private key (PKCS#8), relative to the home folder.
pub const PRIVATE_KEY_FILE: &str = "keys/private.pk8";
/// The connector's public key (JWK), relative to the home folder.
pub const PUBLIC_KEY_FILE: &str = "keys/public.jwk.json";

/// `HOME/audit`.
pub fn audit_dir(home: &Path) -> PathBuf {
    home.join(AUDIT_DIR)
}

/// Generates the connector's key pair and writes it where a home keeps it
/// ([`PRIVATE_KEY_FILE`], mode 0600, and [`PUBLIC_KEY_FILE`]); refused when
/// a key is there already.
pub fn write_new_keys(home: &Path) -> Result<KeyPair> {
    let keys = home.join(PRIVATE_KEY_FILE);
    if let Some(dir) = keys.parent() {
        std::fs::create_dir_all(dir).map_err(AuditError::store)?;
    }
    let key = KeyPair::generate()?;
    key.save(&keys, false)?;
    key.public_key()
        .save_jwk(&home.join(PUBLIC_KEY_FILE), false)?;
    Ok(key)
}

/// What a recovery at start did.
#[derive(Debug, Clone)]
pub struct RecoveryDone {
    /// The signed statement of the `recovered` record.
    pub claims: RecoveredClaims,
    /// Where the removed records were exported, if any was.
    pub exported: Option<PathBuf>,
}

impl AuditLog {
    /// Opens (or creates) the sled audit log of the connector at `home`,
    /// signing checkpoints with `HOME/keys/private.pk8`; refused when the
    /// log is broken (see [`open_log`]).
    pub fn open_home(home: &Path, checkpoint_every: u64) -> Result<Self> {
        let key = KeyPair::load(&home.join(PRIVATE_KEY_FILE))?;
        open_log(home, Arc::new(key), checkpoint_every, false).map(|(log, _)| log)
    }
}

/// Opens (or creates) the audit log of the connector at `home`, signing with
/// `key`, after verifying the whole chain and checking it against the signed
/// head. A broken log is refused ([`AuditError::Broken`], naming the first
/// missing or damaged record) unless `recover`: then the records from the
/// first one that is not intact on are exported and removed, a signed
/// `recovered` record is appended, and the log goes on after it.
pub fn open_log(
    home: &Path,
    key: Arc<KeyPair>,
    checkpoint_every: u64,
    recover: bool,
) -> Result<(AuditLog, Option<RecoveryDone>)> {
    let signer = key.public_key();
    let head = read_head(&head_path(home), &signer);
    let (store, report, broken) = match SledAuditStore::open(&audit_dir(home)) {
        Ok(store) => {
            let store: Arc<dyn AuditStore> = Arc::new(store);
            let report = verify(store.as_ref(), &signer)?;
            let broken = match report.first_broken.clone() {
                Some(broken) => Some(broken),
                None => check_head(store.as_ref(), &head, &report, false)?,
            };
            (store, report, broken)
        }
        Err(AuditError::Unopenable { path, reason }) if recover => {
            // Nothing can be read: the damaged database is kept aside and
            // the log starts again with the signed statement of the loss.
            let aside = home.join(format!("audit.damaged-{}", chrono::Utc::now().timestamp()));
            std::fs::rename(audit_dir(home), &aside)
                .map_err(|e| AuditError::store(format!("cannot move `{path}` aside: {e}")))?;
            tracing::warn!(aside = %aside.display(), "the damaged audit store was moved aside");
            let store: Arc<dyn AuditStore> = Arc::new(SledAuditStore::open(&audit_dir(home))?);
            let report = verify(store.as_ref(), &signer)?;
            let broken = Broken {
                seq: 0,
                reason: format!(
                    "the audit store could not be opened ({reason}); it was moved to `{}`",
                    aside.display()
                ),
            };
            (store, report, Some(broken))
        }
        Err(AuditError::Unopenable { reason, .. }) => {
            return Err(AuditError::Broken {
                seq: 0,
                reason: unopenable_reason(&reason, &head),
                home: home.display().to_string(),
            });
        }
        Err(e) => return Err(e),
    };
    let writer = HeadWriter::new(head_path(home), Arc::clone(&key));
    let mut done = None;
    if let Some(broken) = broken {
        if !recover {
            return Err(AuditError::Broken {
                seq: broken.seq,
                reason: broken.reason,
                home: home.display().to_string(),
            });
        }
        done = Some(recover_at(
            home,
            store.as_ref(),
            &head,
            &report,
            &broken,
            &key,
            checkpoint_every,
            &writer,
        )?);
    } else if let Some(last) = store.last()? {
        // Brings a head left one batch behind by a crash up to date.
        writer.write(&last)?;
    }
    let log = AuditLog::open_with_head(store, key, checkpoint_every, Some(writer))?;
    Ok((log, done))
}

/// Why a log that cannot be opened is broken from #0 on.
fn unopenable_reason(reason: &str, head: &HeadState) -> String {
    let vouched = match head {
        HeadState::Valid(claims) => {
            format!("; the signed head vouches for {} records", claims.count)
        }
        _ => String::new(),
    };
    format!("the audit store cannot be opened, so no record can be read ({reason}){vouched}")
}

/// A log that cannot be opened, as verification reports it.
fn unopenable_report(reason: &str, head: &HeadState) -> VerifyReport {
    VerifyReport {
        records: 0,
        checkpoints: 0,
        head: None,
        first_broken: Some(Broken {
            seq: 0,
            reason: unopenable_reason(reason, head),
        }),
        recoveries: Vec::new(),
    }
}

/// Removes what is not intact, appends the signed `recovered` record and
/// writes the head naming it.
#[allow(clippy::too_many_arguments)]
fn recover_at(
    home: &Path,
    store: &dyn AuditStore,
    head: &HeadState,
    report: &VerifyReport,
    broken: &Broken,
    key: &Arc<KeyPair>,
    checkpoint_every: u64,
    writer: &HeadWriter,
) -> Result<RecoveryDone> {
    let now = chrono::Utc::now().timestamp();
    let prepared = prepare(home, store, head, report.records, broken, key, now)?;
    let last = store.last()?;
    let mut chain = Chain::resume(last.as_ref(), Arc::clone(key), checkpoint_every)?;
    let mut records = Vec::with_capacity(2);
    chain.seal(prepared.entry, &mut records)?;
    store.append_batch(&records)?;
    if let Some(last) = records.last() {
        writer.write(last)?;
    }
    tracing::warn!(
        lost_from = prepared.claims.lost_from,
        lost_to = ?prepared.claims.lost_to,
        exported = ?prepared.exported,
        "the audit log was recovered: {}",
        prepared.claims.reason
    );
    Ok(RecoveryDone {
        claims: prepared.claims,
        exported: prepared.exported,
    })
}

/// Verifies the audit log of the connector at `home` against its public key
/// `HOME/keys/public.jwk.json` and its signed head `HOME/audit-head.jws`.
/// Offline: the connector must not be running (sled keeps its database
/// locked), and a missing log is an error, not an empty chain.
pub fn verify_home(home: &Path) -> Result<VerifyReport> {
    verify_home_against(home, &[], &[]).map(|(report, _)| report)
}
/// [`verify_home`], then the log checked against a consumer's kept
/// `receipts` and exported `checkpoints` (see [`check_evidence`]).
pub fn verify_home_against(
    home: &Path,
    receipts: &[Evidence],
    checkpoints: &[Evidence],
) -> Result<(VerifyReport, EvidenceReport)> {
    let signer = PublicKey::load_jwk(&home.join(PUBLIC_KEY_FILE))?;
    let head = read_head(&head_path(home), &signer);
    let store = match SledAuditStore::open_existing(&audit_dir(home)) {
        Ok(store) => store,
        Err(AuditError::Unopenable { reason, .. }) => {
            let report = unopenable_report(&reason, &head);
            let evidence = EvidenceReport::unreadable(receipts.len() + checkpoints.len());
            return Ok((report, evidence));
        }
        Err(e) => return Err(e),
    };
    let mut report = verify(&store, &signer)?;
    if report.first_broken.is_none() {
        report.first_broken = check_head(&store, &head, &report, false)?;
    }
    let evidence = check_evidence(&store, &report, &signer, receipts, checkpoints)?;
    Ok((report, evidence))
}

/// The signed statements of a log: its checkpoints, oldest first, as
/// `(seq, JWS)`, and its head's JWS, if there is one.
pub type SignedStatements = (Vec<(u64, String)>, Option<String>);

/// The signed checkpoints of the log at `home` (offline): to publish or keep
/// elsewhere, so that the log cannot be rewritten before them unnoticed.
/// Also the signed head, if readable.
pub fn checkpoints_home(home: &Path) -> Result<SignedStatements> {
    let store = SledAuditStore::open_existing(&audit_dir(home))?;
    let mut out = Vec::new();
    let mut next = 0;
    loop {
        let chunk = store.range(next, 4096)?;
        let Some(last) = chunk.last() else { break };
        next = last.seq + 1;
        out.extend(
            chunk
                .into_iter()
                .filter(|record| record.kind == RecordKind::Checkpoint)
                .filter_map(|record| record.detail.map(|jws| (record.seq, jws))),
        );
    }
    let head = std::fs::read_to_string(head_path(home))
        .ok()
        .map(|text| text.trim().to_owned());
    Ok((out, head))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditError, RecordKind};

    fn home_with_keys() -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        write_new_keys(home.path()).unwrap();
        home
    }

    #[tokio::test]
    async fn a_home_log_verifies_offline() {
        let home = home_with_keys();
        let log = AuditLog::open_home(home.path(), 2).unwrap();
        for _ in 0..5 {
            log.append(AuditEntry::new(RecordKind::Start, "c"))
                .await
                .unwrap();
        }
        log.close().await;
        let report = verify_home(home.path()).unwrap();
        assert_eq!(report.to_string(), "chain intact: 7 records, 2 checkpoints");
    }

    #[test]
    fn a_home_without_a_log_is_an_error() {
        let home = home_with_keys();
        let err = verify_home(home.path()).unwrap_err();
        assert!(matches!(err, AuditError::Missing { .. }), "{err}");
    }

    #[test]
    fn a_home_without_keys_is_an_error() {
        let home = tempfile::tempdir().unwrap();
        let err = verify_home(home.path()).unwrap_err();
        assert!(matches!(err, AuditError::Policy(_)), "{err}");
    }
}
