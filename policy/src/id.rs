//! Random ids: 128 bits from the operating system's random source (ring's
//! [`SystemRandom`]), as 32 lowercase hex digits, bare (a request token's
//! `jti`) or after a prefix (`agr-...`, an error id `err-...`).

use std::fmt::Write as _;

use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, KeyError, Result};

/// Bytes of randomness in every id (128 bits).
pub const ID_BYTES: usize = 16;

/// 128 random bits as 32 lowercase hex digits.
pub fn random_hex() -> Result<String> {
    let mut bytes = [0_u8; ID_BYTES];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|e| Error::Key(KeyError::Random(e)))?;
    let mut hex = String::with_capacity(2 * ID_BYTES);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    Ok(hex)
}

/// `<prefix>-<32 random hex digits>`, e.g. `agr-5f0c...`.
pub fn new_id(prefix: &str) -> Result<String> {
    Ok(format!("{prefix}-{}", random_hex()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_hex_and_distinct() {
        let a = new_id("agr").unwrap();
        let b = new_id("agr").unwrap();
        assert_ne!(a, b);
        let hex = a.strip_prefix("agr-").unwrap();
        assert_eq!(hex.len(), 32);
        assert!(
            hex.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
            "{a}"
        );
    }

    #[test]
    fn random_hex_has_128_bits() {
        let ids: std::collections::HashSet<String> =
            (0..1000).map(|_| random_hex().unwrap()).collect();
        assert_eq!(ids.len(), 1000);
        assert!(ids.iter().all(|id| id.len() == 32));
    }
}
