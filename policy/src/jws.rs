//! Compact JWS (RFC 7515) with EdDSA (Ed25519) and nothing else.
//!
//! The header is decoded and checked here, before any signature work:
//! `alg: none` is [`Error::AlgorithmNone`], any other algorithm than `EdDSA`
//! (HS*, RS*, ES*, PS*) is [`Error::AlgorithmNotAllowed`], and a header with
//! `crit` extensions is refused as malformed. The algorithm used to sign and
//! to verify is fixed in code and never taken from the header, so a token
//! cannot pick the HMAC-with-public-key confusion or any other algorithm
//! swap.
//!
//! Signing and verifying both go through jsonwebtoken's `crypto::sign` and
//! `crypto::verify` (ring's Ed25519 underneath), with
//! `Algorithm::EdDSA`; jsonwebtoken validates no claims here. Time,
//! audience and issuer are checked by the callers ([`crate::credential`],
//! [`crate::token`]) with an injected `now`, so tests are deterministic.
//! Header and payload are written as canonical JSON in the current form
//! ([`crate::canonical`]), which the header names in `canon`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::CanonicalForm;
use crate::error::{Error, KeyError, Result};
use crate::keys::{KeyPair, PublicKey};

/// The only accepted `alg`.
pub const ALGORITHM: &str = "EdDSA";

/// Longest compact JWS accepted, in bytes (1 MiB), before any decoding.
pub const MAX_JWS_LEN: usize = 1 << 20;

/// The protected header of a JWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `EdDSA` once checked.
    pub alg: String,
    /// Media type of the whole JWS, e.g. `membership+jws`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// Key id of the signer (RFC 7638 thumbprint of its public key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The signer's public key, embedded in self-describing documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<PublicKey>,
    /// The canonical form of header and payload
    /// ([`crate::canonical::CANON_HEADER`]); absent in tokens signed before
    /// RFC 8785 was adopted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canon: Option<String>,
}

impl Header {
    /// The `typ` of the header, or the empty string.
    pub fn typ(&self) -> &str {
        self.typ.as_deref().unwrap_or_default()
    }

    /// The canonical form `canon` names (none: the legacy form); an unknown
    /// form is [`Error::Malformed`]. `what` names the token in errors.
    pub fn canonical_form(&self, what: &'static str) -> Result<CanonicalForm> {
        CanonicalForm::from_header(self.canon.as_deref(), what)
    }
}

/// Signs `claims` as a compact JWS with `alg` `EdDSA`, `typ`, `kid` (the
/// signer's key id) and, if `embed_jwk`, the signer's public key as `jwk`.
pub fn sign_jws(
    typ: &str,
    embed_jwk: bool,
    claims: &impl Serialize,
    key: &KeyPair,
) -> Result<String> {
    let public_key = key.public_key();
    let form = CanonicalForm::CURRENT;
    let header = Header {
        alg: ALGORITHM.into(),
        typ: Some(typ.into()),
        kid: Some(public_key.key_id()),
        jwk: embed_jwk.then_some(public_key),
        canon: form.header_value().map(Into::into),
    };
    let mut token = URL_SAFE_NO_PAD.encode(form.to_vec(&header)?);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(form.to_vec(claims)?));
    let signature = jsonwebtoken::crypto::sign(
        token.as_bytes(),
        key.encoding_key(),
        jsonwebtoken::Algorithm::EdDSA,
    )
    .map_err(|e| Error::Key(KeyError::Sign(e)))?;
    token.push('.');
    token.push_str(&signature);
    Ok(token)
}

/// Decodes and checks the header of `token` without verifying the signature:
/// the segments, the algorithm (before anything else in the header) and the
/// absence of `crit`. `what` names the token in errors.
pub fn decode_header(token: &str, what: &'static str) -> Result<Header> {
    checked_header(&Parts::split(token, what)?, what)
}

