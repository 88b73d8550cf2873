//! The connector as a domain object: everything the HTTP API and the CLI
//! call, with no HTTP in it. Provider and consumer roles live in one binary.

use std::net::IpAddr;
use std::sync::Arc;

use policy::contract::Offer;
use policy::credential::{TrustedAuthority, verify_credential};
use policy::document::SignedDocument;
use policy::keys::KeyPair;
use policy::model::UsagePolicy;
use policy::replay::ReplayGuard;
use policy::token::{TokenVerifier, VerifiedCaller};

use crate::audit::{AuditEntry, AuditLog, RecordKind};
use crate::clock::Clock;
use crate::config::ConnectorConfig;
use crate::datasets::{
    Dataset, DatasetRegistry, DatasetSpec, check_dataset_id, describe_columns, resolve_under_roots,
};
use crate::engine::{ExecutionLimits, GovernedEngine, Plans};
use crate::offers::{Offers, sign_offer};
use crate::provider::{CheckOutcome, Provider, QueryAnswer, QueryRequest};
use crate::refusals::{AccessReason, RefusalLimiter, refusal_detail};
use crate::store::Store;
use crate::{Error, Result, tables};

/// What a connector is made of; [`crate::home::open`] makes them from a
/// home folder.
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
    /// The clock every request reads once.
    pub clock: Arc<dyn Clock>,
}

/// A participant's connector.
pub struct Connector {
    pub(crate) config: ConnectorConfig,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) key: Arc<KeyPair>,
    pub(crate) credential: String,
    pub(crate) verifier: Arc<TokenVerifier>,
    pub(crate) audit: Arc<AuditLog>,
    /// The provider's query pipeline.
    provider: Provider,
    pub(crate) clock: Arc<dyn Clock>,
    /// Serialises changes of a stored negotiation (load, change, save,
    /// audit), so that concurrent decisions cannot overwrite each other.
    pub(crate) transitions: tokio::sync::Mutex<()>,
    /// How many `access_refused` records may be written (see
    /// [`crate::refusals`]).
    refusals: RefusalLimiter,
    admin_token_hash: String,
}

impl Connector {
    /// A connector from its parts. Checks that the credential is ours and valid.
    pub fn new(parts: Parts) -> Result<Self> {
        let credential = verify_credential(
            &parts.credential,
            &parts.authority,
            parts.clock.unix(),
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
        let provider = Provider::new(
            &parts.config,
            Arc::clone(&parts.key),
            Arc::clone(&parts.store),
            Arc::clone(&parts.audit),
        )?;
        let refusals_per_sec = parts.config.refusal_records_per_sec;
        Ok(Self {
            config: parts.config,
            store: parts.store,
            key: parts.key,
            credential: parts.credential,
            verifier: Arc::new(verifier),
            audit: parts.audit,
            provider,
            clock: parts.clock,
            transitions: tokio::sync::Mutex::new(()),
            refusals: RefusalLimiter::new(refusals_per_sec),
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
        self.provider.engines().plans()
    }

    /// Queries charged to an agreement so far.
    pub fn queries_used(&self, agreement: &str) -> Result<u64> {
        self.provider.quota().used(agreement)
    }

    /// Runs a governed query for `caller` (see [`Provider::query`]), at
    /// the one reading of the clock this request makes. Every outcome is
    /// audited.
    pub async fn query(
        &self,
        caller: &VerifiedCaller,
        request: &QueryRequest,
    ) -> Result<QueryAnswer> {
        self.provider.query(caller, request, self.clock.now()).await
    }

    /// Dry run (see [`Provider::check`]): the decision and the enforced
    /// plan, without executing; audited.
    pub async fn check(
        &self,
        caller: &VerifiedCaller,
        request: &QueryRequest,
    ) -> Result<CheckOutcome> {
        self.provider.check(caller, request, self.clock.now()).await
    }

    /// Verifies a caller's request token and credential, sent from `peer`.
    /// The token's id is remembered (durably, in a home) before this
    /// returns; the work, a flush included, runs on a blocking thread. A
    /// refusal is audited ([`Self::refuse_access`]).
    pub async fn authenticate(
        &self,
        token: &str,
        credential: &str,
        peer: Option<IpAddr>,
    ) -> Result<VerifiedCaller> {
        let verifier = Arc::clone(&self.verifier);
        let (token, credential) = (token.to_owned(), credential.to_owned());
        let now = self.clock.unix();
        let verified =
            tokio::task::spawn_blocking(move || verifier.verify(&token, &credential, now))
                .await
                .map_err(|e| Error::Storage(format!("the token check did not finish: {e}")))?;
        match verified {
            Ok(caller) => Ok(caller),
            Err(error) => {
                self.refuse_access(AccessReason::of(&error), peer, None)
                    .await;
                Err(error.into())
            }
        }
    }

    /// Audits a request refused access for `reason`, from `peer` (and by
    /// `caller`, when verified), as an `access_refused` record, unless this
    /// reason has had its records for this second (then the refusal is
    /// counted, and the count goes into the next record). A failure to
    /// write is logged; the request is refused either way.
    pub async fn refuse_access(
        &self,
        reason: AccessReason,
        peer: Option<IpAddr>,
        caller: Option<&str>,
    ) {
        tracing::info!(reason = reason.id(), peer = ?peer, "access refused");
        let Some(suppressed) = self.refusals.admit(reason, std::time::Instant::now()) else {
            return;
        };
        let per_second = self.config.refusal_records_per_sec;
        let entry = AuditEntry::new(RecordKind::AccessRefused, self.id())
            .with_decision("refused")
            .with_rule(reason.id())
            .with_detail(refusal_detail(reason, peer, suppressed, per_second));
        let entry = match caller {
            Some(id) => entry.with_counterparty(id),
            None => entry,
        };
        if let Err(error) = self.record(entry).await {
            tracing::error!(
                reason = reason.id(),
                "an access refusal was not audited: {error}"
            );
        }
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
        let roots = &self.config.data_roots;
        let table = tables::open_table(probe.state(), &spec.id, &path, roots).await?;
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
            updated_at: self.clock.now(),
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
        let roots = &self.config.data_roots;
        let table = tables::open_table(probe.state(), dataset, &record.path, roots).await?;
        policy.validate_against_schema(&table.schema())?;
        let offer = sign_offer(
            offer_id,
            self.id(),
            dataset,
            policy,
            &self.config.public_url(),
            &self.key,
            self.clock.unix(),
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

    fn forget_engines(&self, dataset: &str) {
        self.provider.engines().forget(dataset);
    }

    /// Stops the audit writer (after the records already sent) and releases
    /// the stores, so the home can be opened again.
    pub async fn close(self) {
        let Self {
            audit, provider, ..
        } = self;
        // The provider holds the log too.
        drop(provider);
        if let Ok(audit) = Arc::try_unwrap(audit) {
            audit.close().await;
        }
    }
}
