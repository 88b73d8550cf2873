//! Contract negotiation, provider side, as [`Connector`] methods: a
//! consumer's signed request checked against the offer (and agreed at once
//! or left for the owner), the owner's decision, the consumer's
//! countersignature, revocation. Every step is audited, refusals too,
//! naming the rule that refused ([`Refused`]).

use policy::contract::{Acceptance, ContractRequest, Offer};
use policy::document::{DocumentKind, SignedDocument};
use policy::token::VerifiedCaller;

use crate::audit::bounded_text;
use crate::audit::{AuditEntry, RecordKind};
use crate::config::Approval;
use crate::negotiation::{self, Negotiation, NegotiationState, Negotiations, Refused};
use crate::service::Connector;
use crate::{Error, Result};

/// Longest message of a refusal kept in an audit record, in bytes.
const DETAIL_BYTES: usize = 1024;

impl Connector {
    /// Handles a consumer's signed contract request. A refusal is audited
    /// (`contract_requested`, decision `refused`, naming the rule).
    pub async fn request_contract(
        &self,
        caller: &VerifiedCaller,
        request_jws: &str,
    ) -> Result<Negotiation> {
        let (request, offer) = match self.admit_request(caller, request_jws) {
            Ok(admitted) => admitted,
            Err(refused) => {
                return Err(self
                    .audit_negotiation_refusal(RecordKind::ContractRequested, caller, None, refused)
                    .await);
            }
        };
        let mut n = Negotiation {
            id: policy::id::new_id("agr")?,
            state: NegotiationState::Requested,
            request,
            agreement: None,
            acceptance: None,
            reason: None,
            updated_at: self.clock.unix(),
        };
        if self.config.approval == Approval::Auto {
            self.agree(&mut n, offer.payload())?;
        }
        Negotiations::new(self.store.as_ref()).save(&n)?;
        let kind = if n.state == NegotiationState::Agreed {
            RecordKind::AgreementOffered
        } else {
            RecordKind::ContractRequested
        };
        self.record(negotiation_entry(kind, self.id(), &n)).await?;
        Ok(n)
    }

    /// The verified request and its offer, if the request satisfies the
    /// offer's policy; else the rule that refused it.
    fn admit_request(
        &self,
        caller: &VerifiedCaller,
        request_jws: &str,
    ) -> std::result::Result<(SignedDocument<ContractRequest>, SignedDocument<Offer>), Refused>
    {
        let request = SignedDocument::<ContractRequest>::verify(
            request_jws,
            DocumentKind::ContractRequest,
            Some(&caller.credential.jwk),
        )
        .map_err(|e| Refused::new("signature", e.into()))?;
        let offer = self
            .offer(&request.payload().offer_id)
            .map_err(|e| Refused::new("offer", e))?;
        negotiation::check_request(
            request.payload(),
            offer.payload(),
            &caller.credential,
            self.clock.unix(),
        )?;
        Ok((request, offer))
    }

    /// Writes the audit record of a refused negotiation step (`kind`,
    /// decision `refused`, the rule, the message bounded) and returns the
    /// error to send.
    async fn audit_negotiation_refusal(
        &self,
        kind: RecordKind,
        caller: &VerifiedCaller,
        negotiation: Option<&str>,
        refused: Refused,
    ) -> Error {
        let entry = AuditEntry::new(kind, self.id())
            .with_counterparty(caller.participant_id.clone())
            .with_decision("refused")
            .with_rule(refused.rule)
            .with_detail(bounded_text(&refused.error.to_string(), DETAIL_BYTES));
        let entry = match negotiation {
            Some(id) => entry.with_agreement(id),
            None => entry,
        };
        tracing::info!(consumer = %caller.participant_id, rule = refused.rule, "negotiation refused");
        match self.record(entry).await {
            Ok(_) => refused.error,
            Err(audit_error) => audit_error,
        }
    }

    /// Changes stored negotiation `id` under the transitions lock: `change`
    /// checks the current state, changes it and names the audit record;
    /// then the negotiation is saved and the record written.
    async fn transition(
        &self,
        id: &str,
        change: impl FnOnce(&mut Negotiation) -> Result<AuditEntry>,
    ) -> Result<Negotiation> {
        let _serial = self.transitions.lock().await;
        let store = Negotiations::new(self.store.as_ref());
        let mut n = store.get(id)?;
        let entry = change(&mut n)?;
        n.updated_at = self.clock.unix();
        store.save(&n)?;
        self.record(entry).await?;
        Ok(n)
    }

    /// Signs the agreement of `n` on `offer`: `n` becomes `AGREED`.
    fn agree(&self, n: &mut Negotiation, offer: &Offer) -> Result<()> {
        n.agreement = Some(negotiation::sign_agreement(
            &n.id,
            &n.request,
            offer,
            &self.key,
            self.clock.unix(),
        )?);
        n.state = NegotiationState::Agreed;
        Ok(())
    }