/// Verifies `token` against `key` and decodes its claims.
///
/// The header is checked first ([`decode_header`]); a signature that does not
/// verify is [`Error::BadSignature`]; claims that do not fit `T` are
/// [`Error::Malformed`]. No claim (time, audience, ...) is checked here.
pub fn verify_jws<T: DeserializeOwned>(
    token: &str,
    key: &PublicKey,
    what: &'static str,
) -> Result<(Header, T)> {
    let parts = Parts::split(token, what)?;
    let header = checked_header(&parts, what)?;
    // The algorithm is fixed here, as when signing; a signature that is not
    // even base64url is as bad as one that does not verify.
    let decoding = jsonwebtoken::DecodingKey::from_ed_der(key.as_bytes());
    let valid = jsonwebtoken::crypto::verify(
        parts.signature,
        parts.signing_input.as_bytes(),
        &decoding,
        jsonwebtoken::Algorithm::EdDSA,
    )
    .unwrap_or(false);
    if !valid {
        return Err(Error::BadSignature { what });
    }
    let payload = decode_segment(parts.payload, what, "payload")?;
    let claims =
        serde_json::from_slice(&payload).map_err(|e| Error::malformed_by(what, "claims", e))?;
    Ok((header, claims))
}

/// The decoded payload of an already verified `token` as JSON.
pub(crate) fn payload_value(token: &str, what: &'static str) -> Result<Value> {
    let parts = Parts::split(token, what)?;
    let payload = decode_segment(parts.payload, what, "payload")?;
    serde_json::from_slice(&payload).map_err(|e| Error::malformed_by(what, "claims", e))
}

/// The three segments of a compact JWS.
struct Parts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'a str,
}

impl<'a> Parts<'a> {
    fn split(token: &'a str, what: &'static str) -> Result<Self> {
        if token.len() > MAX_JWS_LEN {
            return Err(Error::malformed(
                what,
                format!("longer than {MAX_JWS_LEN} bytes"),
            ));
        }
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or_else(|| Error::malformed(what, "expected three `.`-separated segments"))?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or_else(|| Error::malformed(what, "expected three `.`-separated segments"))?;
        if payload.contains('.') {
            return Err(Error::malformed(
                what,
                "expected three `.`-separated segments",
            ));
        }
        Ok(Self {
            header,
            payload,
            signature,
            signing_input,
        })
    }
}

fn checked_header(parts: &Parts<'_>, what: &'static str) -> Result<Header> {
    let bytes = decode_segment(parts.header, what, "header")?;
    check_algorithm(&bytes, what)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::malformed_by(what, "header", e))
}

fn decode_segment(segment: &str, what: &'static str, name: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|e| Error::malformed_by(what, &format!("{name} is not base64url"), e))
}

/// The members of a header that are checked before the rest is read.
#[derive(Deserialize)]
struct Preamble {
    alg: Option<Value>,
    crit: Option<Value>,
}

fn check_algorithm(header: &[u8], what: &'static str) -> Result<()> {
    let preamble: Preamble =
        serde_json::from_slice(header).map_err(|e| Error::malformed_by(what, "header", e))?;
    let alg = match preamble.alg {
        Some(Value::String(alg)) => alg,
        Some(_) => {
            return Err(Error::malformed(
                what,
                "header member `alg` is not a string",
            ));
        }
        None => return Err(Error::malformed(what, "header has no `alg`")),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(Error::AlgorithmNone);
    }
    if alg != ALGORITHM {
        return Err(Error::AlgorithmNotAllowed { alg });
    }
    if preamble.crit.is_some() {
        return Err(Error::malformed(
            what,
            "header extensions (`crit`) are not supported",
        ));
    }
    Ok(())
}

/// Hand-made tokens for refusal tests across the crate.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
pub(crate) mod forge {
    use super::*;

