//! Signed documents: usage policies, offers, agreements and receipts.
//!
//! One generic type, [`SignedDocument`], holds a compact JWS and its decoded
//! payload. The header carries `typ` (one per [`DocumentKind`]), `kid` and
//! the signer's public key as `jwk`, so a document verifies on its own;
//! who the signer must be is the caller's decision (`expected_signer`, or
//! [`verify_issuer`] against the signer's membership credential).
//!
//! [`SignedDocument::verify`] checks the header (`alg`, then `jwk` and `kid`
//! agreeing, else [`Error::Malformed`] / [`Error::UnknownKeyId`]), the
//! expected signer if one is given ([`Error::BadSignature`]: the document
//! does not verify with that key), the signature ([`Error::BadSignature`]) and
//! last the `typ` ([`Error::Malformed`]). Each document has a content hash,
//! `sha256:<hex>` of its canonical JSON payload, that other documents embed.
//! The hash is recomputed on every verification in the canonical form the
//! header names (`canon`, see [`crate::canonical`]): RFC 8785 for documents
//! signed now, the legacy form for documents signed before, whose stored
//! hashes were made in it and must keep matching.

use std::fmt;

use serde::de::{self, DeserializeOwned};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::credential::MembershipCredential;
use crate::error::{Error, Result};
use crate::jws::{Header, decode_header, payload_value, sign_jws, verify_jws};
use crate::keys::{KeyPair, PublicKey};

pub use crate::canonical::{CanonicalForm, content_hash, hash_bytes};

/// What a signed document is; fixes its JWS `typ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DocumentKind {
    /// A provider's usage policy for a dataset.
    UsagePolicy,
    /// A dataset offer published to the catalog.
    Offer,
    /// A contract between provider and consumer.
    Agreement,
    /// A receipt for an answered query.
    Receipt,
    /// A consumer's request to contract for an offer.
    ContractRequest,
    /// A consumer's countersignature of an agreement.
    Acceptance,
    /// A provider's dataset description, published to the catalog.
    DatasetDescription,
    /// A provider's request to withdraw a published dataset.
    DatasetWithdrawal,
}

impl DocumentKind {
    /// Every kind.
    pub const ALL: [Self; 8] = [
        Self::UsagePolicy,
        Self::Offer,
        Self::Agreement,
        Self::Receipt,
        Self::ContractRequest,
        Self::Acceptance,
        Self::DatasetDescription,
        Self::DatasetWithdrawal,
    ];

    /// The JWS `typ` of this kind.
    pub fn typ(self) -> &'static str {
        match self {
            Self::UsagePolicy => "usage-policy+jws",
            Self::Offer => "offer+jws",
            Self::Agreement => "agreement+jws",
            Self::Receipt => "receipt+jws",
            Self::ContractRequest => "contract-request+jws",
            Self::Acceptance => "agreement-acceptance+jws",
            Self::DatasetDescription => "dataset+jws",
            Self::DatasetWithdrawal => "dataset-withdrawal+jws",
        }
    }

    /// The kind with JWS `typ` `typ`.
    pub fn from_typ(typ: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.typ() == typ)
    }

    /// The name of this kind in messages.
    pub fn what(self) -> &'static str {
        match self {
            Self::UsagePolicy => "usage policy",
            Self::Offer => "offer",
            Self::Agreement => "agreement",
            Self::Receipt => "receipt",
            Self::ContractRequest => "contract request",
            Self::Acceptance => "agreement acceptance",
            Self::DatasetDescription => "dataset description",
            Self::DatasetWithdrawal => "dataset withdrawal",
        }
    }
}

impl fmt::Display for DocumentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

/// A verified (or freshly signed) document: its JWS and decoded payload.
///
/// Serializes as the JWS string. Deserializing verifies the signature with
/// the embedded key and accepts any known `typ`; callers that need a given
/// kind or signer check [`SignedDocument::kind`] and
/// [`SignedDocument::signer`], or use [`SignedDocument::verify`].
#[derive(Debug, Clone, PartialEq)]
pub struct SignedDocument<T> {
    jws: String,
    payload: T,
    kind: DocumentKind,
    signer: PublicKey,
    hash: String,
    form: CanonicalForm,
}

