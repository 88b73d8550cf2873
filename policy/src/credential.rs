//! Membership credentials: the data-space authority's signed statement that a
//! participant is a member, with its public key and attributes.
//!
//! A credential is a compact JWS (`typ` `membership+jws`, `kid` = the
//! authority's key id) over [`MembershipCredential`]. [`verify_credential`]
//! checks, in this order:
//!
//! 1. the header: `alg` must be `EdDSA` ([`Error::AlgorithmNone`],
//!    [`Error::AlgorithmNotAllowed`], [`Error::Malformed`]);
//! 2. the `kid`: missing is [`Error::Malformed`]; a `kid` that is not the
//!    trusted authority's key id is [`Error::UnknownKeyId`] (a credential of
//!    another authority or a self-signed one);
//! 3. the signature with the authority's key: a `kid` that names the
//!    authority but a signature that does not verify (altered, or forged with
//!    another key) is [`Error::BadSignature`];
//! 4. `typ` (else [`Error::Malformed`]) and `iss`: a validly signed credential
//!    naming another issuer is [`Error::UntrustedIssuer`];
//! 5. `iat`/`exp` with a clock-skew tolerance ([`Error::NotYetValid`],
//!    [`Error::Expired`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::jws::{decode_header, sign_jws, verify_jws};
use crate::keys::{KeyPair, PublicKey};

/// `typ` of a membership credential JWS.
pub const CREDENTIAL_TYP: &str = "membership+jws";

/// Default clock-skew tolerance, in seconds.
pub const DEFAULT_SKEW_SECS: i64 = 60;

const WHAT: &str = "membership credential";

/// The attributes an authority vouches for; usage policies match them
/// (`assignee.attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes {
    /// Role in the data space, e.g. `consumer`, `provider`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Industry sector, e.g. `manufacturing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<String>,
    /// Region, e.g. `eu-north`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Whether the authority attests the participant is a small or medium
    /// enterprise; `false` unless attested.
    #[serde(default)]
    pub sme: bool,
    /// Further attributes; their names never shadow the standard ones.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
}

impl Attributes {
    /// Names of the standard attributes.
    pub const STANDARD: [&'static str; 4] = ["role", "sector", "region", "sme"];

    /// Sets the attribute `name`; standard names go to their field (`sme`
    /// must be `true` or `false`), others to [`Attributes::extra`].
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        match name {
            "role" => self.role = Some(value.into()),
            "sector" => self.sector = Some(value.into()),
            "region" => self.region = Some(value.into()),
            "sme" => {
                self.sme = value.parse().map_err(|_| {
                    Error::malformed(
                        "attribute",
                        format!("`sme` must be `true` or `false`, not `{value}`"),
                    )
                })?;
            }
            "" => return Err(Error::malformed("attribute", "the name is empty")),
            _ => {
                self.extra.insert(name.into(), value.into());
            }
        }
        Ok(())
    }

    /// Name to value, for matching policy `assignee.attributes`: `role`,
    /// `sector`, `region` when present, `sme` as `true`/`false`, and the
    /// extras. Standard attributes win over extras of the same name.
    pub fn values(&self) -> BTreeMap<String, String> {
        let mut values = self.extra.clone();
        let standard = [
            ("role", self.role.as_ref()),
            ("sector", self.sector.as_ref()),
            ("region", self.region.as_ref()),
        ];
        for (name, value) in standard {
            match value {
                Some(value) => values.insert(name.into(), value.clone()),
                None => values.remove(name),
            };
        }
        values.insert("sme".into(), self.sme.to_string());
        values
    }

    fn check(&self) -> Result<()> {
        match self
            .extra
            .keys()
            .find(|k| Self::STANDARD.contains(&k.as_str()) || k.is_empty())
        {
            Some(name) => Err(Error::malformed(
                WHAT,
                format!("extra attribute `{name}` shadows a standard attribute or is empty"),
            )),
            None => Ok(()),
        }
    }
}

/// The claims of a membership credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipCredential {
    /// The authority's id.
    pub iss: String,
    /// The participant's id.
    pub sub: String,
    /// The participant's display name.
    pub name: String,
    /// The participant's public key (a JWK on the wire).
    pub jwk: PublicKey,
    /// The attested attributes.
    pub attributes: Attributes,
    /// Issued at, unix seconds.
    pub iat: i64,
    /// Expires at, unix seconds.
    pub exp: i64,
}

impl MembershipCredential {
    /// See [`Attributes::values`].
    pub fn attribute_values(&self) -> BTreeMap<String, String> {
        self.attributes.values()
    }
}

