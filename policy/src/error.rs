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
    /// A key could not be generated, parsed, encoded or used, or the random
    /// source failed.
    #[error("key error: {0}")]
    Key(#[source] KeyError),
    /// Reading or writing a file failed.
    #[error("cannot access `{path}`: {source}")]
    Io {
        /// The file (or store) that could not be accessed.
        path: String,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    // ---- JWS and tokens ----
    /// The JWS header says `alg: none`.
    #[error("unsigned tokens (`alg` `none`) are refused")]
    AlgorithmNone,
    /// Any algorithm other than EdDSA (HS*, RS*, ES*, ...).
    #[error("algorithm `{alg}` is refused: only `EdDSA` is accepted")]
    AlgorithmNotAllowed {
        /// The algorithm the header names.
        alg: String,
    },
    /// The JWS is not well formed (segments, base64, JSON, missing claims).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// What was being read or written (`request token`, `content`, ...).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
        /// The typed error behind it, where there is one (a JSON error, a
        /// base64 error).
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The signature does not verify: the header or payload was altered, or
    /// another key signed it.
    #[error("the signature of the {what} does not verify")]
    BadSignature {
        /// What was being verified.
        what: &'static str,
    },
    /// A credential that the configured authority did not sign.
    #[error("the membership credential was not issued by the trusted authority `{authority}`")]
    UntrustedIssuer {
        /// The authority that is trusted.
        authority: String,
    },
    /// The `kid` of a JWS header names no key we know.
    #[error("unknown key id `{kid}`")]
    UnknownKeyId {
        /// The key id of the header.
        kid: String,
    },
    /// Past `exp` (plus the clock-skew tolerance).
    #[error("the {what} expired at {at}")]
    Expired {
        /// What expired.
        what: &'static str,
        /// Its `exp`, in seconds since the Unix epoch.
        at: i64,
    },
    /// Before `iat`/`nbf` (minus the clock-skew tolerance).
    #[error("the {what} is not valid before {at}")]
    NotYetValid {
        /// What is not valid yet.
        what: &'static str,
        /// The time it is valid from, in seconds since the Unix epoch.
        at: i64,
    },
    /// A request token lives longer than allowed.
    #[error("the request token lives {seconds} s; at most {max} s are allowed")]
    LifetimeTooLong {
        /// From `iat` to `exp`.
        seconds: i64,
        /// The longest lifetime allowed.
        max: i64,
    },
    /// A request token meant for another participant.
    #[error("the request token is for `{found}`, not for `{expected}`")]
    WrongAudience {
        /// This participant.
        expected: String,
        /// The token's `aud`.
        found: String,
    },
    /// A request token whose `jti` was seen before it expired.
    #[error("the request token `{jti}` was already used")]
    Replayed {
        /// The token id.
        jti: String,
    },
    /// The token's issuer or subject is not the credential's subject.
    #[error(
        "the request token is issued by `{token}` but the credential belongs to `{credential}`"
    )]
    IssuerMismatch {
        /// The token's issuer.
        token: String,
        /// The credential's subject.
        credential: String,
    },
    /// A signed document's content does not name its signer as issuer.
    #[error("the document names `{claimed}` as issuer but was signed by `{signer}`")]
    SignerMismatch {
        /// The issuer the content names.
        claimed: String,
        /// Who signed it (a participant, or a key id).
        signer: String,
    },

    // ---- enforcement ----
    /// A query refused by a usage policy.
    #[error(transparent)]
    Refused(#[from] crate::refusal::Refusal),

    // ---- usage policy ----
    /// A usage policy that breaks the spec; `field` is a JSON path.
    #[error("invalid usage policy: `{field}` {reason}")]
    InvalidPolicy {
        /// The JSON path of the field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
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
            source: None,
        }
    }

    /// [`Error::Malformed`] caused by the typed error `source`; `context`
    /// says which part (`claims`, `header`), the detail ends with `source`'s
    /// message.
    pub fn malformed_by(
        what: &'static str,
        context: &str,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Malformed {
            what,
            detail: format!("{context}: {source}"),
            source: Some(Box::new(source)),
        }
    }

    /// Shorthand for [`Error::Key`] with a message of its own.
    pub fn key(message: impl Into<String>) -> Self {
        Self::Key(KeyError::Invalid(message.into()))
    }
}

/// What went wrong with a key, or with the random source keys and ids are
/// drawn from.
#[derive(Debug, Error)]
pub enum KeyError {
    /// A key that does not fit (a file mode, a JWK member, a length).
    #[error("{0}")]
    Invalid(String),
    /// A private key that ring refuses as an Ed25519 PKCS#8 document.
    #[error("not an Ed25519 PKCS#8 private key: {0}")]
    Rejected(#[source] ring::error::KeyRejected),
    /// The operating system's random source failed.
    #[error("cannot draw random bytes")]
    Random(#[source] ring::error::Unspecified),
    /// Signing failed (jsonwebtoken refused the key pair's document).
    #[error("cannot sign: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
}