    /// base64url without padding.
    pub(crate) fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// `b64(header).b64(payload).signature` with the given raw signature segment.
    pub(crate) fn assemble(header: &Value, payload: &Value, signature: &str) -> String {
        format!(
            "{}.{}.{signature}",
            b64(&serde_json::to_vec(header).unwrap()),
            b64(&serde_json::to_vec(payload).unwrap())
        )
    }

    /// A token whose header and payload are signed properly with `key`.
    pub(crate) fn signed(header: &Value, payload: &Value, key: &KeyPair) -> String {
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(header).unwrap()),
            b64(&serde_json::to_vec(payload).unwrap())
        );
        let signature = b64(&key.sign(input.as_bytes()));
        format!("{input}.{signature}")
    }

    /// A token signed with HMAC-SHA256 keyed by `secret` (key-confusion attack).
    pub(crate) fn hmac_signed(header: &Value, payload: &Value, secret: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(header).unwrap()),
            b64(&serde_json::to_vec(payload).unwrap())
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", b64(tag.as_ref()))
    }

    fn decode_json(segment: &str) -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    /// Rewrites the header of `token`, keeping payload and signature.
    pub(crate) fn with_header(token: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut header = decode_json(parts[0]);
        edit(&mut header);
        let encoded = b64(&serde_json::to_vec(&header).unwrap());
        parts[0] = &encoded;
        parts.join(".")
    }

    /// Rewrites the payload of `token`, keeping header and signature.
    pub(crate) fn with_payload(token: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        let mut payload = decode_json(parts[1]);
        edit(&mut payload);
        let encoded = b64(&serde_json::to_vec(&payload).unwrap());
        parts[1] = &encoded;
        parts.join(".")
    }

    /// The decoded header of `token`.
    pub(crate) fn header_of(token: &str) -> Value {
        decode_json(token.split('.').next().unwrap())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::forge::*;
    use super::*;

    #[test]
    fn signatures_are_plain_ed25519_over_the_signing_input() {
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("test+jws", false, &serde_json::json!({"a": 1}), &key).unwrap();
        let (signed, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        // Checked with ring directly, not through jsonwebtoken.
        let public = key.public_key();
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public.as_bytes())
            .verify(signed.as_bytes(), &signature)
            .unwrap();
        // Ed25519 is deterministic: the raw signature of the same input.
        assert_eq!(signature, key.sign(signed.as_bytes()));
    }

    #[test]
    fn the_header_names_the_canonical_form() {
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("t", false, &claims(), &key).unwrap();
        assert_eq!(header_of(&token)["canon"], "rfc8785");
        let header = decode_header(&token, WHAT).unwrap();
        assert_eq!(header.canonical_form(WHAT).unwrap(), CanonicalForm::Rfc8785);
    }

    use serde_json::json;

    const WHAT: &str = "test token";

    fn claims() -> Value {
        json!({"sub": "a", "n": 1})
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("test+jws", false, &claims(), &key).unwrap();
        let (header, got): (Header, Value) = verify_jws(&token, &key.public_key(), WHAT).unwrap();
        assert_eq!(got, claims());
        assert_eq!(header.alg, "EdDSA");
        assert_eq!(header.typ(), "test+jws");
        assert_eq!(header.kid, Some(key.public_key().key_id()));
        assert_eq!(header.jwk, None);
    }

    #[test]
    fn embeds_the_signer_key_when_asked() {
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("doc+jws", true, &claims(), &key).unwrap();
        let header = decode_header(&token, WHAT).unwrap();
        assert_eq!(header.jwk, Some(key.public_key()));
        assert_eq!(header_of(&token)["jwk"]["kty"], "OKP");
    }

    #[test]
    fn refuses_alg_none() {
        let key = KeyPair::generate().unwrap();
        for alg in ["none", "None", "NONE"] {
            let token = assemble(&json!({"alg": alg, "typ": "JWT"}), &claims(), "");
            let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
            assert!(matches!(err, Error::AlgorithmNone), "{alg}: {err}");
        }
    }

    #[test]
    fn refuses_hmac_keyed_with_the_public_key() {
        let key = KeyPair::generate().unwrap();
        let public = key.public_key();
        let token = hmac_signed(&json!({"alg": "HS256"}), &claims(), public.as_bytes());
        let err = verify_jws::<Value>(&token, &public, WHAT).unwrap_err();
        assert!(
            matches!(err, Error::AlgorithmNotAllowed { ref alg } if alg == "HS256"),
            "{err}"
        );
    }

    #[test]
    fn refuses_rsa_and_ecdsa_headers() {
        let key = KeyPair::generate().unwrap();
        for alg in ["RS256", "ES256", "PS256", "HS512", "eddsa", "Ed25519"] {
            // Even with a valid Ed25519 signature the header algorithm is refused.
            let token = signed(&json!({"alg": alg}), &claims(), &key);
            let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
            assert!(
                matches!(err, Error::AlgorithmNotAllowed { .. }),
                "{alg}: {err}"
            );
        }
    }

    #[test]
    fn refuses_a_header_without_a_string_alg() {
        let key = KeyPair::generate().unwrap();
        for header in [json!({"typ": "x"}), json!({"alg": 1}), json!({"alg": null})] {
            let token = signed(&header, &claims(), &key);
            let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{header}: {err}");
        }
    }

    #[test]
    fn refuses_crit_extensions() {
        let key = KeyPair::generate().unwrap();
        let token = signed(
            &json!({"alg": "EdDSA", "b64": false, "crit": ["b64"]}),
            &claims(),
            &key,
        );
        let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn refuses_malformed_structure() {
        let key = KeyPair::generate().unwrap();
        let good = sign_jws("t", false, &claims(), &key).unwrap();
        let (h, rest) = good.split_once('.').unwrap();
        let cases = [
            String::new(),
            "abc".into(),
            format!("{h}.{rest}.extra"),
            format!("{h}.payload"),
            format!("!!.{rest}"),
            format!("{}.{rest}", b64(b"not json")),
            format!("{}.{rest}", b64(b"[\"alg\"]")),
        ];
        for token in cases {
            let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{token}: {err}");
        }
    }

    #[test]
    fn refuses_an_oversized_token_before_decoding() {
        let key = KeyPair::generate().unwrap();
        let token = "a".repeat(MAX_JWS_LEN + 1);
        let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn refuses_a_tampered_payload() {
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("t", false, &claims(), &key).unwrap();
        let tampered = with_payload(&token, |p| p["sub"] = json!("b"));
        let err = verify_jws::<Value>(&tampered, &key.public_key(), WHAT).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_tampered_header() {
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("t", false, &claims(), &key).unwrap();
        let tampered = with_header(&token, |h| h["typ"] = json!("other"));
        let err = verify_jws::<Value>(&tampered, &key.public_key(), WHAT).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_another_signer_and_garbage_signatures() {
        let key = KeyPair::generate().unwrap();
        let other = KeyPair::generate().unwrap();
        let token = sign_jws("t", false, &claims(), &other).unwrap();
        let err = verify_jws::<Value>(&token, &key.public_key(), WHAT).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
        let (input, _) = token.rsplit_once('.').unwrap();
        for signature in ["", "***", "AAAA"] {
            let forged = format!("{input}.{signature}");
            let err = verify_jws::<Value>(&forged, &other.public_key(), WHAT).unwrap_err();
            assert!(
                matches!(err, Error::BadSignature { .. }),
                "{signature}: {err}"
            );
        }
    }

    #[test]
    fn claims_that_do_not_fit_are_malformed() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Strict {
            exp: i64,
        }
        let key = KeyPair::generate().unwrap();
        let token = sign_jws("t", false, &claims(), &key).unwrap();
        let err = verify_jws::<Strict>(&token, &key.public_key(), WHAT).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }
}
