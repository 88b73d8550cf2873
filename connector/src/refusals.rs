//! Refused access, audited within a rate: every request refused for its
//! request token, its credential or the admin token is an `access_refused`
//! audit record naming the reason ([`AccessReason`], a fixed code and
//! sentence: never the token, nor any text of it), at most
//! `refusal_records_per_sec` records a second for each reason
//! ([`RefusalLimiter`]).
//!
//! The limit is per reason, not per peer, so that a flood from many
//! addresses gets no more records than a flood from one: with `N` records a
//! second and the [`AccessReason::ALL`] reasons, a flood writes at most
//! `N x 21` records a second whatever its size (at the default of 10, and
//! records of about 400 bytes, some 84 KB a second, less than the queries
//! of one busy consumer). The refusals past the limit are counted, and the
//! next record of that reason says how many there were (`detail`), so the
//! log still tells the size of a flood; each record names the peer's
//! address when it is known.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Why a request was refused access: the code goes into the record's
/// `rule`, the sentence into its `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessReason {
    /// No `Authorization: Bearer` request token.
    TokenMissing,
    /// No membership credential beside the token.
    CredentialMissing,
    /// The token is not a well-formed JWS with the expected claims.
    TokenMalformed,
    /// The token is unsigned or signed with another algorithm than EdDSA.
    TokenAlgorithm,
    /// The token's signature does not verify.
    TokenSignature,
    /// The token's key id is not the credential's key.
    TokenKey,
    /// The token's issuer or subject is not the credential's subject.
    TokenIssuer,
    /// The token is addressed to another participant.
    TokenAudience,
    /// The token has expired.
    TokenExpired,
    /// The token is not valid yet.
    TokenNotYetValid,
    /// The token lives longer than allowed.
    TokenLifetime,
    /// The token was used before.
    TokenReplayed,
    /// The credential is not a well-formed JWS with the expected claims.
    CredentialMalformed,
    /// The credential's signature does not verify.
    CredentialSignature,
    /// The credential was not issued by the trusted authority.
    CredentialIssuer,
    /// The credential has expired.
    CredentialExpired,
    /// The credential is not valid yet.
    CredentialNotYetValid,
    /// The owner's admin token is missing or wrong.
    AdminToken,
    /// A verified participant who is not a data officer of this connector
    /// asked for the audit log.
    NotOfficer,
    /// The check could not be made (storage of token ids, keys).
    CheckFailed,
    /// Any other refusal of the token or credential.
    Other,
}

impl AccessReason {
    /// Every reason: the limiter keeps at most one window for each.
    pub const ALL: [Self; 21] = [
        Self::TokenMissing,
        Self::CredentialMissing,
        Self::TokenMalformed,
        Self::TokenAlgorithm,
        Self::TokenSignature,
        Self::TokenKey,
        Self::TokenIssuer,
        Self::TokenAudience,
        Self::TokenExpired,
        Self::TokenNotYetValid,
        Self::TokenLifetime,
        Self::TokenReplayed,
        Self::CredentialMalformed,
        Self::CredentialSignature,
        Self::CredentialIssuer,
        Self::CredentialExpired,
        Self::CredentialNotYetValid,
        Self::AdminToken,
        Self::NotOfficer,
        Self::CheckFailed,
        Self::Other,
    ];

    /// The reason's code, as stored in the record's `rule`.
    pub fn id(self) -> &'static str {
        match self {
            Self::TokenMissing => "token_missing",
            Self::CredentialMissing => "credential_missing",
            Self::TokenMalformed => "token_malformed",
            Self::TokenAlgorithm => "token_algorithm",
            Self::TokenSignature => "token_signature",
            Self::TokenKey => "token_key",
            Self::TokenIssuer => "token_issuer",
            Self::TokenAudience => "token_audience",
            Self::TokenExpired => "token_expired",
            Self::TokenNotYetValid => "token_not_yet_valid",
            Self::TokenLifetime => "token_lifetime",
            Self::TokenReplayed => "token_replayed",
            Self::CredentialMalformed => "credential_malformed",
            Self::CredentialSignature => "credential_signature",
            Self::CredentialIssuer => "credential_issuer",
            Self::CredentialExpired => "credential_expired",
            Self::CredentialNotYetValid => "credential_not_yet_valid",
            Self::AdminToken => "admin_token",
            Self::NotOfficer => "not_officer",
            Self::CheckFailed => "check_failed",
            Self::Other => "access",
        }
    }

    /// A fixed sentence: what was wrong, in words that quote nothing sent.
    pub fn describe(self) -> &'static str {
        match self {
            Self::TokenMissing => "no request token was sent",
            Self::CredentialMissing => "no membership credential was sent",
            Self::TokenMalformed => "the request token is malformed",
            Self::TokenAlgorithm => "the request token is not signed with EdDSA",
            Self::TokenSignature => "the request token's signature does not verify",
            Self::TokenKey => "the request token names a key that is not the credential's",
            Self::TokenIssuer => "the request token's issuer is not the credential's subject",
            Self::TokenAudience => "the request token is addressed to another participant",
            Self::TokenExpired => "the request token has expired",
            Self::TokenNotYetValid => "the request token is not valid yet",
            Self::TokenLifetime => "the request token lives longer than allowed",
            Self::TokenReplayed => "the request token was already used",
            Self::CredentialMalformed => "the membership credential is malformed",
            Self::CredentialSignature => "the membership credential's signature does not verify",
            Self::CredentialIssuer => {
                "the membership credential was not issued by the trusted authority"
            }
            Self::CredentialExpired => "the membership credential has expired",
            Self::CredentialNotYetValid => "the membership credential is not valid yet",
            Self::AdminToken => "the owner's admin token is missing or wrong",
            Self::NotOfficer => "the caller is not a data officer of this connector",
            Self::CheckFailed => "the token could not be checked",
            Self::Other => "the request token or credential was refused",
        }
    }

    /// The reason a token verification failed with `error`.
    pub fn of(error: &policy::Error) -> Self {
        use policy::Error as P;
        let credential = |what: &str| what.contains("credential");
        match error {
            P::AlgorithmNone | P::AlgorithmNotAllowed { .. } => Self::TokenAlgorithm,
            P::Malformed { what, .. } if credential(what) => Self::CredentialMalformed,
            P::Malformed { .. } => Self::TokenMalformed,
            P::BadSignature { what } if credential(what) => Self::CredentialSignature,
            P::BadSignature { .. } => Self::TokenSignature,
            P::UntrustedIssuer { .. } => Self::CredentialIssuer,
            P::UnknownKeyId { .. } => Self::TokenKey,
            P::Expired { what, .. } if credential(what) => Self::CredentialExpired,
            P::Expired { .. } => Self::TokenExpired,
            P::NotYetValid { what, .. } if credential(what) => Self::CredentialNotYetValid,
            P::NotYetValid { .. } => Self::TokenNotYetValid,
            P::LifetimeTooLong { .. } => Self::TokenLifetime,
            P::WrongAudience { .. } => Self::TokenAudience,
            P::Replayed { .. } => Self::TokenReplayed,
            P::IssuerMismatch { .. } | P::SignerMismatch { .. } => Self::TokenIssuer,
            P::Io { .. } | P::Key(_) => Self::CheckFailed,
            P::Refused(_) | P::InvalidPolicy { .. } => Self::Other,
        }
    }
}

