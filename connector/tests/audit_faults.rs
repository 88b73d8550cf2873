//! Fault injection on the audit log of a home folder, as a disk or an
//! operator could do it behind the connector's back: seeded byte flips at
//! many offsets of every file of the sled store, the store's file cut short,
//! the signed head deleted, damaged or swapped for an older one.
//!
//! Every variant must either be detected, both at start (`open_log` refuses
//! with [`AuditError::Broken`]) and by `verify_home`, naming the same
//! sequence number, or leave the log provably complete (every record of the
//! untouched log present, byte for byte, the head matching). No variant may
//! pass as an intact log that lost or changed a record.
//!
//! Then what an owner and a data officer do about it: recovery with a signed
//! `recovered` record, and a log checked against a consumer's receipts and
//! exported checkpoints (which also catches a log rebuilt from scratch with
//! the connector's own key).

// Test helpers may unwrap and panic: a failing test should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use connector::audit::{
    AuditEntry, AuditError, AuditLog, AuditRecord, AuditStore, Evidence, HEAD_FILE, RecordKind,
    SledAuditStore, audit_dir, open_log, verify_home, verify_home_against,
};
use policy::contract::Receipt;
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::KeyPair;

/// Records between checkpoints in these logs.
const EVERY: u64 = 5;

/// A pristine home and what it holds.
struct Pristine {
    home: tempfile::TempDir,
    /// Every stored record, in order.
    records: Vec<AuditRecord>,
    /// The head as it was after the first appends (an older head).
    old_head: Vec<u8>,
    /// Receipts for some of the records, as a consumer keeps them.
    receipts: Vec<Evidence>,
}

fn key_of(home: &Path) -> KeyPair {
    KeyPair::load(&home.join(connector::audit::PRIVATE_KEY_FILE)).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A home whose log got `count` records, one batch each, with a receipt
/// signed for every third one.
fn pristine(count: u64) -> Pristine {
    let home = tempfile::tempdir().unwrap();
    let key = connector::audit::write_new_keys(home.path()).unwrap();
    let mut old_head = Vec::new();
    let mut receipts = Vec::new();
    runtime().block_on(async {
        let log = AuditLog::open_home(home.path(), EVERY).unwrap();
        for n in 0..count {
            let entry = AuditEntry::new(RecordKind::QueryAnswered, "provider")
                .with_counterparty("consumer")
                .with_rows(n)
                .with_sql(format!("SELECT {n} FROM machines"));
            let record = log.append(entry).await.unwrap();
            if n == 3 {
                old_head = std::fs::read(home.path().join(HEAD_FILE)).unwrap();
            }
            if n % 3 == 0 {
                receipts.push(receipt(&key, &record, log.latest_checkpoint()));
            }
        }
        log.close().await;
    });
    let records = read_all(home.path());
    assert!(records.len() as u64 > count, "checkpoints too");
    Pristine {
        home,
        records,
        old_head,
        receipts,
    }
}

fn receipt(key: &KeyPair, record: &AuditRecord, checkpoint: Option<String>) -> Evidence {
    let receipt = Receipt {
        agreement_id: "agr-1".into(),
        provider: "provider".into(),
        consumer: "consumer".into(),
        sql_hash: policy::document::hash_bytes(b"SELECT"),
        result_hash: policy::document::hash_bytes(b"answer"),
        rows: 1,
        bytes: 6,
        at: 0,
        audit_seq: record.seq,
        audit_hash: record.hash.clone(),
        checkpoint,
    };
    let signed = SignedDocument::sign(receipt, DocumentKind::Receipt, key).unwrap();
    Evidence {
        source: format!("receipt #{}", record.seq),
        jws: signed.jws().to_owned(),
    }
}

fn read_all(home: &Path) -> Vec<AuditRecord> {
    let store = open_store(home);
    store.range(0, usize::MAX).unwrap()
}

/// Opens the sled store, waiting for a lock a closed log still holds.
fn open_store(home: &Path) -> SledAuditStore {
    SledAuditStore::open(&audit_dir(home)).unwrap()
}

/// A copy of a home folder.
fn copy_home(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    copy_dir(from, to.path());
    to
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every regular file of the sled store, with its length.
fn store_files(home: &Path) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    let mut dirs = vec![audit_dir(home)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                let len = entry.metadata().unwrap().len();
                out.push((entry.path(), len));
            }
        }
    }
    out.sort();
    out
}

/// What a variant did to the log.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Reported broken at this record, at start and by verification.
    Detected(u64),
    /// The log is complete: every record as before.
    Harmless,
}

