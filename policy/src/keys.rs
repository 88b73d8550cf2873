//! Ed25519 keys: a participant's signing key pair and the public key others
//! verify with.
//!
//! A [`KeyPair`] keeps its PKCS#8 document so it can be written back to disk;
//! the file is created with mode `0600` and refused on load when group or
//! others can access it. A [`PublicKey`] is the 32 raw bytes of an Ed25519
//! public key; it travels as a JWK (RFC 8037, `{"kty":"OKP","crv":"Ed25519",
//! "x":...}`) and is named by its RFC 7638 thumbprint, the key id (`kid`).

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::error::{Error, KeyError, Result};

/// Length in bytes of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// Permission bits a private key file must not have: any access by group or
/// others.
const GROUP_OTHER_BITS: u32 = 0o077;

/// An Ed25519 signing key pair.
///
/// `Debug` prints the key id only, never the private key.
pub struct KeyPair {
    pkcs8: Vec<u8>,
    pair: Ed25519KeyPair,
    /// The same key for jsonwebtoken, which signs every JWS.
    encoding: jsonwebtoken::EncodingKey,
}

impl KeyPair {
    /// Generates a fresh key pair from the operating system's random source.
    pub fn generate() -> Result<Self> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|e| Error::Key(KeyError::Random(e)))?;
        Self::from_pkcs8(document.as_ref())
    }

    /// Parses a PKCS#8 (v1 or v2) DER document holding an Ed25519 private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8)
            .map_err(|e| Error::Key(KeyError::Rejected(e)))?;
        Ok(Self {
            pkcs8: pkcs8.to_vec(),
            pair,
            encoding: jsonwebtoken::EncodingKey::from_ed_der(pkcs8),
        })
    }

    /// The PKCS#8 DER document of this key pair. Secret: handle with care.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// Writes the PKCS#8 DER document to `path`, readable and writable by the
    /// owner only (`0600`). An existing file is refused unless `overwrite`.
    pub fn save(&self, path: &Path, overwrite: bool) -> Result<()> {
        write_file(path, &self.pkcs8, overwrite, Some(0o600))
    }

    /// Reads a PKCS#8 DER private key from `path`. A file that group or
    /// others may access is refused.
    pub fn load(path: &Path) -> Result<Self> {
        let metadata = fs::metadata(path).map_err(|e| io_error(path, e))?;
        let mode = metadata.permissions().mode();
        if mode & GROUP_OTHER_BITS != 0 {
            return Err(Error::key(format!(
                "the private key file `{}` is accessible by group or others (mode {:o}); \
                 restrict it with `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
        let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
        Self::from_pkcs8(&bytes)
    }

    /// The public half of this key pair.
    pub fn public_key(&self) -> PublicKey {
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        bytes.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(bytes)
    }

    /// The key as jsonwebtoken signs with it ([`crate::jws::sign_jws`]).
    pub(crate) fn encoding_key(&self) -> &jsonwebtoken::EncodingKey {
        &self.encoding
    }

    /// Signs `message`; returns the 64-byte Ed25519 signature (a raw
    /// signature: a JWS is signed with [`crate::jws::sign_jws`]).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kid", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key (32 raw bytes). Serializes as its JWK.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Jwk", into = "Jwk")]
pub struct PublicKey([u8; PUBLIC_KEY_LEN]);

impl PublicKey {
    /// Builds a public key from its 32 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let raw: [u8; PUBLIC_KEY_LEN] = bytes.try_into().map_err(|_| {
            Error::key(format!(
                "an Ed25519 public key has {PUBLIC_KEY_LEN} bytes, not {}",
                bytes.len()
            ))
        })?;
        Ok(Self(raw))
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    /// The key as a JWK: `{"kty":"OKP","crv":"Ed25519","x":...}`.
    pub fn to_jwk(&self) -> Jwk {
        Jwk {
            kty: Jwk::KTY.into(),
            crv: Jwk::CRV.into(),
            x: URL_SAFE_NO_PAD.encode(self.0),
        }
    }

    /// Reads an Ed25519 key from a JWK; other key types are refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self> {
        if jwk.kty != Jwk::KTY || jwk.crv != Jwk::CRV {
            return Err(Error::key(format!(
                "expected a JWK with `kty` `OKP` and `crv` `Ed25519`, found `{}` and `{}`",
                jwk.kty, jwk.crv
            )));
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&jwk.x)
            .map_err(|e| Error::key(format!("the JWK member `x` is not base64url: {e}")))?;
        Self::from_bytes(&bytes)
    }

    /// The key id: the RFC 7638 JWK thumbprint (SHA-256, base64url without
    /// padding) over `{"crv":"Ed25519","kty":"OKP","x":...}`.
    pub fn key_id(&self) -> String {
        let jwk = self.to_jwk();
        // Members in lexicographic order, no whitespace (RFC 7638 section 3.2);
        // `x` is base64url, so it needs no JSON escaping.
        let canonical = format!(
            r#"{{"crv":"{}","kty":"{}","x":"{}"}}"#,
            jwk.crv, jwk.kty, jwk.x
        );
        let digest = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` by this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// Writes the key as pretty JWK JSON to `path`. An existing file is
    /// refused unless `overwrite`.
    pub fn save_jwk(&self, path: &Path, overwrite: bool) -> Result<()> {
        let mut json = serde_json::to_vec_pretty(&self.to_jwk())
            .map_err(|e| Error::key(format!("cannot encode the JWK: {e}")))?;
        json.push(b'\n');
        write_file(path, &json, overwrite, None)
    }

    /// Reads a key from a JWK JSON file.
    pub fn load_jwk(path: &Path) -> Result<Self> {
        let bytes = fs::read(path).map_err(|e| io_error(path, e))?;
        let jwk: Jwk = serde_json::from_slice(&bytes)
            .map_err(|e| Error::key(format!("`{}` is not a JWK: {e}", path.display())))?;
        Self::from_jwk(&jwk)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.key_id())
    }
}

impl TryFrom<Jwk> for PublicKey {
    type Error = Error;

    fn try_from(jwk: Jwk) -> Result<Self> {
        Self::from_jwk(&jwk)
    }
}

impl From<PublicKey> for Jwk {
    fn from(key: PublicKey) -> Self {
        key.to_jwk()
    }
}

/// A JSON Web Key for an Ed25519 public key (RFC 8037). Other members of a
/// JWK (`kid`, `use`, ...) are ignored when reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// Key type: `OKP`.
    pub kty: String,
    /// Curve: `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
}

impl Jwk {
    /// The key type of Ed25519 keys.
    pub const KTY: &'static str = "OKP";
    /// The curve name of Ed25519 keys.
    pub const CRV: &'static str = "Ed25519";
}

/// Writes `bytes` to `path`; with `mode`, the file gets exactly that mode
/// (also when an existing file is overwritten).
fn write_file(path: &Path, bytes: &[u8], overwrite: bool, mode: Option<u32>) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true);
    if overwrite {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    if let Some(mode) = mode {
        options.mode(mode);
    }
    let mut file = options.open(path).map_err(|e| io_error(path, e))?;
    if let Some(mode) = mode {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_error(path, e))?;
    }
    file.write_all(bytes).map_err(|e| io_error(path, e))?;
    file.sync_all().map_err(|e| io_error(path, e))
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn save_and_load_round_trip_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.pk8");
        let key = KeyPair::generate().unwrap();
        key.save(&path, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let loaded = KeyPair::load(&path).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
        assert_eq!(loaded.pkcs8_der(), key.pkcs8_der());
    }

    #[test]
    fn save_refuses_to_overwrite_unless_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.pk8");
        let first = KeyPair::generate().unwrap();
        first.save(&path, false).unwrap();
        let second = KeyPair::generate().unwrap();
        let err = second.save(&path, false).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert_eq!(
            KeyPair::load(&path).unwrap().public_key(),
            first.public_key()
        );
        second.save(&path, true).unwrap();
        assert_eq!(
            KeyPair::load(&path).unwrap().public_key(),
            second.public_key()
        );
    }

    #[test]
    fn overwrite_resets_loose_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.pk8");
        fs::write(&path, b"old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        KeyPair::generate().unwrap().save(&path, true).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn load_refuses_a_key_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("private.pk8");
        KeyPair::generate().unwrap().save(&path, false).unwrap();
        for mode in [0o640, 0o604, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = KeyPair::load(&path).unwrap_err();
            assert!(matches!(err, Error::Key(_)), "{err}");
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }

    #[test]
    fn load_reports_a_missing_file() {
        let err = KeyPair::load(Path::new("/nonexistent/private.pk8")).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[test]
    fn from_pkcs8_refuses_garbage() {
        let err = KeyPair::from_pkcs8(b"not a key").unwrap_err();
        assert!(matches!(err, Error::Key(KeyError::Rejected(_))), "{err}");
        assert!(err.to_string().contains("PKCS#8"), "{err}");
    }

    #[test]
    fn jwk_round_trip_and_shape() {
        let key = KeyPair::generate().unwrap().public_key();
        let jwk = key.to_jwk();
        let json = serde_json::to_value(&jwk).unwrap();
        assert_eq!(json["kty"], "OKP");
        assert_eq!(json["crv"], "Ed25519");
        assert_eq!(PublicKey::from_jwk(&jwk).unwrap(), key);
        let via_serde: PublicKey =
            serde_json::from_value(serde_json::to_value(key).unwrap()).unwrap();
        assert_eq!(via_serde, key);
    }

    #[test]
    fn from_jwk_refuses_other_key_types_and_lengths() {
        let mut jwk = KeyPair::generate().unwrap().public_key().to_jwk();
        jwk.crv = "X25519".into();
        assert!(matches!(PublicKey::from_jwk(&jwk), Err(Error::Key(_))));
        let short = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode([1u8; 31]),
        };
        assert!(matches!(PublicKey::from_jwk(&short), Err(Error::Key(_))));
    }

    #[test]
    fn key_id_matches_rfc_8037_example() {
        // RFC 8037 appendix A.2 and A.3.
        let jwk = Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo".into(),
        };
        let key = PublicKey::from_jwk(&jwk).unwrap();
        assert_eq!(key.key_id(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }

    #[test]
    fn key_id_is_stable_across_save_and_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("public.jwk.json");
        let key = KeyPair::generate().unwrap().public_key();
        key.save_jwk(&path, false).unwrap();
        let loaded = PublicKey::load_jwk(&path).unwrap();
        assert_eq!(loaded.key_id(), key.key_id());
        assert!(matches!(key.save_jwk(&path, false), Err(Error::Io { .. })));
    }

    #[test]
    fn sign_and_verify() {
        let key = KeyPair::generate().unwrap();
        let signature = key.sign(b"message");
        assert_eq!(signature.len(), 64);
        assert!(key.public_key().verify(b"message", &signature));
        assert!(!key.public_key().verify(b"massage", &signature));
        let other = KeyPair::generate().unwrap().public_key();
        assert!(!other.verify(b"message", &signature));
    }

    #[test]
    fn debug_does_not_print_the_private_key() {
        let key = KeyPair::generate().unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.public_key().key_id()));
        assert!(!debug.contains(&URL_SAFE_NO_PAD.encode(key.pkcs8_der())));
    }
}
