//! The one error type of the trust core.

use thiserror::Error;

/// Result with the crate's error as default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the trust core: identity, tokens, signed
/// documents and the usage-policy model. Messages are lower-case, put user
/// input in backticks and never carry data values from a dataset.
#[derive(Debug, Error)]
pub enum Error {
    // ---- keys and files ----
    /// A key could not be generated, parsed or encoded.
    #[error("key error: {0}")]
    Key(String),
    /// Reading or writing a file failed.
    #[error("cannot access `{path}`: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    // ---- JWS and tokens ----
    /// The JWS header says `alg: none`.
    #[error("unsigned tokens (`alg` `none`) are refused")]
    AlgorithmNone,
    /// Any algorithm other than EdDSA (HS*, RS*, ES*, ...).
    #[error("algorithm `{alg}` is refused: only `EdDSA` is accepted")]
    AlgorithmNotAllowed { alg: String },
    /// The JWS is not well formed (segments, base64, JSON, missing claims).
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// Content that cannot be written as canonical JSON (a map with keys
    /// that are not strings, a number that is not finite).
    #[error("the content cannot be written as canonical JSON: {source}")]
    Canonical {
        /// What the JSON writer said.
        #[source]
        source: serde_json::Error,
    },
    /// Signing failed (the key pair's PKCS#8 document was refused).
    #[error("cannot sign: {source}")]
    Sign {
        /// What jsonwebtoken said.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// The signature does not verify: the header or payload was altered, or
    /// another key signed it.
    #[error("the signature of the {what} does not verify")]
    BadSignature { what: &'static str },
    /// A credential that the configured authority did not sign.
    #[error("the membership credential was not issued by the trusted authority `{authority}`")]
    UntrustedIssuer { authority: String },
    /// The `kid` of a JWS header names no key we know.
    #[error("unknown key id `{kid}`")]
    UnknownKeyId { kid: String },
    /// Past `exp` (plus the clock-skew tolerance).
    #[error("the {what} expired at {at}")]
    Expired { what: &'static str, at: i64 },
    /// Before `iat`/`nbf` (minus the clock-skew tolerance).
    #[error("the {what} is not valid before {at}")]
    NotYetValid { what: &'static str, at: i64 },
    /// A request token lives longer than allowed.
    #[error("the request token lives {seconds} s; at most {max} s are allowed")]
    LifetimeTooLong { seconds: i64, max: i64 },
    /// A request token meant for another participant.
    #[error("the request token is for `{found}`, not for `{expected}`")]
    WrongAudience { expected: String, found: String },
    /// A request token whose `jti` was seen before it expired.
    #[error("the request token `{jti}` was already used")]
    Replayed { jti: String },
    /// The token's issuer or subject is not the credential's subject.
    #[error(
        "the request token is issued by `{token}` but the credential belongs to `{credential}`"
    )]
    IssuerMismatch { token: String, credential: String },
    /// A signed document's content does not name its signer as issuer.
    #[error("the document names `{claimed}` as issuer but was signed by `{signer}`")]
    SignerMismatch { claimed: String, signer: String },

    // ---- enforcement ----
    /// A query refused by a usage policy.
    #[error(transparent)]
    Refused(#[from] crate::refusal::Refusal),

    // ---- usage policy ----
    /// A usage policy that breaks the spec; `field` is a JSON path.
    #[error("invalid usage policy: `{field}` {reason}")]
    InvalidPolicy { field: String, reason: String },
}

impl Error {
    /// Shorthand for [`Error::InvalidPolicy`].
    pub fn invalid_policy(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidPolicy {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Malformed`].
    pub fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            detail: detail.to_string(),
        }
    }
}