/// What the authority attests about a participant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The participant's id (becomes `sub`).
    pub participant_id: String,
    /// Display name.
    pub name: String,
    /// The participant's public key.
    pub public_key: PublicKey,
    /// The attested attributes.
    pub attributes: Attributes,
}

/// The data-space authority: its id and signing key.
#[derive(Debug)]
pub struct Authority {
    /// The authority's id (`iss` of its credentials).
    pub id: String,
    /// The authority's signing key.
    pub keypair: KeyPair,
}

impl Authority {
    /// An authority with `id` signing with `keypair`.
    pub fn new(id: impl Into<String>, keypair: KeyPair) -> Self {
        Self {
            id: id.into(),
            keypair,
        }
    }

    /// What participants need to trust this authority.
    pub fn trusted(&self) -> TrustedAuthority {
        TrustedAuthority {
            id: self.id.clone(),
            public_key: self.keypair.public_key(),
        }
    }

    /// Issues a credential for `member`, valid from `now` for `valid_for_secs`.
    pub fn issue(&self, member: &Membership, now: i64, valid_for_secs: i64) -> Result<String> {
        if member.participant_id.is_empty() {
            return Err(Error::malformed(WHAT, "the participant id is empty"));
        }
        if self.id.is_empty() {
            return Err(Error::malformed(WHAT, "the authority id is empty"));
        }
        if valid_for_secs <= 0 {
            return Err(Error::malformed(WHAT, "the validity must be positive"));
        }
        member.attributes.check()?;
        let claims = MembershipCredential {
            iss: self.id.clone(),
            sub: member.participant_id.clone(),
            name: member.name.clone(),
            jwk: member.public_key,
            attributes: member.attributes.clone(),
            iat: now,
            exp: now.saturating_add(valid_for_secs),
        };
        sign_jws(CREDENTIAL_TYP, false, &claims, &self.keypair)
    }
}

/// The authority a participant trusts: its id and public key. Serializes as
/// `{"id": ..., "jwk": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedAuthority {
    /// The authority's id; credentials must name it as `iss`.
    pub id: String,
    /// The authority's public key.
    #[serde(rename = "jwk")]
    pub public_key: PublicKey,
}

/// Verifies a membership credential issued by `authority` at time `now`
/// (unix seconds), tolerating `skew_secs` of clock difference. See the
/// module documentation for the checks and their errors.
pub fn verify_credential(
    jws: &str,
    authority: &TrustedAuthority,
    now: i64,
    skew_secs: i64,
) -> Result<MembershipCredential> {
    let header = decode_header(jws, WHAT)?;
    let kid = header
        .kid
        .ok_or_else(|| Error::malformed(WHAT, "the header has no `kid`"))?;
    if kid != authority.public_key.key_id() {
        return Err(Error::UnknownKeyId { kid });
    }
    let (header, credential): (_, MembershipCredential) =
        verify_jws(jws, &authority.public_key, WHAT)?;
    if header.typ() != CREDENTIAL_TYP {
        return Err(Error::malformed(
            WHAT,
            format!("`typ` is `{}`, expected `{CREDENTIAL_TYP}`", header.typ()),
        ));
    }
    if credential.iss != authority.id {
        return Err(Error::UntrustedIssuer {
            authority: authority.id.clone(),
        });
    }
    check_validity(WHAT, credential.iat, credential.exp, now, skew_secs)?;
    Ok(credential)
}

/// Checks again, at `now`, the one property of a credential that verified
/// earlier that can change: its validity window.
pub(crate) fn check_still_valid(
    credential: &MembershipCredential,
    now: i64,
    skew_secs: i64,
) -> Result<()> {
    check_validity(WHAT, credential.iat, credential.exp, now, skew_secs)
}

