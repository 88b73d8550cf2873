//! Request tokens: the short-lived JWS a participant signs for each call.
//!
//! A request token (`typ` `request+jws`, `kid` = the caller's key id) carries
//! `iss` = `sub` = the caller's participant id, `aud` = the callee's id,
//! `iat`, `exp` (at most [`MAX_TOKEN_LIFETIME_SECS`] later) and a random
//! `jti`. It travels with the caller's membership credential.
//! [`TokenVerifier::verify`] checks, in this order:
//!
//! 1. the token header (`alg` must be `EdDSA`), before any signature work;
//! 2. the credential ([`crate::credential::verify_credential`]);
//! 3. the token's `kid` must be the credential key's id
//!    ([`Error::UnknownKeyId`]), then its signature with that key
//!    ([`Error::BadSignature`]) and its `typ` ([`Error::Malformed`]);
//! 4. `iss` and `sub` must be the credential's subject
//!    ([`Error::IssuerMismatch`]), `aud` our own id ([`Error::WrongAudience`]);
//! 5. `iat`/`exp` with the clock-skew tolerance ([`Error::NotYetValid`],
//!    [`Error::Expired`]), then the lifetime ([`Error::LifetimeTooLong`]);
//! 6. last, for otherwise valid tokens only, the `jti` against replay
//!    ([`Error::Replayed`]), remembered until `exp` plus the skew.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::credential::{
    DEFAULT_SKEW_SECS, MembershipCredential, TrustedAuthority, check_still_valid, check_validity,
    verify_credential,
};
use crate::error::{Error, Result};
use crate::id::random_hex;
use crate::jws::{Header, decode_header, sign_jws, verify_jws};
use crate::keys::KeyPair;
use crate::memo::Memo;
pub use crate::replay::{InMemoryReplayGuard, ReplayGuard};

/// `typ` of a request token JWS.
pub const REQUEST_TOKEN_TYP: &str = "request+jws";

/// Longest allowed lifetime (`exp - iat`) of a request token, in seconds.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 300;

/// Longest accepted `jti`, in bytes.
pub const MAX_JTI_LEN: usize = 128;

const WHAT: &str = "request token";

/// The claims of a request token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestClaims {
    /// The caller's participant id.
    pub iss: String,
    /// The caller's participant id, again.
    pub sub: String,
    /// The callee's participant id.
    pub aud: String,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
    /// Unique token id: 128 random bits in hex.
    pub jti: String,
}

/// Signs a request token from `participant_id` to `audience`, valid from
/// `now` for `ttl_secs` (1 to [`MAX_TOKEN_LIFETIME_SECS`]).
pub fn issue_request_token(
    key: &KeyPair,
    participant_id: &str,
    audience: &str,
    now: i64,
    ttl_secs: i64,
) -> Result<String> {
    if ttl_secs > MAX_TOKEN_LIFETIME_SECS {
        return Err(Error::LifetimeTooLong {
            seconds: ttl_secs,
            max: MAX_TOKEN_LIFETIME_SECS,
        });
    }
    if ttl_secs <= 0 {
        return Err(Error::malformed(WHAT, "the lifetime must be positive"));
    }
    if participant_id.is_empty() || audience.is_empty() {
        return Err(Error::malformed(
            WHAT,
            "the issuer and the audience must not be empty",
        ));
    }
    let claims = RequestClaims {
        iss: participant_id.into(),
        sub: participant_id.into(),
        aud: audience.into(),
        iat: now,
        exp: now.saturating_add(ttl_secs),
        jti: random_hex()?,
    };
    sign_jws(REQUEST_TOKEN_TYP, false, &claims, key)
}

/// A caller whose token and credential verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCaller {
    /// The caller's participant id (the credential's subject).
    pub participant_id: String,
    /// The caller's verified membership credential.
    pub credential: MembershipCredential,
    /// The token's unique id.
    pub jti: String,
    /// The token's `exp`, unix seconds.
    pub expires_at: i64,
}

