//! Admission of the agreement a query runs under: our signature on it, its
//! consumer, that it is the one on record, and that it is in force now
//! (finalized, policy intact, purpose covered, valid at the request's
//! instant).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use policy::contract::Agreement;
use policy::document::{DocumentKind, SignedDocument};
use policy::enforce::{Refusal, Rule};
use policy::keys::PublicKey;
use policy::memo::Memo;
use policy::token::VerifiedCaller;

use crate::negotiation::{NegotiationState, Negotiations};
use crate::store::Store;
use crate::{Error, Result};

/// Most verified agreements remembered, least recently used out first.
pub const AGREEMENTS_KEPT: usize = 4096;

/// Verifies the agreements presented with queries.
pub struct Admission {
    /// The provider's own key: every agreement must carry its signature.
    key: PublicKey,
    /// Agreements whose signature verified and that match the one on
    /// record, by their JWS: an agreement never changes once signed, so
    /// its verification is done once. Whether it is still in force is
    /// read from the store on every query.
    verified: Memo<Arc<Agreement>>,
}

impl Admission {
    /// Admission for agreements signed with `key`.
    pub fn new(key: PublicKey) -> Self {
        Self {
            key,
            verified: Memo::new(AGREEMENTS_KEPT),
        }
    }

    /// The agreement `agreement_jws` presented by `caller`, verified (ours,
    /// theirs, the one on record), with its negotiation's state. Whether it
    /// is in force is [`in_force`]'s check.
    pub fn presented(
        &self,
        store: &dyn Store,
        caller: &VerifiedCaller,
        agreement_jws: &str,
    ) -> Result<(Arc<Agreement>, NegotiationState)> {
        let agreement = match self.verified.get(agreement_jws) {
            Some(agreement) => agreement,
            None => self.verify(store, agreement_jws)?,
        };
        if agreement.consumer != caller.participant_id {
            return Err(Error::Forbidden(
                "the agreement belongs to another participant".into(),
            ));
        }
        let state = Negotiations::new(store).state(&agreement.id)?;
        Ok((agreement, state))
    }

    /// Checks our signature on an agreement and that it is the one on
    /// record, and remembers it.
    fn verify(&self, store: &dyn Store, agreement_jws: &str) -> Result<Arc<Agreement>> {
        let signed = SignedDocument::<Agreement>::verify(
            agreement_jws,
            DocumentKind::Agreement,
            Some(&self.key),
        )?;
        let agreement = Arc::new(signed.payload().clone());
        let negotiation = Negotiations::new(store).get(&agreement.id)?;
        let stored = negotiation.agreement.as_ref().map(SignedDocument::jws);
        if stored != Some(signed.jws()) {
            return Err(Error::Forbidden(
                "the agreement does not match the one on record".into(),
            ));
        }
        self.verified.insert(agreement_jws, Arc::clone(&agreement));
        Ok(agreement)
    }
}

/// Whether a verified `agreement` in negotiation `state` admits a query at
/// `now`: finalized, its policy the one it names by hash, its purpose
/// covered, the policy valid.
pub fn in_force(agreement: &Agreement, state: NegotiationState, now: DateTime<Utc>) -> Result<()> {
    match state {
        NegotiationState::Finalized => {}
        NegotiationState::Terminated => {
            return Err(Refusal::new(
                Rule::Revoked,
                format!("the agreement `{}` was revoked or terminated", agreement.id),
            )
            .into());
        }
        _ => {
            return Err(Error::Conflict(format!(
                "the agreement `{}` is not finalized",
                agreement.id
            )));
        }
    }
    let policy = agreement.policy.payload();
    if agreement.policy.content_hash() != agreement.policy_hash {
        return Err(Error::Forbidden(
            "the agreement's policy does not match its hash".into(),
        ));
    }
    if !policy.purposes.contains(&agreement.purpose) {
        return Err(Refusal::new(
            Rule::Purpose,
            format!(
                "the purpose `{}` is not covered by the policy",
                agreement.purpose
            ),
        )
        .into());
    }
    policy.in_force(&agreement.dataset, now)?;
    Ok(())
}