/// The length of one window of the rate limit.
pub const WINDOW: Duration = Duration::from_secs(1);

/// At most `per_window` admissions per [`WINDOW`] for each reason; the rest
/// are counted until the next admission of the reason.
#[derive(Debug)]
pub struct RefusalLimiter {
    per_window: u32,
    windows: Mutex<HashMap<AccessReason, Window>>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    admitted: u32,
    /// Refusals not recorded since the last admission.
    suppressed: u64,
}

impl RefusalLimiter {
    /// A limiter admitting `per_window` records a second for each reason.
    pub fn new(per_window: u32) -> Self {
        Self {
            per_window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a refusal for `reason` at `now` gets a record: if so, the
    /// number of refusals for it that did not since the last record.
    pub fn admit(&self, reason: AccessReason, now: Instant) -> Option<u64> {
        let mut windows = self.lock();
        let window = windows.entry(reason).or_insert(Window {
            started: now,
            admitted: 0,
            suppressed: 0,
        });
        if now.saturating_duration_since(window.started) >= WINDOW {
            window.started = now;
            window.admitted = 0;
        }
        if window.admitted < self.per_window {
            window.admitted += 1;
            Some(std::mem::take(&mut window.suppressed))
        } else {
            window.suppressed += 1;
            None
        }
    }

    /// The refusals not yet reported in a record, for each reason.
    pub fn pending(&self) -> Vec<(AccessReason, u64)> {
        self.lock()
            .iter()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(reason, w)| (*reason, w.suppressed))
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<AccessReason, Window>> {
        // Every change leaves the counters consistent.
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The `detail` of an `access_refused` record.
pub fn refusal_detail(
    reason: AccessReason,
    peer: Option<IpAddr>,
    suppressed: u64,
    per_second: u32,
) -> String {
    let from = peer.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
    let mut detail = format!("{}; from {from}", reason.describe());
    if suppressed > 0 {
        detail.push_str(&format!(
            "; {suppressed} more refusals for this reason were not recorded since the last record (at most {per_second} records a second)"
        ));
    }
    detail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_the_limit_per_window_and_reason_and_the_rest_is_counted() {
        let limiter = RefusalLimiter::new(3);
        let t0 = Instant::now();
        let admitted: Vec<Option<u64>> = (0..10)
            .map(|_| limiter.admit(AccessReason::TokenSignature, t0))
            .collect();
        assert_eq!(admitted.iter().flatten().count(), 3);
        assert_eq!(limiter.pending(), vec![(AccessReason::TokenSignature, 7)]);
        // Another reason has a window of its own.
        assert_eq!(limiter.admit(AccessReason::TokenReplayed, t0), Some(0));
        // The next window's first record carries the count.
        let t1 = t0 + WINDOW;
        assert_eq!(limiter.admit(AccessReason::TokenSignature, t1), Some(7));
        assert_eq!(limiter.admit(AccessReason::TokenSignature, t1), Some(0));
        assert!(limiter.pending().is_empty());
    }

    #[test]
    fn every_policy_error_has_a_reason_and_credentials_are_told_apart() {
        let token = policy::Error::Expired {
            what: "request token",
            at: 1,
        };
        let credential = policy::Error::Expired {
            what: "membership credential",
            at: 1,
        };
        assert_eq!(AccessReason::of(&token), AccessReason::TokenExpired);
        assert_eq!(
            AccessReason::of(&credential),
            AccessReason::CredentialExpired
        );
        let ids: std::collections::HashSet<&str> =
            AccessReason::ALL.iter().map(|r| r.id()).collect();
        assert_eq!(ids.len(), AccessReason::ALL.len());
    }

    #[test]
    fn details_name_the_peer_and_the_count() {
        let detail = refusal_detail(
            AccessReason::TokenReplayed,
            Some(IpAddr::from([127, 0, 0, 1])),
            5,
            10,
        );
        assert!(
            detail.contains("127.0.0.1") && detail.contains("5 more"),
            "{detail}"
        );
    }
}
