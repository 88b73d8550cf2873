//! Tampering with the audit database on disk, behind the connector's back:
//! `verify_home` must name the first broken record.

// Test helpers may unwrap and panic: a failing test should fail loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use connector::audit::{AUDIT_TREE, AuditEntry, AuditLog, RecordKind, audit_dir, verify_home};

/// A home whose audit log holds 20 records and checkpoints at #5, #11, #17.
fn home_with_log() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    connector::audit::write_new_keys(home.path()).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = Arc::new(AuditLog::open_home(home.path(), 5).unwrap());
        for n in 0..17 {
            let entry = AuditEntry::new(RecordKind::QueryAnswered, "provider")
                .with_counterparty("consumer")
                .with_rows(n);
            log.append(entry).await.unwrap();
        }
        Arc::into_inner(log).unwrap().close().await;
    });
    home
}

/// Edits the raw sled tree of the audit log.
fn tamper(home: &Path, edit: impl FnOnce(&sled::Tree)) {
    // sled releases its lock a moment after the log is closed.
    let mut attempts = 0;
    let db = loop {
        match sled::open(audit_dir(home)) {
            Ok(db) => break db,
            Err(e) if attempts < 100 => {
                attempts += 1;
                eprintln!("retrying: {e}");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("cannot open the audit database: {e}"),
        }
    };
    edit(&db.open_tree(AUDIT_TREE).unwrap());
    db.flush().unwrap();
}

fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

fn broken_at(home: &Path) -> (u64, String) {
    let report = verify_home(home).unwrap();
    let broken = report.first_broken.clone().expect("a broken chain");
    assert!(
        report
            .to_string()
            .starts_with(&format!("broken at record #{}", broken.seq))
    );
    (broken.seq, broken.reason)
}

#[test]
fn an_untouched_log_verifies() {
    let home = home_with_log();
    let report = verify_home(home.path()).unwrap();
    assert_eq!(
        report.to_string(),
        "chain intact: 20 records, 3 checkpoints"
    );
}

#[test]
fn an_edited_value_is_found() {
    let home = home_with_log();
    tamper(home.path(), |tree| {
        let value = tree.get(key(8)).unwrap().unwrap();
        let text = String::from_utf8(value.to_vec()).unwrap();
        let edited = text.replace("\"consumer\"", "\"someone-else\"");
        assert_ne!(edited, text);
        tree.insert(key(8), edited.as_bytes()).unwrap();
    });
    assert_eq!(
        broken_at(home.path()),
        (8, "its content does not match its hash".into())
    );
}

#[test]
fn a_deleted_record_is_found() {
    let home = home_with_log();
    tamper(home.path(), |tree| {
        tree.remove(key(3)).unwrap();
    });
    let (seq, reason) = broken_at(home.path());
    assert_eq!(seq, 3);
    assert!(reason.contains("missing"), "{reason}");
}

#[test]
fn swapped_records_are_found() {
    let home = home_with_log();
    tamper(home.path(), |tree| {
        let a = tree.get(key(12)).unwrap().unwrap();
        let b = tree.get(key(13)).unwrap().unwrap();
        tree.insert(key(12), b).unwrap();
        tree.insert(key(13), a).unwrap();
    });
    assert_eq!(broken_at(home.path()).0, 12);
}

#[test]
fn unreadable_bytes_are_found_after_earlier_breaks() {
    let home = home_with_log();
    tamper(home.path(), |tree| {
        tree.insert(key(9), b"\x00garbage".to_vec()).unwrap();
        tree.remove(key(7)).unwrap();
    });
    let (seq, reason) = broken_at(home.path());
    assert_eq!(seq, 7, "{reason}");
    let home = home_with_log();
    tamper(home.path(), |tree| {
        tree.insert(key(9), b"\x00garbage".to_vec()).unwrap();
    });
    let (seq, reason) = broken_at(home.path());
    assert_eq!(seq, 9);
    assert!(reason.contains("cannot be read"), "{reason}");
}

/// A chain cut at its end verifies on its own; the signed head outside the
/// log is what names the first record lost.
#[test]
fn a_truncated_tail_is_named_by_the_head() {
    let home = home_with_log();
    tamper(home.path(), |tree| {
        for seq in 18..20 {
            tree.remove(key(seq)).unwrap();
        }
    });
    let report = verify_home(home.path()).unwrap();
    assert_eq!(
        report.to_string(),
        "broken at record #18: it is missing: the signed audit head says the log ends at #19 \
         (20 records), so records #18..=#19 were lost"
    );
}
