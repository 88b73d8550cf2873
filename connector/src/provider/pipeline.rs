//! A governed query under an agreement, provider side, in one straight
//! line: the agreement admitted, one query charged (durably, before it
//! runs), the SQL enforced and executed under limits, the answer encoded,
//! the audit record durable, the receipt signed. Every outcome is audited,
//! an answer before it is sent. A dry run ([`Provider::check`]) takes the
//! same admission and planning, without the charge and the execution.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use policy::contract::{Agreement, Receipt};
use policy::document::{DocumentKind, SignedDocument, hash_bytes};
use policy::enforce::Refusal;
use policy::keys::KeyPair;
use policy::token::VerifiedCaller;
use serde::{Deserialize, Serialize};

use super::admission::{Admission, in_force};
use super::engines::Engines;
use super::quota::Quota;
use crate::answer::{AnswerFormat, to_arrow_stream, to_json_rows};
use crate::audit::{AuditEntry, AuditLog, AuditRecord, RecordKind, audit_sql};
use crate::config::ConnectorConfig;
use crate::engine::GovernedEngine;
use crate::store::Store;
use crate::{Error, Result};

/// A consumer's query.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    /// The provider-signed agreement (JWS) the query runs under.
    pub agreement: String,
    /// One `SELECT`.
    pub sql: String,
    /// `arrow` (default) or `json`.
    #[serde(default)]
    pub format: AnswerFormat,
}

/// The answer to a governed query.
#[derive(Debug, Clone)]
pub struct QueryAnswer {
    /// The encoded result.
    pub body: Vec<u8>,
    /// Its format.
    pub format: AnswerFormat,
    /// Rows in the result.
    pub rows: u64,
    /// The signed receipt (JWS).
    pub receipt: String,
}

/// A dry run's outcome.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    /// `accepted` or `refused`.
    pub decision: String,
    /// The refusal's rule id.
    pub rule: Option<String>,
    /// The refusal's reason.
    pub reason: Option<String>,
    /// The enforced plan, when accepted.
    pub plan: Option<String>,
}

/// The provider's side of governed queries: what every request needs.
pub struct Provider {
    id: String,
    key: Arc<KeyPair>,
    store: Arc<dyn Store>,
    audit: Arc<AuditLog>,
    admission: Admission,
    quota: Quota,
    engines: Engines,
    audit_sql_bytes: usize,
}

/// A query admitted under its agreement, with the engine of its dataset.
type Admitted = (Arc<Agreement>, Arc<GovernedEngine>);

impl Provider {
    /// The provider of connector `config`, signing with `key`, reading
    /// negotiations and datasets from `store`, auditing to `audit` (whose
    /// `quota_charged` records give the queries charged so far).
    pub fn new(
        config: &ConnectorConfig,
        key: Arc<KeyPair>,
        store: Arc<dyn Store>,
        audit: Arc<AuditLog>,
    ) -> Result<Self> {
        Ok(Self {
            id: config.id.clone(),
            admission: Admission::new(key.public_key()),
            quota: Quota::from_log(audit.store().as_ref())?,
            engines: Engines::new(config),
            audit_sql_bytes: config.audit_sql_bytes,
            key,
            store,
            audit,
        })
    }

