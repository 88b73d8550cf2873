//! The connector as a domain object: everything the HTTP API and the CLI
//! call, with no HTTP in it. Provider and consumer roles live in one binary.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use policy::contract::{Acceptance, Agreement, ContractRequest, Offer};
use policy::credential::{TrustedAuthority, verify_credential};
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::KeyPair;
use policy::memo::Memo;
use policy::model::UsagePolicy;
use policy::replay::ReplayGuard;
use policy::token::{TokenVerifier, VerifiedCaller};

use crate::audit::{AuditEntry, AuditLog, RecordKind};
use crate::config::{Approval, ConnectorConfig};
use crate::datasets::{
    Dataset, DatasetRegistry, DatasetSpec, check_dataset_id, describe_columns, resolve_under_roots,
};
use crate::engine::{ExecutionLimits, GovernedEngine, Plans};
use crate::negotiation::{self, Negotiation, NegotiationState, Negotiations};
use crate::offers::{Offers, sign_offer};
use crate::store::Store;
use crate::{Error, Result, tables};

/// What a connector is made of; see [`Connector::open`] for the home layout.
pub struct Parts {
    /// The configuration.
    pub config: ConnectorConfig,
    /// Datasets, offers, negotiations.
    pub store: Arc<dyn Store>,
    /// Where used request-token ids are remembered until they expire
    /// (durable in a home: [`crate::replay::SledReplayGuard`]).
    pub replay: Arc<dyn ReplayGuard>,
    /// The participant's signing key.
    pub key: Arc<KeyPair>,
    /// The participant's membership credential (JWS).
    pub credential: String,
    /// The authority whose credentials are trusted.
    pub authority: TrustedAuthority,
    /// The audit log.
    pub audit: Arc<AuditLog>,
    /// SHA-256 of the owner's admin token.
    pub admin_token_hash: String,
}

/// A participant's connector.
pub struct Connector {
    pub(crate) config: ConnectorConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) key: Arc<KeyPair>,
    pub(crate) credential: String,
    pub(crate) verifier: Arc<TokenVerifier>,
    pub(crate) audit: Arc<AuditLog>,
    pub(crate) engines: Mutex<HashMap<String, Arc<GovernedEngine>>>,
    /// The prepared plans of every engine, within `plan_cache_bytes`.
    pub(crate) plans: Arc<Plans>,
    /// Agreements whose signature verified and that match the one on
    /// record, by their JWS: an agreement never changes once signed, so
    /// its verification is done once. Whether it is still in force is read
    /// from the store on every query.
    pub(crate) agreements: Memo<Arc<Agreement>>,
    /// Datasets held in memory (`memory_table_bytes`), by id.
    pub(crate) memory_tables: Mutex<HashMap<String, Arc<dyn datafusion::catalog::TableProvider>>>,
    /// Queries charged per agreement, rebuilt from the audit log at start.
    pub(crate) quota: Mutex<HashMap<String, u64>>,
    /// Serialises changes of a stored negotiation (load, change, save,
    /// audit), so that concurrent decisions cannot overwrite each other.
    transitions: tokio::sync::Mutex<()>,
    admin_token_hash: String,
}

/// Most verified agreements remembered; past it the memory starts over.
const AGREEMENTS_KEPT: usize = 4096;

/// Current unix time in seconds.
pub fn now() -> i64 {
    Utc::now().timestamp()
}

