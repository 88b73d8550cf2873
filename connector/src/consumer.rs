//! The consumer side: contract for an offer at a provider's connector, then
//! query under the agreement and keep the provider's signed receipts.

use std::time::Duration;

use hyper::Method;
use policy::contract::{Acceptance, Agreement, ContractRequest, Offer, Receipt};
use policy::credential::verify_credential;
use policy::document::{DocumentKind, SignedDocument, hash_bytes};
use policy::keys::PublicKey;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::answer::AnswerFormat;
use crate::audit::{AuditEntry, RecordKind};
use crate::client::PeerClient;
use crate::negotiation::NegotiationState;
use crate::service::Connector;
use crate::store::{get_json, put_json, scan_json};
use crate::{Error, Result};

const CONTRACTS: &str = "contracts";
const RECEIPTS: &str = "receipts";

/// An agreement as the consumer keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Contract {
    /// The agreement id.
    pub id: String,
    /// `VERIFIED` until the provider took the acceptance, then `FINALIZED`.
    pub state: NegotiationState,
    /// The provider's id.
    pub provider: String,
    /// The provider's connector.
    pub provider_url: String,
    /// The provider's key (from its verified credential).
    pub provider_key: PublicKey,
    /// The provider-signed agreement.
    pub agreement: SignedDocument<Agreement>,
    /// Our countersignature.
    pub acceptance: SignedDocument<Acceptance>,
}

/// The answer of a remote query, receipt verified.
#[derive(Debug, Clone)]
pub struct RemoteAnswer {
    /// The body as received (Arrow IPC stream or JSON).
    pub body: Vec<u8>,
    /// The receipt, verified against the provider's key.
    pub receipt: SignedDocument<Receipt>,
}

impl Connector {
    fn peer(&self) -> PeerClient {
        PeerClient::new(
            self.id(),
            self.credential(),
            std::sync::Arc::clone(&self.key),
        )
    }

    /// The provider's verified identity at `url`.
    async fn provider_identity(&self, url: &str) -> Result<(String, PublicKey)> {
        let identity = self.peer().get(&format!("{url}/identity")).await?.json()?;
        let credential = identity["credential"]
            .as_str()
            .ok_or_else(|| Error::Peer("no credential in the identity".into()))?;
        let verified = verify_credential(
            credential,
            &self.verifier.authority,
            self.clock.unix(),
            self.config.clock_skew_secs,
        )?;
        Ok((verified.sub, verified.jwk))
    }

    /// Contracts for offer `offer_id` at the provider `url` for `purpose`;
    /// waits up to `wait` for a manual decision. The steps: the provider's
    /// identity and its signed offer verified; our signed request sent;
    /// the agreement awaited and checked against the request; our
    /// countersignature sent; the contract kept and audited.
    pub async fn negotiate(
        &self,
        url: &str,
        offer_id: &str,
        purpose: &str,
        wait: Duration,
    ) -> Result<Contract> {
        let url = url.trim_end_matches('/');
        let (provider, provider_key) = self.provider_identity(url).await?;
        let offer = self
            .fetch_offer(url, offer_id, &provider, &provider_key)
            .await?;
        let request = ContractRequest {
            id: policy::id::new_id("req")?,
            consumer: self.id().to_owned(),
            provider: provider.clone(),
            offer_id: offer_id.to_owned(),
            policy_hash: offer.payload().policy.content_hash().to_owned(),
            purpose: purpose.to_owned(),
            requested_at: self.clock.unix(),
        };
        let request = SignedDocument::sign(request, DocumentKind::ContractRequest, &self.key)?;
        let (id, agreement_jws) = self
            .request_agreement(url, &provider, &request, wait)
            .await?;
        let agreement = SignedDocument::<Agreement>::verify(
            &agreement_jws,
            DocumentKind::Agreement,
            Some(&provider_key),
        )?;
        let a = agreement.payload();
        if a.consumer != self.id()
            || a.request.jws() != request.jws()
            || a.policy_hash != request.payload().policy_hash
            || a.id != id
        {
            return Err(Error::Forbidden(
                "the agreement does not match our request".into(),
            ));
        }
        let acceptance = Acceptance {
            agreement_id: id.clone(),
            agreement_hash: agreement.content_hash().to_owned(),
            consumer: self.id().to_owned(),
            accepted_at: self.clock.unix(),
        };
        let contract = Contract {
            id,
            state: NegotiationState::Verified,
            provider,
            provider_url: url.to_owned(),
            provider_key,
            agreement,
            acceptance: SignedDocument::sign(acceptance, DocumentKind::Acceptance, &self.key)?,
        };
        self.finalize(contract, purpose).await
    }

    /// The offer `offer_id` of `provider` at `url`, its signature and its
    /// policy's checked to be the provider's own.
    async fn fetch_offer(
        &self,
        url: &str,
        offer_id: &str,
        provider: &str,
        provider_key: &PublicKey,
    ) -> Result<SignedDocument<Offer>> {
        let reply = self
            .peer()
            .get(&format!("{url}/offers/{offer_id}"))
            .await?
            .json()?;
        let offer_jws = reply["offer"]
            .as_str()
            .ok_or_else(|| Error::Peer("no offer in the answer".into()))?;
        let offer =
            SignedDocument::<Offer>::verify(offer_jws, DocumentKind::Offer, Some(provider_key))?;
        if offer.payload().provider != provider || offer.payload().policy.signer() != *provider_key
        {
            return Err(Error::Forbidden(
                "the offer is not the provider's own".into(),
            ));
        }
        Ok(offer)
    }

