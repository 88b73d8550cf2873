//! Contract negotiation, provider side, with the states of the Dataspace
//! Protocol: `REQUESTED` -> `AGREED` (provider signed) -> `FINALIZED`
//! (consumer verified and countersigned; the consumer's own copy is
//! `VERIFIED` before it sends its acceptance) -> `TERMINATED` (rejected or
//! revoked). An agreement embeds the policy's hash and the consumer's signed
//! request, so neither side can alter it later.

use std::collections::BTreeMap;

use policy::contract::{Acceptance, Agreement, ContractRequest, Offer};
use policy::credential::MembershipCredential;
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::KeyPair;
use policy::model::UsagePolicy;
use serde::{Deserialize, Serialize};

use crate::store::{Store, get_json, put_json, scan_json};
use crate::{Error, Result};

const TREE: &str = "negotiations";

/// Where a negotiation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NegotiationState {
    /// Waiting for the provider's decision.
    Requested,
    /// The provider signed the agreement.
    Agreed,
    /// The consumer verified the agreement (consumer side).
    Verified,
    /// The consumer countersigned; queries may run.
    Finalized,
    /// Rejected or revoked; no query runs.
    Terminated,
}

/// One negotiation and, once agreed, its agreement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Negotiation {
    /// Chosen by the provider; also the agreement id.
    pub id: String,
    /// The state.
    pub state: NegotiationState,
    /// The consumer's signed request.
    pub request: SignedDocument<ContractRequest>,
    /// The provider-signed agreement, from `AGREED` on.
    pub agreement: Option<SignedDocument<Agreement>>,
    /// The consumer's countersignature, from `FINALIZED` on.
    pub acceptance: Option<SignedDocument<Acceptance>>,
    /// Why it was terminated.
    pub reason: Option<String>,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// Negotiations in a [`Store`].
pub struct Negotiations<'a> {
    store: &'a dyn Store,
}

impl<'a> Negotiations<'a> {
    /// The negotiations in `store`.
    pub fn new(store: &'a dyn Store) -> Self {
        Self { store }
    }

    /// The negotiation `id`.
    pub fn get(&self, id: &str) -> Result<Negotiation> {
        get_json(self.store, TREE, id)?.ok_or_else(|| Error::NotFound {
            what: "negotiation",
            id: id.to_owned(),
        })
    }

    /// The state of negotiation `id`, read without decoding its documents.
    pub fn state(&self, id: &str) -> Result<NegotiationState> {
        /// The one field of a stored negotiation that changes after it is
        /// agreed.
        #[derive(Deserialize)]
        struct StateOnly {
            state: NegotiationState,
        }
        let stored: Option<StateOnly> = get_json(self.store, TREE, id)?;
        stored.map(|s| s.state).ok_or_else(|| Error::NotFound {
            what: "negotiation",
            id: id.to_owned(),
        })
    }

    /// Saves a negotiation.
    pub fn save(&self, negotiation: &Negotiation) -> Result<()> {
        put_json(self.store, TREE, &negotiation.id, negotiation)
    }

    /// Every negotiation.
    pub fn list(&self) -> Result<Vec<Negotiation>> {
        scan_json(self.store, TREE)
    }
}

/// A negotiation step refused: the rule that refused it (its id goes into
/// the audit record) and the error for the caller.
#[derive(Debug)]
pub struct Refused {
    /// The rule: `signature`, `offer`, `policy_hash`, `consumer`,
    /// `purpose`, `validity`, `assignee`, `state` or `acceptance`.
    pub rule: &'static str,
    /// What the caller is told.
    pub error: Error,
}

impl Refused {
    /// A refusal by `rule`.
    pub fn new(rule: &'static str, error: Error) -> Self {
        Self { rule, error }
    }
}

/// Checks a verified contract request against the offer and the consumer's
/// credential: offer, policy hash, purpose, validity and assignee.
pub fn check_request(
    request: &ContractRequest,
    offer: &Offer,
    credential: &MembershipCredential,
    now: i64,
) -> Result<(), Refused> {
    if request.offer_id != offer.id || request.provider != offer.provider {
        return Err(forbidden(
            "offer",
            "the request names another offer or provider",
        ));
    }
    if request.policy_hash != offer.policy.content_hash() {
        return Err(forbidden(
            "policy_hash",
            "the request was made for another version of the offer's policy: fetch the offer again",
        ));
    }
    if request.consumer != credential.sub {
        return Err(forbidden("consumer", "the request is not the caller's"));
    }
    let policy = offer.policy.payload();
    if !policy.purposes.contains(&request.purpose) {
        return Err(Refused::new(
            "purpose",
            Error::Invalid {
                field: "purpose".into(),
                reason: format!(
                    "`{}` is not a purpose of the offer; allowed: {}",
                    request.purpose,
                    policy.purposes.join(", ")
                ),
            },
        ));
    }
    let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    if !policy.is_valid_at(at) {
        return Err(forbidden("validity", "the offer's policy is not in force"));
    }
    check_assignee(policy, &request.consumer, &credential.attribute_values())
}

fn check_assignee(
    policy: &UsagePolicy,
    consumer: &str,
    attributes: &BTreeMap<String, String>,
) -> Result<(), Refused> {
    let Some(assignee) = &policy.assignee else {
        return Ok(());
    };
    if !assignee.participants.is_empty() && !assignee.participants.iter().any(|p| p == consumer) {
        return Err(forbidden(
            "assignee",
            "the offer is not open to this participant",
        ));
    }
    for (name, allowed) in &assignee.attributes {
        let ok = attributes.get(name).is_some_and(|v| allowed.contains(v));
        if !ok {
            return Err(forbidden(
                "assignee",
                &format!(
                    "the offer requires the credential attribute `{name}` to be one of {}",
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Builds and signs the agreement for an accepted request.
pub fn sign_agreement(
    id: &str,
    request: &SignedDocument<ContractRequest>,
    offer: &Offer,
    key: &KeyPair,
    now: i64,
) -> Result<SignedDocument<Agreement>> {
    let r = request.payload();
    let agreement = Agreement {
        id: id.to_owned(),
        provider: offer.provider.clone(),
        consumer: r.consumer.clone(),
        offer_id: offer.id.clone(),
        dataset: offer.dataset.clone(),
        purpose: r.purpose.clone(),
        policy_hash: offer.policy.content_hash().to_owned(),
        policy: offer.policy.clone(),
        request: request.clone(),
        agreed_at: now,
    };
    Ok(SignedDocument::sign(
        agreement,
        DocumentKind::Agreement,
        key,
    )?)
}

/// Checks a consumer's acceptance of `agreement`.
pub fn check_acceptance(
    acceptance: &Acceptance,
    agreement: &SignedDocument<Agreement>,
    consumer: &str,
) -> Result<(), Refused> {
    if acceptance.agreement_id != agreement.payload().id
        || acceptance.agreement_hash != agreement.content_hash()
        || acceptance.consumer != consumer
        || agreement.payload().consumer != consumer
    {
        return Err(forbidden(
            "acceptance",
            "the acceptance does not match the agreement",
        ));
    }
    Ok(())
}

fn forbidden(rule: &'static str, why: &str) -> Refused {
    Refused::new(rule, Error::Forbidden(why.to_owned()))
}