/// Verifies request tokens addressed to us.
#[derive(Clone)]
pub struct TokenVerifier {
    /// The authority whose credentials we accept.
    pub authority: TrustedAuthority,
    /// Our own participant id: the expected `aud`.
    pub own_id: String,
    /// Clock-skew tolerance in seconds, for tokens and credentials.
    pub skew_secs: i64,
    /// Where used token ids are remembered.
    pub replay: Arc<dyn ReplayGuard>,
    /// Credentials whose signature verified, by their JWS, with the
    /// authority that signed them: a caller presents the same credential
    /// with every token, and its signature does not change. Its validity
    /// window is checked again on every call.
    credentials: Arc<Memo<(TrustedAuthority, MembershipCredential)>>,
}

/// Most verified credentials remembered; past it the memory starts over.
const CREDENTIALS_KEPT: usize = 4096;

impl TokenVerifier {
    /// A verifier with the default skew ([`DEFAULT_SKEW_SECS`]).
    pub fn new(
        authority: TrustedAuthority,
        own_id: impl Into<String>,
        replay: Arc<dyn ReplayGuard>,
    ) -> Self {
        Self {
            authority,
            own_id: own_id.into(),
            skew_secs: DEFAULT_SKEW_SECS,
            replay,
            credentials: Arc::new(Memo::new(CREDENTIALS_KEPT)),
        }
    }

    /// The credential `jws`, verified against our authority at `now`; a
    /// credential verified before is only checked for its validity window.
    fn credential(&self, jws: &str, now: i64) -> Result<MembershipCredential> {
        let known = self
            .credentials
            .get(jws)
            .filter(|(authority, _)| *authority == self.authority);
        if let Some((_, credential)) = known {
            check_still_valid(&credential, now, self.skew_secs)?;
            return Ok(credential);
        }
        let credential = verify_credential(jws, &self.authority, now, self.skew_secs)?;
        self.credentials
            .insert(jws, (self.authority.clone(), credential.clone()));
        Ok(credential)
    }

    /// Verifies `token` presented with `credential_jws` at `now` (unix
    /// seconds). See the module documentation for the order of checks.
    pub fn verify(&self, token: &str, credential_jws: &str, now: i64) -> Result<VerifiedCaller> {
        let header = decode_header(token, WHAT)?;
        let credential = self.credential(credential_jws, now)?;
        let claims = verify_signature(token, header, &credential)?;
        self.check_claims(&claims, &credential, now)?;
        let remember_until = claims.exp.saturating_add(self.skew_secs.max(0));
        self.replay
            .check_and_remember(&claims.jti, remember_until, now)?;
        Ok(VerifiedCaller {
            participant_id: credential.sub.clone(),
            credential,
            jti: claims.jti,
            expires_at: claims.exp,
        })
    }

    fn check_claims(
        &self,
        claims: &RequestClaims,
        credential: &MembershipCredential,
        now: i64,
    ) -> Result<()> {
        for claimed in [&claims.iss, &claims.sub] {
            if *claimed != credential.sub {
                return Err(Error::IssuerMismatch {
                    token: claimed.clone(),
                    credential: credential.sub.clone(),
                });
            }
        }
        if claims.aud != self.own_id {
            return Err(Error::WrongAudience {
                expected: self.own_id.clone(),
                found: claims.aud.clone(),
            });
        }
        check_validity(WHAT, claims.iat, claims.exp, now, self.skew_secs)?;
        let lifetime = claims.exp.saturating_sub(claims.iat);
        if lifetime > MAX_TOKEN_LIFETIME_SECS {
            return Err(Error::LifetimeTooLong {
                seconds: lifetime,
                max: MAX_TOKEN_LIFETIME_SECS,
            });
        }
        if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
            return Err(Error::malformed(
                WHAT,
                format!("`jti` must have 1 to {MAX_JTI_LEN} bytes"),
            ));
        }
        Ok(())
    }
}

