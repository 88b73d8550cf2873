//! The participant registry: who may publish, with which key.
//!
//! A participant registers with its membership credential; the catalog
//! verifies it against the trusted authority and keeps the participant's
//! key and attributes. Registering again with a newer credential replaces
//! the entry (a rotated key, changed attributes).

use policy::credential::{TrustedAuthority, verify_credential};

use crate::model::Participant;
use crate::publish::{MAX_ID_CHARS, require_text};
use crate::{Error, Result};

/// Verifies `credential` (a JWS) against `authority` at `now` (unix seconds)
/// with `skew_secs` of clock tolerance, and returns the participant it
/// admits.
pub fn verify_registration(
    credential: &str,
    authority: &TrustedAuthority,
    now: i64,
    skew_secs: i64,
) -> Result<Participant> {
    let credential = credential.trim();
    let claims = verify_credential(credential, authority, now, skew_secs)
        .map_err(|e| Error::trust("membership credential", e))?;
    require_text("credential.sub", &claims.sub, MAX_ID_CHARS)?;
    Ok(Participant {
        key_id: claims.jwk.key_id(),
        id: claims.sub,
        name: claims.name,
        public_key: claims.jwk,
        attributes: claims.attributes,
        registered_at: now,
        issued_at: claims.iat,
        expires_at: claims.exp,
        credential: credential.to_owned(),
    })
}

/// Refuses a participant whose credential expired before `now` (unix
/// seconds), allowing `skew_secs`.
pub fn require_active(participant: &Participant, now: i64, skew_secs: i64) -> Result<()> {
    if now > participant.expires_at.saturating_add(skew_secs.max(0)) {
        return Err(Error::CredentialExpired(participant.id.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use policy::credential::{Attributes, Authority, Membership};
    use policy::keys::KeyPair;

    const NOW: i64 = 1_800_000_000;

    fn issue(authority: &Authority, id: &str) -> (KeyPair, String) {
        let key = KeyPair::generate().unwrap();
        let membership = Membership {
            participant_id: id.into(),
            name: id.to_uppercase(),
            public_key: key.public_key(),
            attributes: Attributes::default(),
        };
        let jws = authority.issue(&membership, NOW, 3600).unwrap();
        (key, jws)
    }

    #[test]
    fn admits_a_credential_of_the_authority() {
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let (key, jws) = issue(&authority, "platform-north");
        let participant = verify_registration(&jws, &authority.trusted(), NOW, 60).unwrap();
        assert_eq!(participant.id, "platform-north");
        assert_eq!(participant.public_key, key.public_key());
        assert_eq!(participant.key_id, key.public_key().key_id());
        assert_eq!(participant.expires_at, NOW + 3600);
        assert!(require_active(&participant, NOW + 3600 + 60, 60).is_ok());
        assert!(matches!(
            require_active(&participant, NOW + 3600 + 61, 60),
            Err(Error::CredentialExpired(_))
        ));
    }

    #[test]
    fn refuses_a_credential_of_another_authority() {
        let trusted = Authority::new("authority", KeyPair::generate().unwrap());
        let rogue = Authority::new("authority", KeyPair::generate().unwrap());
        let (_, jws) = issue(&rogue, "mallory");
        let err = verify_registration(&jws, &trusted.trusted(), NOW, 60).unwrap_err();
        assert!(matches!(err, Error::Trust { .. }), "{err}");
    }

    #[test]
    fn refuses_an_expired_credential() {
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let (_, jws) = issue(&authority, "late");
        let err = verify_registration(&jws, &authority.trusted(), NOW + 7200, 60).unwrap_err();
        assert!(matches!(err, Error::Trust { .. }), "{err}");
    }
}