impl Connector {
    /// A connector from its parts. Checks that the credential is ours and valid.
    pub fn new(parts: Parts) -> Result<Self> {
        let credential = verify_credential(
            &parts.credential,
            &parts.authority,
            now(),
            parts.config.clock_skew_secs,
        )?;
        if credential.sub != parts.config.id || credential.jwk != parts.key.public_key() {
            return Err(Error::Invalid {
                field: "credential".into(),
                reason: format!(
                    "the credential belongs to `{}` or another key, not to this connector `{}`",
                    credential.sub, parts.config.id
                ),
            });
        }
        let mut verifier =
            TokenVerifier::new(parts.authority, parts.config.id.clone(), parts.replay);
        verifier.skew_secs = parts.config.clock_skew_secs;
        let quota = Mutex::new(crate::query::charges_in(parts.audit.store().as_ref())?);
        let plans = Arc::new(Plans::new(parts.config.plan_cache_bytes));
        Ok(Self {
            config: parts.config,
            store: parts.store,
            key: parts.key,
            credential: parts.credential,
            verifier: Arc::new(verifier),
            audit: parts.audit,
            engines: Mutex::new(HashMap::new()),
            plans,
            agreements: Memo::new(AGREEMENTS_KEPT),
            memory_tables: Mutex::new(HashMap::new()),
            quota,
            transitions: tokio::sync::Mutex::new(()),
            admin_token_hash: parts.admin_token_hash,
        })
    }

    /// This participant's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// The configuration.
    pub fn config(&self) -> &ConnectorConfig {
        &self.config
    }

    /// This participant's membership credential (JWS).
    pub fn credential(&self) -> &str {
        &self.credential
    }