impl<T: Serialize + DeserializeOwned> SignedDocument<T> {
    /// Signs `payload` as a document of `kind` with `key`; the JWS payload is
    /// the canonical JSON of `payload`.
    pub fn sign(payload: T, kind: DocumentKind, key: &KeyPair) -> Result<Self> {
        // `sign_jws` writes the current form and names it in the header.
        let jws = sign_jws(kind.typ(), true, &payload, key)?;
        let form = CanonicalForm::CURRENT;
        let hash = form.content_hash(&payload)?;
        Ok(Self {
            jws,
            payload,
            kind,
            signer: key.public_key(),
            hash,
            form,
        })
    }

    /// Verifies `jws` as a document of `kind`, signed by `expected_signer` if
    /// given. See the module documentation for the checks and their errors.
    pub fn verify(
        jws: &str,
        kind: DocumentKind,
        expected_signer: Option<&PublicKey>,
    ) -> Result<Self> {
        let what = kind.what();
        let signer = embedded_signer(decode_header(jws, what)?, what)?;
        if expected_signer.is_some_and(|expected| *expected != signer) {
            return Err(Error::BadSignature { what });
        }
        let (header, payload): (Header, T) = verify_jws(jws, &signer, what)?;
        if header.typ() != kind.typ() {
            return Err(Error::malformed(
                what,
                format!("`typ` is `{}`, expected `{}`", header.typ(), kind.typ()),
            ));
        }
        let form = header.canonical_form(what)?;
        let hash = form.content_hash(&payload_value(jws, what)?)?;
        Ok(Self {
            jws: jws.to_owned(),
            payload,
            kind,
            signer,
            hash,
            form,
        })
    }
}

impl<T> SignedDocument<T> {
    /// The compact JWS.
    pub fn jws(&self) -> &str {
        &self.jws
    }

    /// The decoded payload.
    pub fn payload(&self) -> &T {
        &self.payload
    }

    /// The decoded payload, consuming the document.
    pub fn into_payload(self) -> T {
        self.payload
    }

    /// What the document is.
    pub fn kind(&self) -> DocumentKind {
        self.kind
    }

    /// The key that signed the document.
    pub fn signer(&self) -> PublicKey {
        self.signer
    }

    /// `sha256:<hex>` of the canonical JSON of the signed payload, in the
    /// document's canonical form.
    pub fn content_hash(&self) -> &str {
        &self.hash
    }

    /// The canonical form the document was signed in (its hash's form).
    pub fn canonical_form(&self) -> CanonicalForm {
        self.form
    }
}

/// The `jwk` of a document header, which must agree with its `kid`.
fn embedded_signer(header: Header, what: &'static str) -> Result<PublicKey> {
    let signer = header
        .jwk
        .ok_or_else(|| Error::malformed(what, "the header has no `jwk`"))?;
    let kid = header
        .kid
        .ok_or_else(|| Error::malformed(what, "the header has no `kid`"))?;
    if kid != signer.key_id() {
        return Err(Error::UnknownKeyId { kid });
    }
    Ok(signer)
}

/// Checks that a document claiming `claimed_issuer` as issuer was signed by
/// that participant: `credential` (already verified) must be the claimed
/// issuer's and hold `signer`'s key. Else [`Error::SignerMismatch`].
pub fn verify_issuer(
    claimed_issuer: &str,
    credential: &MembershipCredential,
    signer: &PublicKey,
) -> Result<()> {
    if credential.sub != claimed_issuer {
        return Err(Error::SignerMismatch {
            claimed: claimed_issuer.into(),
            signer: credential.sub.clone(),
        });
    }
    if credential.jwk != *signer {
        return Err(Error::SignerMismatch {
            claimed: claimed_issuer.into(),
            signer: format!("key `{}`", signer.key_id()),
        });
    }
    Ok(())
}