/// Checks `iat <= now + skew` and `now <= exp + skew`; `exp` must not be
/// before `iat`. Arithmetic saturates, so hostile values cannot overflow.
pub(crate) fn check_validity(
    what: &'static str,
    iat: i64,
    exp: i64,
    now: i64,
    skew_secs: i64,
) -> Result<()> {
    let skew = skew_secs.max(0);
    if exp < iat {
        return Err(Error::malformed(what, "`exp` is before `iat`"));
    }
    if now > exp.saturating_add(skew) {
        return Err(Error::Expired { what, at: exp });
    }
    if now < iat.saturating_sub(skew) {
        return Err(Error::NotYetValid { what, at: iat });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::jws::forge;
    use serde_json::{Value, json};

    const NOW: i64 = 1_800_000_000;
    const DAY: i64 = 86_400;

    fn authority() -> Authority {
        Authority::new("authority", KeyPair::generate().unwrap())
    }

    fn member(key: &KeyPair) -> Membership {
        let mut attributes = Attributes::default();
        attributes.set("role", "consumer").unwrap();
        attributes.set("sector", "manufacturing").unwrap();
        attributes.set("region", "eu-north").unwrap();
        attributes.set("sme", "true").unwrap();
        attributes.set("certification", "iso-27001").unwrap();
        Membership {
            participant_id: "sme-south".into(),
            name: "SME South".into(),
            public_key: key.public_key(),
            attributes,
        }
    }

    fn issued(authority: &Authority) -> String {
        let participant = KeyPair::generate().unwrap();
        authority.issue(&member(&participant), NOW, DAY).unwrap()
    }

    fn verify(jws: &str, authority: &Authority, now: i64) -> Result<MembershipCredential> {
        verify_credential(jws, &authority.trusted(), now, DEFAULT_SKEW_SECS)
    }

    fn claims_json(authority: &Authority) -> Value {
        let participant = KeyPair::generate().unwrap();
        json!({
            "iss": authority.id, "sub": "mallory", "name": "Mallory",
            "jwk": participant.public_key().to_jwk(),
            "attributes": {"role": "admin", "sme": true},
            "iat": NOW, "exp": NOW + DAY,
        })
    }

    #[test]
    fn issue_and_verify_round_trip() {
        let authority = authority();
        let participant = KeyPair::generate().unwrap();
        let jws = authority.issue(&member(&participant), NOW, DAY).unwrap();
        let credential = verify(&jws, &authority, NOW + 10).unwrap();
        assert_eq!(credential.iss, "authority");
        assert_eq!(credential.sub, "sme-south");
        assert_eq!(credential.name, "SME South");
        assert_eq!(credential.jwk, participant.public_key());
        assert_eq!((credential.iat, credential.exp), (NOW, NOW + DAY));
        let header = forge::header_of(&jws);
        assert_eq!(header["typ"], CREDENTIAL_TYP);
        assert_eq!(header["kid"], authority.keypair.public_key().key_id());
    }

    #[test]
    fn attribute_values_for_policy_matching() {
        let authority = authority();
        let credential = verify(&issued(&authority), &authority, NOW).unwrap();
        let values = credential.attribute_values();
        let expected: BTreeMap<String, String> = [
            ("certification", "iso-27001"),
            ("region", "eu-north"),
            ("role", "consumer"),
            ("sector", "manufacturing"),
            ("sme", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(values, expected);
        let empty = Attributes::default().values();
        assert_eq!(empty.get("sme").map(String::as_str), Some("false"));
        assert_eq!(empty.len(), 1);
    }

    #[test]
    fn attribute_sme_must_be_a_bool() {
        let mut attributes = Attributes::default();
        let err = attributes.set("sme", "yes").unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
        assert!(matches!(
            attributes.set("", "x"),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn issue_refuses_extras_shadowing_standard_names() {
        let authority = authority();
        let participant = KeyPair::generate().unwrap();
        let mut membership = member(&participant);
        membership
            .attributes
            .extra
            .insert("role".into(), "admin".into());
        let err = authority.issue(&membership, NOW, DAY).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn issue_refuses_empty_ids_and_lifetimes() {
        let authority = authority();
        let participant = KeyPair::generate().unwrap();
        let mut membership = member(&participant);
        assert!(matches!(
            authority.issue(&membership, NOW, 0),
            Err(Error::Malformed { .. })
        ));
        membership.participant_id.clear();
        assert!(matches!(
            authority.issue(&membership, NOW, DAY),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn refuses_alg_none() {
        let authority = authority();
        let kid = authority.keypair.public_key().key_id();
        let jws = forge::assemble(
            &json!({"alg": "none", "kid": kid}),
            &claims_json(&authority),
            "",
        );
        let err = verify(&jws, &authority, NOW).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNone), "{err}");
    }

    #[test]
    fn refuses_hmac_keyed_with_the_authority_public_key() {
        let authority = authority();
        let public = authority.keypair.public_key();
        let header = json!({"alg": "HS256", "typ": CREDENTIAL_TYP, "kid": public.key_id()});
        let jws = forge::hmac_signed(&header, &claims_json(&authority), public.as_bytes());
        let err = verify(&jws, &authority, NOW).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNotAllowed { .. }), "{err}");
    }

    #[test]
    fn refuses_rsa_and_ecdsa_headers() {
        let authority = authority();
        let kid = authority.keypair.public_key().key_id();
        for alg in ["RS256", "ES256"] {
            let header = json!({"alg": alg, "typ": CREDENTIAL_TYP, "kid": kid});
            let jws = forge::signed(&header, &claims_json(&authority), &authority.keypair);
            let err = verify(&jws, &authority, NOW).unwrap_err();
            assert!(
                matches!(err, Error::AlgorithmNotAllowed { .. }),
                "{alg}: {err}"
            );
        }
    }

    #[test]
    fn refuses_a_credential_of_another_authority() {
        let trusted = authority();
        let rogue = Authority::new("authority", KeyPair::generate().unwrap());
        let err = verify(&issued(&rogue), &trusted, NOW).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKeyId { ref kid } if *kid == rogue.keypair.public_key().key_id()),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_forgery_claiming_the_authority_kid() {
        let trusted = authority();
        let rogue = Authority::new("authority", KeyPair::generate().unwrap());
        let forged = forge::with_header(&issued(&rogue), |h| {
            h["kid"] = json!(trusted.keypair.public_key().key_id());
        });
        let err = verify(&forged, &trusted, NOW).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_credential_naming_another_issuer() {
        let authority = authority();
        let mut claims = claims_json(&authority);
        claims["iss"] = json!("other-authority");
        let header = json!({"alg": "EdDSA", "typ": CREDENTIAL_TYP,
                            "kid": authority.keypair.public_key().key_id()});
        let jws = forge::signed(&header, &claims, &authority.keypair);
        let err = verify(&jws, &authority, NOW).unwrap_err();
        assert!(matches!(err, Error::UntrustedIssuer { .. }), "{err}");
    }

    #[test]
    fn refuses_a_missing_kid_and_a_wrong_typ() {
        let authority = authority();
        let claims = claims_json(&authority);
        let no_kid = forge::signed(
            &json!({"alg": "EdDSA", "typ": CREDENTIAL_TYP}),
            &claims,
            &authority.keypair,
        );
        assert!(matches!(
            verify(&no_kid, &authority, NOW),
            Err(Error::Malformed { .. })
        ));
        let kid = authority.keypair.public_key().key_id();
        let wrong_typ = forge::signed(
            &json!({"alg": "EdDSA", "typ": "offer+jws", "kid": kid}),
            &claims,
            &authority.keypair,
        );
        assert!(matches!(
            verify(&wrong_typ, &authority, NOW),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn refuses_a_tampered_payload() {
        let authority = authority();
        let tampered = forge::with_payload(&issued(&authority), |p| {
            p["attributes"]["role"] = json!("provider");
        });
        let err = verify(&tampered, &authority, NOW).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_tampered_header() {
        let authority = authority();
        let tampered = forge::with_header(&issued(&authority), |h| h["typ"] = json!("JWT"));
        let err = verify(&tampered, &authority, NOW).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn expiry_honours_the_skew_boundary() {
        let authority = authority();
        let jws = issued(&authority);
        let exp = NOW + DAY;
        assert!(verify(&jws, &authority, exp + 59).is_ok());
        assert!(verify(&jws, &authority, exp + 60).is_ok());
        let err = verify(&jws, &authority, exp + 61).unwrap_err();
        assert!(
            matches!(err, Error::Expired { at, .. } if at == exp),
            "{err}"
        );
    }

    #[test]
    fn not_yet_valid_honours_the_skew_boundary() {
        let authority = authority();
        let jws = issued(&authority);
        assert!(verify(&jws, &authority, NOW - 59).is_ok());
        let err = verify(&jws, &authority, NOW - 61).unwrap_err();
        assert!(
            matches!(err, Error::NotYetValid { at, .. } if at == NOW),
            "{err}"
        );
    }

    #[test]
    fn skew_is_configurable() {
        let authority = authority();
        let jws = issued(&authority);
        let trusted = authority.trusted();
        assert!(verify_credential(&jws, &trusted, NOW + DAY, 0).is_ok());
        let err = verify_credential(&jws, &trusted, NOW + DAY + 1, 0).unwrap_err();
        assert!(matches!(err, Error::Expired { .. }), "{err}");
        assert!(verify_credential(&jws, &trusted, NOW + DAY + 250, 300).is_ok());
    }

    #[test]
    fn hostile_times_do_not_overflow() {
        assert!(check_validity(WHAT, i64::MIN, i64::MAX, 0, i64::MAX).is_ok());
        assert!(matches!(
            check_validity(WHAT, 10, 5, 7, 60),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn trusted_authority_serializes_with_a_jwk() {
        let authority = authority();
        let json = serde_json::to_value(authority.trusted()).unwrap();
        assert_eq!(json["id"], "authority");
        assert_eq!(json["jwk"]["crv"], "Ed25519");
        let back: TrustedAuthority = serde_json::from_value(json).unwrap();
        assert_eq!(back, authority.trusted());
    }
}