    /// The signing key.
    pub fn key(&self) -> &KeyPair {
        &self.key
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The prepared plans kept for repeated queries, of every dataset.
    pub fn plans(&self) -> &Plans {
        &self.plans
    }

    /// Verifies a caller's request token and credential. The token's id
    /// is remembered (durably, in a home) before this returns; the work,
    /// a flush included, runs on a blocking thread.
    pub async fn authenticate(&self, token: &str, credential: &str) -> Result<VerifiedCaller> {
        let verifier = Arc::clone(&self.verifier);
        let (token, credential) = (token.to_owned(), credential.to_owned());
        tokio::task::spawn_blocking(move || verifier.verify(&token, &credential, now()))
            .await
            .map_err(|e| Error::Storage(format!("the token check did not finish: {e}")))?
            .map_err(Error::from)
    }

    /// Whether `token` is the owner's admin token.
    pub fn is_admin(&self, token: &str) -> bool {
        policy::document::hash_bytes(token.as_bytes()) == self.admin_token_hash
    }

    /// Writes an audit record; durable when it returns.
    pub async fn record(&self, entry: AuditEntry) -> Result<crate::audit::AuditRecord> {
        Ok(self.audit.append(entry).await?)
    }

    // ---------------- datasets and offers (owner) ----------------

    /// Registers (or updates) a dataset that lies under a data root.
    pub async fn register_dataset(&self, spec: DatasetSpec) -> Result<Dataset> {
        check_dataset_id(&spec.id)?;
        let path = resolve_under_roots(&spec.path, &self.config.data_roots)?;
        let probe = GovernedEngine::new(ExecutionLimits::default())?;
        let table = tables::open_table(probe.state(), &spec.id, &path).await?;
        let rows = tables::count_rows(probe.state(), Arc::clone(&table)).await?;
        let dataset = Dataset {
            title: if spec.title.is_empty() {
                spec.id.clone()
            } else {
                spec.title
            },
            id: spec.id,
            path,
            description: spec.description,
            keywords: spec.keywords,
            sector: spec.sector,
            columns: describe_columns(&table.schema()),
            rows,
            updated_at: Utc::now(),
        };
        DatasetRegistry::new(self.store.as_ref()).save(&dataset)?;
        self.forget_engines(&dataset.id);
        Ok(dataset)
    }

    /// Every registered dataset.
    pub fn datasets(&self) -> Result<Vec<Dataset>> {
        DatasetRegistry::new(self.store.as_ref()).list()
    }

    /// Removes a dataset and its offers.
    pub fn remove_dataset(&self, id: &str) -> Result<()> {
        DatasetRegistry::new(self.store.as_ref()).remove(id)?;
        let offers = Offers::new(self.store.as_ref());
        for offer in offers.list()? {
            if offer.payload().dataset == id {
                offers.remove(&offer.payload().id)?;
            }
        }
        self.forget_engines(id);
        Ok(())
    }

    /// Signs and stores an offer of dataset `dataset` under `policy`.
    pub async fn create_offer(
        &self,
        offer_id: &str,
        dataset: &str,
        policy: UsagePolicy,
    ) -> Result<SignedDocument<Offer>> {
        check_dataset_id(offer_id).map_err(|_| Error::Invalid {
            field: "offer_id".into(),
            reason: format!("`{offer_id}` must be lower-case letters, digits or `_`"),
        })?;
        let record = DatasetRegistry::new(self.store.as_ref()).get(dataset)?;
        let probe = GovernedEngine::new(ExecutionLimits::default())?;
        let table = tables::open_table(probe.state(), dataset, &record.path).await?;
        policy.validate_against_schema(&table.schema())?;
        let offer = sign_offer(
            offer_id,
            self.id(),
            dataset,
            policy,
            &self.config.public_url(),
            &self.key,
            now(),
        )?;
        Offers::new(self.store.as_ref()).save(&offer)?;
        Ok(offer)
    }

    /// Every offer.
    pub fn offers(&self) -> Result<Vec<SignedDocument<Offer>>> {
        Offers::new(self.store.as_ref()).list()
    }

    /// The offer `id`.
    pub fn offer(&self, id: &str) -> Result<SignedDocument<Offer>> {
        Offers::new(self.store.as_ref()).get(id)
    }

    // ---------------- negotiation (provider side) ----------------

    /// Handles a consumer's signed contract request.
    pub async fn request_contract(
        &self,
        caller: &VerifiedCaller,
        request_jws: &str,
    ) -> Result<Negotiation> {
        let request = SignedDocument::<ContractRequest>::verify(
            request_jws,
            DocumentKind::ContractRequest,
            Some(&caller.credential.jwk),
        )?;
        let offer = self.offer(&request.payload().offer_id)?;
        negotiation::check_request(
            request.payload(),
            offer.payload(),
            &caller.credential,
            now(),
        )?;
        let mut n = Negotiation {
            id: negotiation::new_id("agr"),
            state: NegotiationState::Requested,
            request,
            agreement: None,
            acceptance: None,
            reason: None,
            updated_at: now(),
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
        n.updated_at = now();
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
            now(),
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
            Ok(negotiation_entry(kind, self.id(), n))
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
    pub async fn accept(
        &self,
        caller: &VerifiedCaller,
        id: &str,
        acceptance_jws: &str,
    ) -> Result<Negotiation> {
        // Only the negotiation's own consumer learns that it exists.
        self.negotiation_for(caller, id)?;
        let acceptance = SignedDocument::<Acceptance>::verify(
            acceptance_jws,
            DocumentKind::Acceptance,
            Some(&caller.credential.jwk),
        )?;
        self.transition(id, |n| {
            let (NegotiationState::Agreed, Some(agreement)) = (n.state, &n.agreement) else {
                return Err(Error::Conflict(format!(
                    "the negotiation `{id}` is not `AGREED`"
                )));
            };
            negotiation::check_acceptance(acceptance.payload(), agreement, &caller.participant_id)?;
            n.acceptance = Some(acceptance);
            n.state = NegotiationState::Finalized;
            Ok(negotiation_entry(
                RecordKind::AgreementFinalized,
                self.id(),
                n,
            ))
        })
        .await
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

    pub(crate) fn forget_engines(&self, dataset: &str) {
        if let Ok(mut engines) = self.engines.lock() {
            engines.retain(|key, _| !key.starts_with(&format!("{dataset}|")));
        }
        if let Ok(mut tables) = self.memory_tables.lock() {
            tables.remove(dataset);
        }
    }

    /// Stops the audit writer (after the records already sent) and releases
    /// the stores, so the home can be opened again.
    pub async fn close(self) {
        if let Ok(audit) = Arc::try_unwrap(self.audit) {
            audit.close().await;
        }
    }

    /// Opens the connector of a home folder; see [`crate::home`].
    pub fn open(home: &Path) -> Result<Self> {
        crate::home::open(home)
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