/// Checks the token's `kid` against the credential key, then the signature
/// and the `typ`.
fn verify_signature(
    token: &str,
    header: Header,
    credential: &MembershipCredential,
) -> Result<RequestClaims> {
    let kid = header
        .kid
        .ok_or_else(|| Error::malformed(WHAT, "the header has no `kid`"))?;
    if kid != credential.jwk.key_id() {
        return Err(Error::UnknownKeyId { kid });
    }
    let (header, claims): (Header, RequestClaims) = verify_jws(token, &credential.jwk, WHAT)?;
    if header.typ() != REQUEST_TOKEN_TYP {
        return Err(Error::malformed(
            WHAT,
            format!(
                "`typ` is `{}`, expected `{REQUEST_TOKEN_TYP}`",
                header.typ()
            ),
        ));
    }
    Ok(claims)
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("authority", &self.authority)
            .field("own_id", &self.own_id)
            .field("skew_secs", &self.skew_secs)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::credential::{Attributes, Authority, Membership};
    use crate::jws::forge;
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;
    const PROVIDER: &str = "platform-north";

    struct World {
        authority: Authority,
        a_key: KeyPair,
        a_credential: String,
        b_key: KeyPair,
        b_credential: String,
        verifier: TokenVerifier,
    }

    fn credential(authority: &Authority, id: &str, key: &KeyPair) -> String {
        let membership = Membership {
            participant_id: id.into(),
            name: id.to_uppercase(),
            public_key: key.public_key(),
            attributes: Attributes::default(),
        };
        authority.issue(&membership, NOW - 3600, 86_400).unwrap()
    }

    fn world() -> World {
        let authority = Authority::new("authority", KeyPair::generate().unwrap());
        let a_key = KeyPair::generate().unwrap();
        let b_key = KeyPair::generate().unwrap();
        let a_credential = credential(&authority, "sme-a", &a_key);
        let b_credential = credential(&authority, "sme-b", &b_key);
        let verifier = TokenVerifier::new(
            authority.trusted(),
            PROVIDER,
            Arc::new(InMemoryReplayGuard::new()),
        );
        World {
            authority,
            a_key,
            a_credential,
            b_key,
            b_credential,
            verifier,
        }
    }

    impl World {
        fn token(&self) -> String {
            issue_request_token(&self.a_key, "sme-a", PROVIDER, NOW, 120).unwrap()
        }

        fn verify(&self, token: &str, now: i64) -> Result<VerifiedCaller> {
            self.verifier.verify(token, &self.a_credential, now)
        }

        /// A properly signed token for A with hand-written claims and header.
        fn forged(&self, header: Value, claims: Value) -> String {
            forge::signed(&header, &claims, &self.a_key)
        }

        fn header(&self) -> Value {
            json!({"alg": "EdDSA", "typ": REQUEST_TOKEN_TYP, "kid": self.a_key.public_key().key_id()})
        }

        fn claims(&self) -> Value {
            json!({"iss": "sme-a", "sub": "sme-a", "aud": PROVIDER,
                   "iat": NOW, "exp": NOW + 120, "jti": "0123456789abcdef"})
        }
    }

    #[test]
    fn issue_and_verify_round_trip() {
        let w = world();
        let token = w.token();
        let caller = w.verify(&token, NOW + 5).unwrap();
        assert_eq!(caller.participant_id, "sme-a");
        assert_eq!(caller.credential.sub, "sme-a");
        assert_eq!(caller.expires_at, NOW + 120);
        assert_eq!(caller.jti.len(), 32);
        assert!(caller.jti.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(forge::header_of(&token)["typ"], REQUEST_TOKEN_TYP);
    }

    #[test]
    fn a_credential_verified_before_is_refused_once_it_expires() {
        let w = world();
        // Issued at NOW - 3600 for 86,400 s; verified and remembered first.
        w.verify(&w.token(), NOW).unwrap();
        let late = NOW - 3600 + 86_400 + DEFAULT_SKEW_SECS + 1;
        let token = issue_request_token(&w.a_key, "sme-a", PROVIDER, late, 120).unwrap();
        let err = w.verify(&token, late).unwrap_err();
        assert!(matches!(err, Error::Expired { .. }), "{err}");
    }

    #[test]
    fn a_remembered_credential_is_not_trusted_under_another_authority() {
        let mut w = world();
        w.verify(&w.token(), NOW).unwrap();
        let other = Authority::new("authority", KeyPair::generate().unwrap());
        w.verifier.authority = other.trusted();
        let err = w.verify(&w.token(), NOW).unwrap_err();
        assert!(matches!(err, Error::UnknownKeyId { .. }), "{err}");
    }

    #[test]
    fn a_tampered_copy_of_a_remembered_credential_is_refused() {
        let w = world();
        w.verify(&w.token(), NOW).unwrap();
        let mut tampered = w.a_credential.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        let err = w.verifier.verify(&w.token(), &tampered, NOW).unwrap_err();
        assert!(
            matches!(err, Error::BadSignature { .. } | Error::Malformed { .. }),
            "{err}"
        );
    }

    #[test]
    fn token_ids_are_unique() {
        let w = world();
        let a = w.verify(&w.token(), NOW).unwrap().jti;
        let b = w.verify(&w.token(), NOW).unwrap().jti;
        assert_ne!(a, b);
    }

    #[test]
    fn issue_refuses_a_lifetime_over_300_seconds() {
        let w = world();
        assert!(issue_request_token(&w.a_key, "sme-a", PROVIDER, NOW, 300).is_ok());
        let err = issue_request_token(&w.a_key, "sme-a", PROVIDER, NOW, 301).unwrap_err();
        assert!(
            matches!(
                err,
                Error::LifetimeTooLong {
                    seconds: 301,
                    max: 300
                }
            ),
            "{err}"
        );
        let err = issue_request_token(&w.a_key, "sme-a", PROVIDER, NOW, 0).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn refuses_a_lifetime_over_300_seconds() {
        let w = world();
        let mut claims = w.claims();
        claims["exp"] = json!(NOW + 301);
        let err = w.verify(&w.forged(w.header(), claims), NOW).unwrap_err();
        assert!(
            matches!(err, Error::LifetimeTooLong { seconds: 301, .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_alg_none() {
        let w = world();
        let mut header = w.header();
        header["alg"] = json!("none");
        let token = forge::assemble(&header, &w.claims(), "");
        let err = w.verify(&token, NOW).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNone), "{err}");
    }

    #[test]
    fn refuses_hmac_keyed_with_the_caller_public_key() {
        let w = world();
        let mut header = w.header();
        header["alg"] = json!("HS256");
        let token = forge::hmac_signed(&header, &w.claims(), w.a_key.public_key().as_bytes());
        let err = w.verify(&token, NOW).unwrap_err();
        assert!(
            matches!(err, Error::AlgorithmNotAllowed { ref alg } if alg == "HS256"),
            "{err}"
        );
    }

    #[test]
    fn refuses_rsa_and_ecdsa_headers() {
        let w = world();
        for alg in ["RS256", "ES256"] {
            let mut header = w.header();
            header["alg"] = json!(alg);
            let err = w.verify(&w.forged(header, w.claims()), NOW).unwrap_err();
            assert!(
                matches!(err, Error::AlgorithmNotAllowed { .. }),
                "{alg}: {err}"
            );
        }
    }

    #[test]
    fn refuses_a_credential_of_another_authority() {
        let w = world();
        let rogue = Authority::new("authority", KeyPair::generate().unwrap());
        let rogue_credential = credential(&rogue, "sme-a", &w.a_key);
        let err = w
            .verifier
            .verify(&w.token(), &rogue_credential, NOW)
            .unwrap_err();
        assert!(matches!(err, Error::UnknownKeyId { .. }), "{err}");
    }

    #[test]
    fn refuses_an_expired_credential() {
        let w = world();
        let short = Membership {
            participant_id: "sme-a".into(),
            name: "A".into(),
            public_key: w.a_key.public_key(),
            attributes: Attributes::default(),
        };
        let credential = w.authority.issue(&short, NOW - 1000, 500).unwrap();
        let err = w.verifier.verify(&w.token(), &credential, NOW).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Expired {
                    what: "membership credential",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_token_signed_by_another_participant_with_its_own_kid() {
        // B signs a token claiming to be A and presents A's credential.
        let w = world();
        let token = issue_request_token(&w.b_key, "sme-a", PROVIDER, NOW, 60).unwrap();
        let err = w.verify(&token, NOW).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKeyId { ref kid } if *kid == w.b_key.public_key().key_id()),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_token_signed_by_another_participant_with_a_forged_kid() {
        let w = world();
        let token = forge::signed(&w.header(), &w.claims(), &w.b_key);
        let err = w.verify(&token, NOW).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_token_claiming_another_issuer_than_the_credential() {
        // B presents B's own credential but claims to be A.
        let w = world();
        let token = issue_request_token(&w.b_key, "sme-a", PROVIDER, NOW, 60).unwrap();
        let err = w.verifier.verify(&token, &w.b_credential, NOW).unwrap_err();
        assert!(
            matches!(err, Error::IssuerMismatch { ref token, ref credential } if token == "sme-a" && credential == "sme-b"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_subject_that_differs_from_the_issuer() {
        let w = world();
        let mut claims = w.claims();
        claims["sub"] = json!("sme-b");
        let err = w.verify(&w.forged(w.header(), claims), NOW).unwrap_err();
        assert!(matches!(err, Error::IssuerMismatch { .. }), "{err}");
    }

    #[test]
    fn refuses_a_wrong_audience() {
        let w = world();
        let token = issue_request_token(&w.a_key, "sme-a", "someone-else", NOW, 60).unwrap();
        let err = w.verify(&token, NOW).unwrap_err();
        assert!(
            matches!(err, Error::WrongAudience { ref expected, ref found } if expected == PROVIDER && found == "someone-else"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_tampered_payload() {
        let w = world();
        let token = issue_request_token(&w.a_key, "sme-a", "someone-else", NOW, 60).unwrap();
        let tampered = forge::with_payload(&token, |p| p["aud"] = json!(PROVIDER));
        let err = w.verify(&tampered, NOW).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_tampered_header() {
        let w = world();
        let tampered = forge::with_header(&w.token(), |h| h["typ"] = json!("JWT"));
        let err = w.verify(&tampered, NOW).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_an_unknown_key_id() {
        let w = world();
        let tampered = forge::with_header(&w.token(), |h| h["kid"] = json!("some-other-key"));
        let err = w.verify(&tampered, NOW).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKeyId { ref kid } if kid == "some-other-key"),
            "{err}"
        );
        let mut header = w.header();
        header.as_object_mut().unwrap().remove("kid");
        let err = w.verify(&w.forged(header, w.claims()), NOW).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn refuses_a_document_type_used_as_token() {
        let w = world();
        let mut header = w.header();
        header["typ"] = json!("membership+jws");
        let err = w.verify(&w.forged(header, w.claims()), NOW).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn expiry_honours_the_skew_boundary() {
        let w = world();
        let exp = NOW + 120;
        assert!(w.verify(&w.token(), exp + 59).is_ok());
        let err = w.verify(&w.token(), exp + 61).unwrap_err();
        assert!(
            matches!(err, Error::Expired { what: "request token", at } if at == exp),
            "{err}"
        );
    }

    #[test]
    fn not_yet_valid_honours_the_skew_boundary() {
        let w = world();
        assert!(w.verify(&w.token(), NOW - 59).is_ok());
        let err = w.verify(&w.token(), NOW - 61).unwrap_err();
        assert!(
            matches!(err, Error::NotYetValid { what: "request token", at } if at == NOW),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_replayed_token() {
        let w = world();
        let token = w.token();
        w.verify(&token, NOW).unwrap();
        let err = w.verify(&token, NOW + 1).unwrap_err();
        assert!(matches!(err, Error::Replayed { .. }), "{err}");
    }

    #[test]
    fn invalid_tokens_do_not_burn_their_jti() {
        let w = world();
        let token = issue_request_token(&w.a_key, "sme-a", PROVIDER, NOW, 60).unwrap();
        // Too early: refused without remembering the jti ...
        assert!(matches!(
            w.verify(&token, NOW - 100),
            Err(Error::NotYetValid { .. })
        ));
        // ... so the same token is still accepted once valid.
        assert!(w.verify(&token, NOW).is_ok());
    }

    #[test]
    fn refuses_an_empty_or_oversized_jti() {
        let w = world();
        for jti in [String::new(), "a".repeat(MAX_JTI_LEN + 1)] {
            let mut claims = w.claims();
            claims["jti"] = json!(jti);
            let err = w.verify(&w.forged(w.header(), claims), NOW).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{err}");
        }
    }

    #[test]
    fn concurrent_verification_of_one_token_admits_exactly_one() {
        let w = Arc::new(world());
        let token = Arc::new(w.token());
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (w, token, barrier) =
                    (Arc::clone(&w), Arc::clone(&token), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    w.verify(&token, NOW).is_ok()
                })
            })
            .collect();
        let accepted = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(accepted, 1);
    }
}