/// Checks one damaged home: start and verification must agree, and a log
/// that passes must be complete.
fn assess(home: &Path, pristine: &[AuditRecord], what: &str) -> Outcome {
    let verified = catch_unwind(AssertUnwindSafe(|| verify_home(home)))
        .unwrap_or_else(|_| panic!("{what}: verification panicked"));
    let started = catch_unwind(AssertUnwindSafe(|| {
        let key = Arc::new(key_of(home));
        match open_log(home, key, EVERY, false) {
            Ok((log, _)) => {
                runtime().block_on(log.close());
                Ok(())
            }
            Err(e) => Err(e),
        }
    }))
    .unwrap_or_else(|_| panic!("{what}: starting panicked"));
    let verified = match verified {
        Ok(report) => report.first_broken.map(|b| b.seq),
        Err(e) => panic!("{what}: verification failed without naming a record: {e}"),
    };
    let started = match started {
        Ok(()) => None,
        Err(AuditError::Broken { seq, .. }) => Some(seq),
        Err(e) => panic!("{what}: the start failed without naming a record: {e}"),
    };
    assert_eq!(verified, started, "{what}: verification and start disagree");
    match verified {
        Some(seq) => Outcome::Detected(seq),
        None => {
            let now = read_all(home);
            assert_eq!(
                now.len(),
                pristine.len(),
                "{what}: passed as intact with {} of {} records",
                now.len(),
                pristine.len()
            );
            assert!(
                now == pristine,
                "{what}: passed as intact with changed records"
            );
            Outcome::Harmless
        }
    }
}

/// A small deterministic generator (xorshift64*), so that the offsets are
/// the same on every run and a failure can be replayed.
struct Seeded(u64);

impl Seeded {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// The length of `bytes` without its zero tail: where sled has written.
fn used_len(path: &Path) -> u64 {
    let bytes = std::fs::read(path).unwrap();
    bytes
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i as u64 + 1)
}

#[test]
fn seeded_byte_flips_in_the_store_never_pass_as_intact() {
    let p = pristine(40);
    let files = store_files(p.home.path());
    assert!(!files.is_empty());
    let mut rng = Seeded(0x5eed_a0d1_7000_0022);
    let (mut detected, mut harmless) = (0, 0);
    for (path, len) in &files {
        if *len == 0 {
            continue;
        }
        let used = used_len(path).max(1);
        // Offsets over the written part of each file (the rest is sled's
        // preallocated zeros), plus a few over the whole file.
        let offsets: Vec<u64> = (0..60)
            .map(|i| {
                if i < 50 {
                    rng.below(used)
                } else {
                    rng.below(*len)
                }
            })
            .collect();
        let relative = path.strip_prefix(p.home.path()).unwrap().to_owned();
        for offset in offsets {
            let bit = 1u8 << rng.below(8);
            let copy = copy_home(p.home.path());
            let target = copy.path().join(&relative);
            let mut bytes = std::fs::read(&target).unwrap();
            bytes[offset as usize] ^= bit;
            std::fs::write(&target, &bytes).unwrap();
            let what = format!(
                "bit {bit:#04x} flipped at {} byte {offset}",
                relative.display()
            );
            match assess(copy.path(), &p.records, &what) {
                Outcome::Detected(_) => detected += 1,
                Outcome::Harmless => harmless += 1,
            }
        }
    }
    eprintln!("byte flips: {detected} detected, {harmless} left the log complete");
    // Flips over the written bytes of the records must mostly be seen.
    assert!(detected >= 20, "{detected} detected, {harmless} harmless");
}

#[test]
fn a_store_cut_short_is_detected() {
    let p = pristine(40);
    let (db, len) = store_files(p.home.path())
        .into_iter()
        .max_by_key(|(_, len)| *len)
        .unwrap();
    let relative = db.strip_prefix(p.home.path()).unwrap().to_owned();
    let used = used_len(&db);
    for cut_to in [
        0,
        used / 2,
        used.saturating_sub(100),
        used.saturating_sub(4096),
    ] {
        let copy = copy_home(p.home.path());
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(copy.path().join(&relative))
            .unwrap();
        file.set_len(cut_to).unwrap();
        drop(file);
        let what = format!("{} ({len} bytes) cut to {cut_to}", relative.display());
        assert!(
            matches!(assess(copy.path(), &p.records, &what), Outcome::Detected(_)),
            "{what}: not detected"
        );
    }
}