impl<T> Serialize for SignedDocument<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.jws)
    }
}

impl<'de, T: Serialize + DeserializeOwned> Deserialize<'de> for SignedDocument<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let jws = String::deserialize(deserializer)?;
        let header = decode_header(&jws, "signed document").map_err(de::Error::custom)?;
        let kind = DocumentKind::from_typ(header.typ()).ok_or_else(|| {
            de::Error::custom(format!("unknown signed document type `{}`", header.typ()))
        })?;
        Self::verify(&jws, kind, None).map_err(de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::credential::Attributes;
    use crate::jws::forge;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Offer {
        id: String,
        issuer: String,
        dataset: String,
        rows: u64,
    }

    fn offer() -> Offer {
        Offer {
            id: "urn:offer:1".into(),
            issuer: "platform-north".into(),
            dataset: "telemetry".into(),
            rows: 42,
        }
    }

    fn signed(key: &KeyPair) -> SignedDocument<Offer> {
        SignedDocument::sign(offer(), DocumentKind::Offer, key).unwrap()
    }

    fn verify(jws: &str, expected: Option<&PublicKey>) -> Result<SignedDocument<Offer>> {
        SignedDocument::verify(jws, DocumentKind::Offer, expected)
    }

    fn credential(sub: &str, key: &PublicKey) -> MembershipCredential {
        MembershipCredential {
            iss: "authority".into(),
            sub: sub.into(),
            name: sub.into(),
            jwk: *key,
            attributes: Attributes::default(),
            iat: 0,
            exp: 1,
        }
    }

    #[test]
    fn sign_and_verify_round_trip_for_every_kind() {
        let key = KeyPair::generate().unwrap();
        for kind in DocumentKind::ALL {
            let doc = SignedDocument::sign(offer(), kind, &key).unwrap();
            let header = forge::header_of(doc.jws());
            assert_eq!(header["typ"], kind.typ());
            assert_eq!(header["kid"], key.public_key().key_id());
            assert_eq!(
                header["jwk"],
                serde_json::to_value(key.public_key()).unwrap()
            );
            let back =
                SignedDocument::<Offer>::verify(doc.jws(), kind, Some(&key.public_key())).unwrap();
            assert_eq!(back, doc);
            assert_eq!(back.kind(), kind);
            assert_eq!(back.signer(), key.public_key());
            assert_eq!(back.payload(), &offer());
            assert_eq!(DocumentKind::from_typ(kind.typ()), Some(kind));
        }
    }

    #[test]
    fn content_hash_is_the_hash_of_the_payload() {
        let key = KeyPair::generate().unwrap();
        let doc = signed(&key);
        assert_eq!(doc.content_hash(), content_hash(&offer()).unwrap());
        assert!(doc.content_hash().starts_with("sha256:"));
        let verified = verify(doc.jws(), None).unwrap();
        assert_eq!(verified.content_hash(), doc.content_hash());
    }

    #[test]
    fn content_hash_ignores_key_order_of_a_hand_written_payload() {
        let key = KeyPair::generate().unwrap();
        let header = forge::header_of(signed(&key).jws());
        let payload = json!({"rows": 42, "dataset": "telemetry", "issuer": "platform-north", "id": "urn:offer:1"});
        let jws = forge::signed(&header, &payload, &key);
        assert_eq!(
            verify(&jws, None).unwrap().content_hash(),
            signed(&key).content_hash()
        );
    }

    /// A document as the code before RFC 8785 signed it: no `canon` in the
    /// header, header and payload in the legacy form.
    fn legacy_signed(payload: &Value, kind: DocumentKind, key: &KeyPair) -> (String, String) {
        let public = key.public_key();
        let header =
            json!({"alg": "EdDSA", "typ": kind.typ(), "kid": public.key_id(), "jwk": public});
        let legacy = CanonicalForm::Legacy;
        let input = format!(
            "{}.{}",
            forge::b64(&legacy.to_vec(&header).unwrap()),
            forge::b64(&legacy.to_vec(payload).unwrap())
        );
        let jws = format!("{input}.{}", forge::b64(&key.sign(input.as_bytes())));
        // What the old code stored as the document's hash.
        (jws, legacy.content_hash(payload).unwrap())
    }

    #[test]
    fn a_legacy_document_with_floats_verifies_with_its_stored_hash() {
        let key = KeyPair::generate().unwrap();
        // Numbers the two forms write differently: `1.0` (legacy) and `1`.
        let payload =
            json!({"issuer": "platform-north", "epsilon": 1.0, "bound": 100.0, "small": 0.5});
        let legacy = CanonicalForm::Legacy.to_vec(&payload).unwrap();
        assert_ne!(legacy, CanonicalForm::Rfc8785.to_vec(&payload).unwrap());
        let (jws, stored_hash) = legacy_signed(&payload, DocumentKind::UsagePolicy, &key);
        let doc: SignedDocument<Value> =
            SignedDocument::verify(&jws, DocumentKind::UsagePolicy, Some(&key.public_key()))
                .unwrap();
        assert_eq!(doc.canonical_form(), CanonicalForm::Legacy);
        assert_eq!(doc.content_hash(), stored_hash);
        assert_ne!(doc.content_hash(), content_hash(&payload).unwrap());
        assert_eq!(doc.payload(), &payload);
    }

    #[test]
    fn a_new_document_is_written_and_hashed_per_rfc_8785() {
        let key = KeyPair::generate().unwrap();
        let payload = json!({"b": 1e21, "a": 1.0, "c": [0.000001, 1e-7, 333333333.3333333]});
        let doc = SignedDocument::sign(payload.clone(), DocumentKind::Offer, &key).unwrap();
        let bytes = URL_SAFE_NO_PAD
            .decode(doc.jws().split('.').nth(1).unwrap())
            .unwrap();
        let expected = r#"{"a":1,"b":1e+21,"c":[0.000001,1e-7,333333333.3333333]}"#;
        assert_eq!(String::from_utf8(bytes).unwrap(), expected);
        assert_eq!(doc.content_hash(), hash_bytes(expected.as_bytes()));
        assert_eq!(forge::header_of(doc.jws())["canon"], "rfc8785");
        let verified: SignedDocument<Value> =
            SignedDocument::verify(doc.jws(), DocumentKind::Offer, None).unwrap();
        assert_eq!(verified.content_hash(), doc.content_hash());
        assert_eq!(verified.canonical_form(), CanonicalForm::Rfc8785);
    }

    #[test]
    fn refuses_an_unknown_canonical_form() {
        let key = KeyPair::generate().unwrap();
        let mut header = forge::header_of(signed(&key).jws());
        header["canon"] = json!("c14n-2030");
        let jws = forge::signed(&header, &serde_json::to_value(offer()).unwrap(), &key);
        let err = verify(&jws, None).unwrap_err();
        assert!(matches!(err, Error::Malformed { .. }), "{err}");
    }

    #[test]
    fn serializes_as_the_jws_string() {
        let key = KeyPair::generate().unwrap();
        let doc = signed(&key);
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json, Value::String(doc.jws().into()));
        let back: SignedDocument<Offer> = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn deserializing_refuses_a_tampered_document() {
        let key = KeyPair::generate().unwrap();
        let tampered = forge::with_payload(signed(&key).jws(), |p| p["rows"] = json!(1));
        assert!(serde_json::from_value::<SignedDocument<Offer>>(Value::String(tampered)).is_err());
        let unknown = forge::signed(&json!({"alg": "EdDSA", "typ": "JWT"}), &json!({}), &key);
        assert!(serde_json::from_value::<SignedDocument<Offer>>(Value::String(unknown)).is_err());
    }

    #[test]
    fn refuses_another_kind() {
        let key = KeyPair::generate().unwrap();
        let doc = SignedDocument::sign(offer(), DocumentKind::Agreement, &key).unwrap();
        let err = verify(doc.jws(), None).unwrap_err();
        assert!(
            matches!(err, Error::Malformed { what: "offer", .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_an_unexpected_signer() {
        let key = KeyPair::generate().unwrap();
        let other = KeyPair::generate().unwrap();
        let err = verify(signed(&key).jws(), Some(&other.public_key())).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_tampered_payload() {
        let key = KeyPair::generate().unwrap();
        let tampered = forge::with_payload(signed(&key).jws(), |p| p["rows"] = json!(1_000_000));
        let err = verify(&tampered, None).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_tampered_header() {
        let key = KeyPair::generate().unwrap();
        let tampered = forge::with_header(signed(&key).jws(), |h| h["typ"] = json!("receipt+jws"));
        let err = verify(&tampered, None).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_swapped_embedded_key() {
        // Replace key and kid with another participant's, keep the signature.
        let key = KeyPair::generate().unwrap();
        let other = KeyPair::generate().unwrap().public_key();
        let tampered = forge::with_header(signed(&key).jws(), |h| {
            h["jwk"] = serde_json::to_value(other).unwrap();
            h["kid"] = json!(other.key_id());
        });
        let err = verify(&tampered, Some(&other)).unwrap_err();
        assert!(matches!(err, Error::BadSignature { .. }), "{err}");
    }

    #[test]
    fn refuses_a_kid_that_does_not_name_the_embedded_key() {
        let key = KeyPair::generate().unwrap();
        let tampered = forge::with_header(signed(&key).jws(), |h| h["kid"] = json!("other"));
        let err = verify(&tampered, None).unwrap_err();
        assert!(
            matches!(err, Error::UnknownKeyId { ref kid } if kid == "other"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_header_without_jwk_or_kid() {
        let key = KeyPair::generate().unwrap();
        for member in ["jwk", "kid"] {
            let mut header = forge::header_of(signed(&key).jws());
            header.as_object_mut().unwrap().remove(member);
            let jws = forge::signed(&header, &serde_json::to_value(offer()).unwrap(), &key);
            let err = verify(&jws, None).unwrap_err();
            assert!(matches!(err, Error::Malformed { .. }), "{member}: {err}");
        }
    }

    #[test]
    fn refuses_alg_none_and_other_algorithms() {
        let key = KeyPair::generate().unwrap();
        let payload = serde_json::to_value(offer()).unwrap();
        let mut header = forge::header_of(signed(&key).jws());
        header["alg"] = json!("none");
        let err = verify(&forge::assemble(&header, &payload, ""), None).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNone), "{err}");
        header["alg"] = json!("HS256");
        let token = forge::hmac_signed(&header, &payload, key.public_key().as_bytes());
        let err = verify(&token, None).unwrap_err();
        assert!(matches!(err, Error::AlgorithmNotAllowed { .. }), "{err}");
        for alg in ["RS256", "ES256"] {
            header["alg"] = json!(alg);
            let err = verify(&forge::signed(&header, &payload, &key), None).unwrap_err();
            assert!(
                matches!(err, Error::AlgorithmNotAllowed { .. }),
                "{alg}: {err}"
            );
        }
    }

    #[test]
    fn verify_issuer_accepts_the_credentialed_signer() {
        let key = KeyPair::generate().unwrap().public_key();
        assert!(verify_issuer("platform-north", &credential("platform-north", &key), &key).is_ok());
    }

    #[test]
    fn verify_issuer_refuses_another_participant_or_key() {
        let key = KeyPair::generate().unwrap().public_key();
        let other = KeyPair::generate().unwrap().public_key();
        let err =
            verify_issuer("platform-north", &credential("sme-south", &key), &key).unwrap_err();
        assert!(matches!(err, Error::SignerMismatch { .. }), "{err}");
        let err = verify_issuer(
            "platform-north",
            &credential("platform-north", &key),
            &other,
        )
        .unwrap_err();
        assert!(matches!(err, Error::SignerMismatch { .. }), "{err}");
    }
}
