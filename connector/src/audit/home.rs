//! Where the audit log and the connector's keys live in a home folder, and
//! the two ways in: the running connector's [`AuditLog::open_home`] and the
//! offline [`verify_home`].

use std::path::{Path, PathBuf};
use std::sync::Arc;

use policy::keys::{KeyPair, PublicKey};

use super::error::Result;
use super::log::AuditLog;
use super::sled_store::SledAuditStore;
use super::verify::{VerifyReport, verify};

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

impl AuditLog {
    /// Opens (or creates) the sled audit log of the connector at `home`,
    /// signing checkpoints with `HOME/keys/private.pk8`.
    pub fn open_home(home: &Path, checkpoint_every: u64) -> Result<Self> {
        let key = KeyPair::load(&home.join(PRIVATE_KEY_FILE))?;
        let store = SledAuditStore::open(&audit_dir(home))?;
        Self::open(Arc::new(store), Arc::new(key), checkpoint_every)
    }
}

/// Verifies the audit log of the connector at `home` against its public key
/// `HOME/keys/public.jwk.json`. Offline: the connector must not be running
/// (sled keeps its database locked), and a missing log is an error, not an
/// empty chain.
pub fn verify_home(home: &Path) -> Result<VerifyReport> {
    let signer = PublicKey::load_jwk(&home.join(PUBLIC_KEY_FILE))?;
    let store = SledAuditStore::open_existing(&audit_dir(home))?;
    verify(&store, &signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEntry, AuditError, RecordKind};

    fn home_with_keys() -> tempfile::TempDir {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join("keys")).unwrap();
        let key = KeyPair::generate().unwrap();
        key.save(&home.path().join(PRIVATE_KEY_FILE), false)
            .unwrap();
        key.public_key()
            .save_jwk(&home.path().join(PUBLIC_KEY_FILE), false)
            .unwrap();
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