#[test]
fn a_missing_damaged_or_older_head_is_detected() {
    let p = pristine(20);
    let last = p.records.len() as u64;
    let copy = copy_home(p.home.path());
    std::fs::remove_file(copy.path().join(HEAD_FILE)).unwrap();
    assert_eq!(
        assess(copy.path(), &p.records, "head deleted"),
        Outcome::Detected(last)
    );

    let copy = copy_home(p.home.path());
    let head = copy.path().join(HEAD_FILE);
    let mut bytes = std::fs::read(&head).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&head, bytes).unwrap();
    assert_eq!(
        assess(copy.path(), &p.records, "head damaged"),
        Outcome::Detected(last)
    );

    let copy = copy_home(p.home.path());
    std::fs::write(copy.path().join(HEAD_FILE), &p.old_head).unwrap();
    let Outcome::Detected(seq) = assess(copy.path(), &p.records, "head swapped for an older one")
    else {
        panic!("an older head passed");
    };
    assert!(seq < last, "{seq}");
    let report = verify_home(copy.path()).unwrap();
    let reason = report.first_broken.unwrap().reason;
    assert!(reason.contains("older than the log"), "{reason}");
}

#[test]
fn records_cut_from_the_end_are_named() {
    let p = pristine(20);
    let copy = copy_home(p.home.path());
    {
        let store = open_store(copy.path());
        // What a torn tail looks like: the last records gone, no error.
        store.remove_from(15).unwrap();
    }
    let report = verify_home(copy.path()).unwrap();
    let broken = report.first_broken.clone().unwrap();
    assert_eq!(broken.seq, 15, "{report}");
    assert!(broken.reason.contains("were lost"), "{}", broken.reason);
    let last = p.records.len() - 1;
    assert!(
        broken.reason.contains(&format!("#15..=#{last}")),
        "{}",
        broken.reason
    );
    assert_eq!(
        assess(copy.path(), &p.records, "tail removed"),
        Outcome::Detected(15)
    );
}

#[test]
fn recovery_signs_what_was_lost_and_receipts_show_it() {
    let p = pristine(30);
    let home = copy_home(p.home.path());
    {
        open_store(home.path()).remove_from(20).unwrap();
    }
    // Refused without the flag, the store untouched.
    let err = open_log(home.path(), Arc::new(key_of(home.path())), EVERY, false).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("#20") && text.contains("--recover-audit"),
        "{text}"
    );
    assert_eq!(read_all(home.path()).len(), 20);

    let key = Arc::new(key_of(home.path()));
    let (log, done) = open_log(home.path(), key.clone(), EVERY, true).unwrap();
    let done = done.expect("a recovery");
    let last = p.records.len() as u64 - 1;
    assert_eq!(done.claims.seq, 20);
    assert_eq!(
        (done.claims.lost_from, done.claims.lost_to),
        (20, Some(last))
    );
    assert_eq!(
        done.claims.lost_head_hash.as_deref(),
        Some(p.records[last as usize].hash.as_str())
    );
    // The log goes on after the signed record.
    runtime().block_on(async {
        for n in 0..7 {
            log.append(AuditEntry::new(RecordKind::Start, "c").with_rows(n))
                .await
                .unwrap();
        }
        log.close().await;
    });
    let (report, evidence) = verify_home_against(home.path(), &p.receipts, &[]).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.recoveries.len(), 1);
    assert!(
        report
            .to_string()
            .contains(&format!("records #20..=#{last} lost")),
        "{report}"
    );
    // Receipts before #20 match; those after are lost, as admitted.
    let before = p.receipts.iter().filter(|r| seq_of(r) < 20).count() as u64;
    assert_eq!(evidence.matched, before, "{evidence}");
    assert_eq!(
        evidence.admitted_lost.len(),
        p.receipts.len() - before as usize,
        "{evidence}"
    );
    assert!(evidence.contradicted.is_empty(), "{evidence}");
    // And the next start is a normal one.
    let (log, done) = open_log(home.path(), key, EVERY, false).unwrap();
    assert!(done.is_none());
    runtime().block_on(log.close());
}