    /// The owner's decision on a `REQUESTED` negotiation.
    pub async fn decide(&self, id: &str, approve: bool) -> Result<Negotiation> {
        self.transition(id, |n| {
            if n.state != NegotiationState::Requested {
                return Err(Error::Conflict(format!(
                    "the negotiation `{id}` is not waiting for a decision"
                )));
            }
            let kind = if approve {
                let offer = self.offer(&n.request.payload().offer_id)?;
                self.agree(n, offer.payload())?;
                RecordKind::AgreementOffered
            } else {
                n.state = NegotiationState::Terminated;
                n.reason = Some("rejected by the provider".into());
                RecordKind::AgreementTerminated
            };
            let entry = negotiation_entry(kind, self.id(), n);
            Ok(if approve {
                entry
            } else {
                entry.with_rule("provider_decision")
            })
        })
        .await
    }

    /// A negotiation, as its consumer may see it.
    pub fn negotiation_for(&self, caller: &VerifiedCaller, id: &str) -> Result<Negotiation> {
        let n = Negotiations::new(self.store.as_ref()).get(id)?;
        if n.request.payload().consumer != caller.participant_id {
            return Err(Error::NotFound {
                what: "negotiation",
                id: id.to_owned(),
            });
        }
        Ok(n)
    }

    /// Every negotiation (owner).
    pub fn negotiations(&self) -> Result<Vec<Negotiation>> {
        Negotiations::new(self.store.as_ref()).list()
    }

    /// The consumer's countersignature: the agreement becomes `FINALIZED`.
    /// A refusal is audited (`agreement_finalized`, decision `refused`,
    /// naming the rule).
    pub async fn accept(
        &self,
        caller: &VerifiedCaller,
        id: &str,
        acceptance_jws: &str,
    ) -> Result<Negotiation> {
        // Only the negotiation's own consumer learns that it exists.
        if let Err(e) = self.negotiation_for(caller, id) {
            let refused = Refused::new("negotiation", e);
            return Err(self
                .audit_negotiation_refusal(RecordKind::AgreementFinalized, caller, None, refused)
                .await);
        }
        let acceptance = match SignedDocument::<Acceptance>::verify(
            acceptance_jws,
            DocumentKind::Acceptance,
            Some(&caller.credential.jwk),
        ) {
            Ok(acceptance) => acceptance,
            Err(e) => {
                let refused = Refused::new("signature", e.into());
                return Err(self
                    .audit_negotiation_refusal(
                        RecordKind::AgreementFinalized,
                        caller,
                        Some(id),
                        refused,
                    )
                    .await);
            }
        };
        let outcome = self
            .transition(id, |n| {
                let (NegotiationState::Agreed, Some(agreement)) = (n.state, &n.agreement) else {
                    return Err(Error::Conflict(format!(
                        "the negotiation `{id}` is not `AGREED`"
                    )));
                };
                if let Err(refused) = negotiation::check_acceptance(
                    acceptance.payload(),
                    agreement,
                    &caller.participant_id,
                ) {
                    return Err(Error::Forbidden(refused.error.to_string()));
                }
                n.acceptance = Some(acceptance);
                n.state = NegotiationState::Finalized;
                Ok(negotiation_entry(
                    RecordKind::AgreementFinalized,
                    self.id(),
                    n,
                ))
            })
            .await;
        match outcome {
            Err(e @ (Error::Conflict(_) | Error::Forbidden(_))) => {
                let rule = if matches!(e, Error::Conflict(_)) {
                    "state"
                } else {
                    "acceptance"
                };
                Err(self
                    .audit_negotiation_refusal(
                        RecordKind::AgreementFinalized,
                        caller,
                        Some(id),
                        Refused::new(rule, e),
                    )
                    .await)
            }
            other => other,
        }
    }

    /// Revokes an agreement: the very next query under it is refused.
    pub async fn revoke(&self, id: &str, reason: &str) -> Result<Negotiation> {
        self.transition(id, |n| {
            if n.state == NegotiationState::Terminated {
                return Err(Error::Conflict(format!(
                    "the agreement `{id}` is already terminated"
                )));
            }
            n.state = NegotiationState::Terminated;
            let reason = if reason.is_empty() {
                "revoked by the provider".to_owned()
            } else {
                reason.to_owned()
            };
            n.reason = Some(reason.clone());
            Ok(negotiation_entry(RecordKind::AgreementRevoked, self.id(), n).with_detail(reason))
        })
        .await
    }
}

fn negotiation_entry(kind: RecordKind, actor: &str, n: &Negotiation) -> AuditEntry {
    let r = n.request.payload();
    let entry = AuditEntry::new(kind, actor)
        .with_counterparty(r.consumer.clone())
        .with_agreement(n.id.clone())
        .with_purpose(r.purpose.clone())
        .with_decision(format!("{:?}", n.state).to_uppercase());
    match &n.agreement {
        Some(agreement) => entry.with_dataset(agreement.payload().dataset.clone()),
        None => entry,
    }
}