    /// Sends our signed `request` and waits up to `wait` while it is
    /// `REQUESTED`; returns the negotiation id and the agreement (JWS).
    async fn request_agreement(
        &self,
        url: &str,
        provider: &str,
        request: &SignedDocument<ContractRequest>,
        wait: Duration,
    ) -> Result<(String, String)> {
        let body = json!({ "request": request.jws() });
        let peer = self.peer();
        let created = format!("{url}/dsp/negotiations");
        let mut state = peer
            .call(Method::POST, &created, provider, Some(&body))
            .await?
            .json()?;
        let id = state["id"].as_str().unwrap_or_default().to_owned();
        let deadline = std::time::Instant::now() + wait;
        let status = format!("{url}/dsp/negotiations/{id}");
        while state["state"] == "REQUESTED" && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            state = peer
                .call(Method::GET, &status, provider, None)
                .await?
                .json()?;
        }
        let Some(agreement_jws) = state["agreement"].as_str() else {
            return Err(Error::Conflict(format!(
                "the negotiation `{id}` is {} ({})",
                state["state"], state["reason"]
            )));
        };
        Ok((id, agreement_jws.to_owned()))
    }

    /// Keeps the verified `contract`, sends our countersignature, and once
    /// the provider says `FINALIZED` keeps it so and audits it.
    async fn finalize(&self, mut contract: Contract, purpose: &str) -> Result<Contract> {
        let id = contract.id.clone();
        put_json(self.store.as_ref(), CONTRACTS, &id, &contract)?;
        let body = json!({ "acceptance": contract.acceptance.jws() });
        let url = format!("{}/dsp/negotiations/{id}/acceptance", contract.provider_url);
        let done = self
            .peer()
            .call(Method::POST, &url, &contract.provider, Some(&body))
            .await?
            .json()?;
        if done["state"] != "FINALIZED" {
            return Err(Error::Peer(format!(
                "the provider left the agreement in state {}",
                done["state"]
            )));
        }
        contract.state = NegotiationState::Finalized;
        put_json(self.store.as_ref(), CONTRACTS, &id, &contract)?;
        let entry = AuditEntry::new(RecordKind::AgreementFinalized, self.id())
            .with_counterparty(contract.provider.clone())
            .with_agreement(id)
            .with_purpose(purpose.to_owned())
            .with_dataset(contract.agreement.payload().dataset.clone())
            .with_decision("FINALIZED".to_owned());
        self.record(entry).await?;
        Ok(contract)
    }

    /// The contracts this participant holds as a consumer.
    pub fn contracts(&self) -> Result<Vec<Contract>> {
        scan_json(self.store.as_ref(), CONTRACTS)
    }

    /// One contract.
    pub fn contract(&self, id: &str) -> Result<Contract> {
        get_json(self.store.as_ref(), CONTRACTS, id)?.ok_or_else(|| Error::NotFound {
            what: "agreement",
            id: id.to_owned(),
        })
    }

    /// Queries the provider under agreement `id`; verifies and keeps the receipt.
    pub async fn query_remote(
        &self,
        id: &str,
        sql: &str,
        format: AnswerFormat,
    ) -> Result<RemoteAnswer> {
        let contract = self.contract(id)?;
        let body = json!({ "agreement": contract.agreement.jws(), "sql": sql, "format": format });
        let reply = self
            .peer()
            .call(
                Method::POST,
                &format!("{}/query", contract.provider_url),
                &contract.provider,
                Some(&body),
            )
            .await?;
        if !reply.status.is_success() {
            return Err(reply
                .json()
                .err()
                .unwrap_or_else(|| Error::Peer(format!("answered {}", reply.status))));
        }
        let receipt_jws = reply
            .header(crate::api::RECEIPT_HEADER)
            .ok_or_else(|| Error::Peer("the answer has no receipt".into()))?;
        let receipt = SignedDocument::<Receipt>::verify(
            receipt_jws,
            DocumentKind::Receipt,
            Some(&contract.provider_key),
        )?;
        let r = receipt.payload();
        if r.agreement_id != id
            || r.sql_hash != hash_bytes(sql.as_bytes())
            || r.result_hash != hash_bytes(&reply.body)
        {
            return Err(Error::Forbidden(
                "the receipt does not match the query or its answer".into(),
            ));
        }
        put_json(
            self.store.as_ref(),
            RECEIPTS,
            &format!("{id}/{:020}", r.audit_seq),
            &receipt,
        )?;
        Ok(RemoteAnswer {
            body: reply.body.to_vec(),
            receipt,
        })
    }

    /// Every receipt kept, for every agreement.
    pub fn all_receipts(&self) -> Result<Vec<SignedDocument<Receipt>>> {
        scan_json(self.store.as_ref(), RECEIPTS)
    }

    /// The receipts kept for agreement `id`.
    pub fn receipts(&self, id: &str) -> Result<Vec<SignedDocument<Receipt>>> {
        let all: Vec<SignedDocument<Receipt>> = scan_json(self.store.as_ref(), RECEIPTS)?;
        Ok(all
            .into_iter()
            .filter(|r| r.payload().agreement_id == id)
            .collect())
    }
}