#[test]
fn an_unopenable_store_is_broken_at_zero_and_recovered_aside() {
    let p = pristine(10);
    let home = copy_home(p.home.path());
    for (path, _) in store_files(home.path()) {
        std::fs::write(path, b"not a database at all, not at all").unwrap();
    }
    let report = catch_unwind(|| verify_home(home.path())).expect("no panic");
    match report {
        Ok(report) => assert_eq!(report.first_broken.map(|b| b.seq), Some(0)),
        Err(e) => panic!("not named: {e}"),
    }
    let key = Arc::new(key_of(home.path()));
    match open_log(home.path(), key.clone(), EVERY, false) {
        Err(AuditError::Broken { seq: 0, .. }) => {}
        other => panic!("not refused at #0: {other:?}"),
    }
    let (log, done) = open_log(home.path(), key, EVERY, true).unwrap();
    runtime().block_on(log.close());
    let done = done.unwrap();
    assert_eq!(done.claims.lost_from, 0);
    assert!(
        done.claims.reason.contains("moved to"),
        "{}",
        done.claims.reason
    );
    let report = verify_home(home.path()).unwrap();
    assert!(report.is_intact(), "{report}");
    let aside = std::fs::read_dir(home.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("audit.damaged-")
        })
        .count();
    assert_eq!(aside, 1);
}

/// Exported checkpoints as evidence.
fn as_evidence(checkpoints: Vec<(u64, String)>) -> Vec<Evidence> {
    checkpoints
        .into_iter()
        .map(|(seq, jws)| Evidence {
            source: format!("checkpoint #{seq}"),
            jws,
        })
        .collect()
}

fn seq_of(receipt: &Evidence) -> u64 {
    receipt
        .source
        .trim_start_matches("receipt #")
        .parse()
        .unwrap()
}

#[test]
fn a_log_rebuilt_with_the_connectors_key_is_caught_by_receipts_and_checkpoints() {
    let p = pristine(30);
    // The checkpoints, as exported before the rewrite.
    let (checkpoints, _) = connector::audit::checkpoints_home(p.home.path()).unwrap();
    let checkpoints = as_evidence(checkpoints);
    assert!(checkpoints.len() >= 4);
    // A dishonest operator with the key replaces the log with another one,
    // head and all: it verifies on its own.
    let home = p.home.path();
    std::fs::remove_dir_all(audit_dir(home)).unwrap();
    std::fs::remove_file(home.join(HEAD_FILE)).unwrap();
    runtime().block_on(async {
        let log = AuditLog::open_home(home, EVERY).unwrap();
        for n in 0..40 {
            log.append(AuditEntry::new(RecordKind::QueryAnswered, "provider").with_rows(n + 1000))
                .await
                .unwrap();
        }
        log.close().await;
    });
    assert!(verify_home(home).unwrap().is_intact());
    let (report, evidence) = verify_home_against(home, &p.receipts, &checkpoints).unwrap();
    assert!(report.is_intact());
    assert_eq!(evidence.matched, 0, "{evidence}");
    assert_eq!(
        evidence.contradicted.len(),
        p.receipts.len() + checkpoints.len(),
        "{evidence}"
    );
    assert!(
        evidence.contradicted[0].reason.contains("rewritten"),
        "{evidence}"
    );
    // A shorter rebuild: the later receipts name records it does not have.
    std::fs::remove_dir_all(audit_dir(home)).unwrap();
    std::fs::remove_file(home.join(HEAD_FILE)).unwrap();
    runtime().block_on(async {
        let log = AuditLog::open_home(home, EVERY).unwrap();
        log.append(AuditEntry::new(RecordKind::Start, "provider"))
            .await
            .unwrap();
        log.close().await;
    });
    let (_, evidence) = verify_home_against(home, &p.receipts, &[]).unwrap();
    assert!(
        evidence
            .contradicted
            .iter()
            .any(|f| f.reason.contains("cut short")),
        "{evidence}"
    );
}

#[test]
fn an_intact_log_holds_its_receipts_and_checkpoints() {
    let p = pristine(25);
    let (checkpoints, head) = connector::audit::checkpoints_home(p.home.path()).unwrap();
    assert!(head.is_some());
    let checkpoints = as_evidence(checkpoints);
    let (report, evidence) = verify_home_against(p.home.path(), &p.receipts, &checkpoints).unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(evidence.holds(), "{evidence}");
    assert_eq!(
        evidence.matched as usize,
        p.receipts.len() + checkpoints.len()
    );
    // Receipts carry the latest checkpoint once there is one.
    let with_checkpoint = p
        .receipts
        .iter()
        .filter(|r| {
            let doc =
                SignedDocument::<Receipt>::verify(&r.jws, DocumentKind::Receipt, None).unwrap();
            doc.payload().checkpoint.is_some()
        })
        .count();
    assert!(with_checkpoint >= p.receipts.len() - 2, "{with_checkpoint}");
}
