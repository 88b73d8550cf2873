//! Checking a log against evidence kept elsewhere: the signed receipts a
//! consumer holds and the signed checkpoints that were exported or
//! published. A log cut short or rewritten verifies as a chain on its own;
//! it cannot also hold a record a later receipt names, nor the checkpoint
//! an exported statement signs, unless the connector's key signed again.

use std::fmt;

use policy::contract::Receipt;
use policy::document::{DocumentKind, SignedDocument};
use policy::jws::verify_jws;
use policy::keys::PublicKey;
use serde::Serialize;

use super::checkpoint::{CHECKPOINT_TYP, CheckpointClaims};
use super::error::Result;
use super::record::RecordKind;
use super::report::VerifyReport;
use super::store::AuditStore;

/// A piece of evidence to check: where it came from (a file name, a line)
/// and its compact JWS.
#[derive(Debug, Clone)]
pub struct Evidence {
    /// Where it came from, for the report.
    pub source: String,
    /// The compact JWS.
    pub jws: String,
}

/// What checking evidence found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EvidenceReport {
    /// Pieces whose record (and checkpoint) the log holds as signed.
    pub matched: u64,
    /// Pieces not signed by this connector (another provider's receipts).
    pub foreign: u64,
    /// Pieces naming records the log lost, as a signed `recovered` record
    /// admits.
    pub admitted_lost: Vec<Finding>,
    /// Pieces the log contradicts: records missing or different, with no
    /// recovery admitting it. Any one means the log was cut or rewritten.
    pub contradicted: Vec<Finding>,
}

/// One piece of evidence the log does not hold.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Where the evidence came from.
    pub source: String,
    /// The sequence number it names.
    pub seq: u64,
    /// What is wrong, in words.
    pub reason: String,
}

impl EvidenceReport {
    /// Whether the log holds everything the evidence proves.
    pub fn holds(&self) -> bool {
        self.admitted_lost.is_empty() && self.contradicted.is_empty()
    }
}

impl fmt::Display for EvidenceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} matched, {} lost as a signed recovery admits, {} contradicted by the log",
            self.matched,
            self.admitted_lost.len(),
            self.contradicted.len()
        )?;
        if self.foreign > 0 {
            write!(f, " ({} signed by another key, skipped)", self.foreign)?;
        }
        for finding in self.contradicted.iter().chain(&self.admitted_lost) {
            write!(
                f,
                "\n  {}: record #{}: {}",
                finding.source, finding.seq, finding.reason
            )?;
        }
        Ok(())
    }
}

/// What the log says about record `seq`, which the evidence says has hash
/// `hash` (or, for a checkpoint, `prev_hash` before it).
enum Holds {
    Yes,
    AdmittedLost(String),
    No(String),
}

/// Checks `store` (verified as `report`) against receipts and checkpoints
/// signed by `signer`. Receipts are `receipt+jws` documents; checkpoints the
/// `detail` JWS of checkpoint records.
pub fn check_evidence(
    store: &dyn AuditStore,
    report: &VerifyReport,
    signer: &PublicKey,
    receipts: &[Evidence],
    checkpoints: &[Evidence],
) -> Result<EvidenceReport> {
    let mut out = EvidenceReport::default();
    for evidence in receipts {
        let receipt = match SignedDocument::<Receipt>::verify(
            &evidence.jws,
            DocumentKind::Receipt,
            Some(signer),
        ) {
            Ok(receipt) => receipt,
            Err(_) => {
                out.foreign += 1;
                continue;
            }
        };
        let r = receipt.payload();
        let mut held = holds_record(store, report, r.audit_seq, |record| {
            record.hash == r.audit_hash
        })?;
        if matches!(held, Holds::Yes)
            && let Some(jws) = &r.checkpoint
        {
            held = holds_checkpoint(store, report, signer, jws)?.1;
        }
        out.add(evidence, r.audit_seq, held);
    }
    for evidence in checkpoints {
        match verify_jws::<CheckpointClaims>(&evidence.jws, signer, "audit checkpoint") {
            Ok((header, _)) if header.typ() == CHECKPOINT_TYP => {}
            _ => {
                out.foreign += 1;
                continue;
            }
        }
        let (seq, held) = holds_checkpoint(store, report, signer, &evidence.jws)?;
        out.add(evidence, seq, held);
    }
    Ok(out)
}

impl EvidenceReport {
    /// `pieces` of evidence against a log that cannot be read at all.
    pub(super) fn unreadable(pieces: usize) -> Self {
        let contradicted = (pieces > 0)
            .then(|| Finding {
                source: format!("all {pieces} pieces of evidence"),
                seq: 0,
                reason: "the log cannot be read at all".into(),
            })
            .into_iter()
            .collect();
        Self {
            contradicted,
            ..Self::default()
        }
    }

    fn add(&mut self, evidence: &Evidence, seq: u64, held: Holds) {
        let finding = |reason| Finding {
            source: evidence.source.clone(),
            seq,
            reason,
        };
        match held {
            Holds::Yes => self.matched += 1,
            Holds::AdmittedLost(reason) => self.admitted_lost.push(finding(reason)),
            Holds::No(reason) => self.contradicted.push(finding(reason)),
        }
    }
}

/// Whether the log holds the checkpoint `jws` signs (already known to be a
/// valid checkpoint by `signer`); returns its position too.
fn holds_checkpoint(
    store: &dyn AuditStore,
    report: &VerifyReport,
    signer: &PublicKey,
    jws: &str,
) -> Result<(u64, Holds)> {
    let claims = match verify_jws::<CheckpointClaims>(jws, signer, "audit checkpoint") {
        Ok((_, claims)) => claims,
        Err(e) => {
            return Ok((0, Holds::No(format!("its checkpoint is not valid: {e}"))));
        }
    };
    let held = holds_record(store, report, claims.seq, |record| {
        record.kind == RecordKind::Checkpoint
            && record.prev_hash == claims.prev_hash
            && record.detail.as_deref() == Some(jws)
    })?;
    let held = match held {
        Holds::No(reason) => Holds::No(format!("the signed checkpoint #{}: {reason}", claims.seq)),
        other => other,
    };
    Ok((claims.seq, held))
}

/// Whether the intact log holds record `seq` as `matches` expects; if not,
/// whether a signed recovery admits losing it.
fn holds_record(
    store: &dyn AuditStore,
    report: &VerifyReport,
    seq: u64,
    matches: impl Fn(&super::record::AuditRecord) -> bool,
) -> Result<Holds> {
    let present = if seq < report.records {
        store.get(seq)?
    } else {
        None
    };
    if present.as_ref().is_some_and(&matches) {
        return Ok(Holds::Yes);
    }
    let admitted = report
        .recoveries
        .iter()
        .find(|r| r.lost_from <= seq && r.lost_to.is_none_or(|to| seq <= to));
    if let Some(recovery) = admitted {
        return Ok(Holds::AdmittedLost(format!(
            "lost: the signed `recovered` record #{} admits losing the records from #{} on ({})",
            recovery.seq, recovery.lost_from, recovery.reason
        )));
    }
    Ok(Holds::No(match present {
        Some(_) => "the log holds another record under this number: it was rewritten".into(),
        None if seq >= report.records && report.first_broken.is_none() => format!(
            "the log ends at #{} ({} records): it was cut short",
            report.records.saturating_sub(1),
            report.records
        ),
        None => "the log holds no intact record under this number".into(),
    }))
}