    /// The engines, by dataset and policy.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The queries charged per agreement.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Runs a governed query for `caller` at `now` (the request's one
    /// reading of the clock). Every outcome is audited.
    pub async fn query(
        &self,
        caller: &VerifiedCaller,
        request: &QueryRequest,
        now: DateTime<Utc>,
    ) -> Result<QueryAnswer> {
        let started = Instant::now();
        let base = self.query_entry(RecordKind::QueryRefused, caller, &request.sql);
        let (admitted, base) = self.admitted(caller, &request.agreement, base, now).await;
        let (agreement, engine) = match admitted {
            Ok(admitted) => admitted,
            Err(e) => return Err(self.not_answered(base, e, started).await),
        };
        if let Err(e) = self.charge(&base, &agreement).await {
            return Err(self.not_answered(base, e, started).await);
        }
        let answer = match engine.query(&request.sql, now).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.not_answered(base, e, started).await),
        };
        let body = match request.format {
            AnswerFormat::Arrow => to_arrow_stream(&answer.schema(), &answer.batches)?,
            AnswerFormat::Json => to_json_rows(&answer.batches)?,
        };
        let rows = u64::try_from(answer.rows).unwrap_or(u64::MAX);
        let result_hash = hash_bytes(&body);
        let entry = retitle(base, RecordKind::QueryAnswered)
            .with_decision("answered")
            .with_rows(rows)
            .with_bytes(body.len() as u64)
            .with_duration_ms(elapsed_ms(started))
            .with_result_hash(result_hash.clone());
        let record = self.audit.append(entry).await?;
        let receipt = self.receipt(&agreement, caller, &record, now)?;
        tracing::info!(agreement = %agreement.id, consumer = %caller.participant_id, rows, audit_seq = record.seq, "query answered");
        Ok(QueryAnswer {
            body,
            format: request.format,
            rows,
            receipt,
        })
    }

    /// Dry run at `now`: the decision and the enforced plan, without
    /// executing. Every outcome is audited (`query_checked`, with the
    /// decision).
    pub async fn check(
        &self,
        caller: &VerifiedCaller,
        request: &QueryRequest,
        now: DateTime<Utc>,
    ) -> Result<CheckOutcome> {
        let base = self.query_entry(RecordKind::QueryChecked, caller, &request.sql);
        let (admitted, base) = self.admitted(caller, &request.agreement, base, now).await;
        let outcome = match admitted {
            Ok((_, engine)) => match engine.plan(&request.sql, now).await {
                Ok(checked) => Ok(CheckOutcome {
                    decision: "accepted".into(),
                    rule: None,
                    reason: None,
                    plan: Some(checked.enforced.plan.display_indent().to_string()),
                }),
                Err(Error::Refused(r)) => Ok(refused_outcome(r)),
                Err(other) => Err(other),
            },
            Err(e) => Err(e),
        };
        let entry = match &outcome {
            Ok(o) => match (&o.rule, &o.reason) {
                (Some(rule), Some(reason)) => base
                    .with_decision(o.decision.clone())
                    .with_rule(rule.clone())
                    .with_detail(reason.clone()),
                _ => base.with_decision(o.decision.clone()),
            },
            Err(e) => outcome_entry(base, e),
        };
        self.audit.append(entry).await?;
        outcome
    }

    /// The agreement `agreement_jws` presented by `caller`, verified and
    /// in force at `now`, with its engine; and `base` with what was learnt
    /// of the agreement (dataset, id, purpose), for the audit record of the
    /// outcome either way. The one admission step of a query and of a dry
    /// run.
    async fn admitted(
        &self,
        caller: &VerifiedCaller,
        agreement_jws: &str,
        base: AuditEntry,
        now: DateTime<Utc>,
    ) -> (Result<Admitted>, AuditEntry) {
        let presented = self
            .admission
            .presented(self.store.as_ref(), caller, agreement_jws);
        let (agreement, state) = match presented {
            Ok(presented) => presented,
            Err(e) => return (Err(e), base),
        };
        let base = base
            .with_dataset(agreement.dataset.clone())
            .with_agreement(agreement.id.clone())
            .with_purpose(agreement.purpose.clone());
        if let Err(e) = in_force(&agreement, state, now) {
            return (Err(e), base);
        }
        let engine = self
            .engines
            .for_agreement(self.store.as_ref(), &agreement)
            .await;
        (engine.map(|engine| (agreement, engine)), base)
    }

    /// Charges one query to the agreement (see [`Quota::charge`]) and makes
    /// the charge durable in the audit log (a `quota_charged` record,
    /// group-committed) before the query runs.
    async fn charge(&self, base: &AuditEntry, agreement: &Agreement) -> Result<u64> {
        let max = agreement.policy.payload().max_queries();
        let used = self.quota.charge(&agreement.id, max)?;
        let limit = max.map_or_else(|| "unlimited".to_owned(), |m| m.to_string());
        let entry = retitle(base.clone(), RecordKind::QuotaCharged)
            .with_decision("charged")
            .with_detail(format!("query {used} of {limit}"));
        self.audit.append(entry).await?;
        Ok(used)
    }

    /// The signed receipt (JWS) of a query answered at `now`, from its
    /// durable audit `record`: the hashes of the SQL and of the answer, its
    /// size, and where the record stands in the log.
    fn receipt(
        &self,
        agreement: &Agreement,
        caller: &VerifiedCaller,
        record: &AuditRecord,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let receipt = Receipt {
            agreement_id: agreement.id.clone(),
            provider: self.id.clone(),
            consumer: caller.participant_id.clone(),
            sql_hash: record.sql_hash.clone().unwrap_or_default(),
            result_hash: record.result_hash.clone().unwrap_or_default(),
            rows: record.rows.unwrap_or_default(),
            bytes: record.bytes.unwrap_or_default(),
            at: now.timestamp(),
            audit_seq: record.seq,
            audit_hash: record.hash.clone(),
            checkpoint: self.audit.latest_checkpoint(),
        };
        let receipt = SignedDocument::sign(receipt, DocumentKind::Receipt, &self.key)?;
        Ok(receipt.jws().to_owned())
    }

    /// Writes the audit record of a query that did not get an answer and
    /// returns the error to send (the audit's own, when that write fails).
    async fn not_answered(&self, base: AuditEntry, error: Error, started: Instant) -> Error {
        let base = match &error {
            Error::Execution { .. } => retitle(base, RecordKind::QueryFailed),
            _ => base,
        };
        let entry = outcome_entry(base, &error).with_duration_ms(elapsed_ms(started));
        tracing::info!(consumer = %entry.counterparty.as_deref().unwrap_or("?"), decision = ?entry.decision, rule = ?entry.rule, "query not answered");
        match self.audit.append(entry).await {
            Ok(_) => error,
            Err(audit_error) => audit_error.into(),
        }
    }

    /// The start of a query's audit records: the caller and the SQL as
    /// [`audit_sql`] bounds it.
    fn query_entry(&self, kind: RecordKind, caller: &VerifiedCaller, sql: &str) -> AuditEntry {
        audit_sql(
            AuditEntry::new(kind, &self.id).with_counterparty(caller.participant_id.clone()),
            sql,
            self.audit_sql_bytes,
        )
    }
}

/// `base` with the decision a query's error stands for: `failed` with the
/// error id for an execution error, else `refused` with the rule when
/// there is one.
fn outcome_entry(base: AuditEntry, error: &Error) -> AuditEntry {
    match error {
        Error::Refused(r) => base
            .with_decision("refused")
            .with_rule(r.rule.id())
            .with_detail(r.message.clone()),
        Error::Execution { id } => base
            .with_decision("failed")
            .with_detail(format!("error id {id}")),
        other => base.with_decision("refused").with_detail(other.to_string()),
    }
}

fn refused_outcome(r: Refusal) -> CheckOutcome {
    CheckOutcome {
        decision: "refused".into(),
        rule: Some(r.rule.id().to_owned()),
        reason: Some(r.message),
        plan: None,
    }
}

/// The entry with another kind.
fn retitle(mut entry: AuditEntry, kind: RecordKind) -> AuditEntry {
    entry.kind = kind;
    entry
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}
