//! A governed query under an agreement, provider side: agreement signatures,
//! state, validity and purpose checked; quota charged atomically; policy
//! enforced; executed under limits; answer encoded; receipt signed; audit
//! record durable before the reply.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use policy::contract::{Agreement, Receipt};
use policy::document::{DocumentKind, SignedDocument, hash_bytes};
use policy::enforce::{Refusal, Rule};
use policy::token::VerifiedCaller;
use serde::{Deserialize, Serialize};

use crate::answer::{AnswerFormat, to_arrow_stream, to_json_rows};
use crate::audit::{AuditEntry, AuditStore, RecordKind};
use crate::datasets::DatasetRegistry;
use crate::engine::{ExecutionLimits, GovernedEngine};
use crate::negotiation::{NegotiationState, Negotiations};
use crate::service::{Connector, now};
use crate::{Error, Result, tables};

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

impl Connector {
    /// Verifies the agreement presented by `caller`: our signature, its
    /// consumer, and that it is the one on record; returns it with its
    /// negotiation's state. Whether it is still in force is
    /// [`Self::admit`]'s check. The signature and record checks are done
    /// once per agreement (`Connector::agreements`); the consumer and
    /// the state are checked on every call.
    fn presented_agreement(
        &self,
        caller: &VerifiedCaller,
        agreement_jws: &str,
    ) -> Result<(Arc<Agreement>, NegotiationState)> {
        let agreement = match self.agreements.get(agreement_jws) {
            Some(agreement) => agreement,
            None => self.verify_agreement(agreement_jws)?,
        };
        if agreement.consumer != caller.participant_id {
            return Err(Error::Forbidden(
                "the agreement belongs to another participant".into(),
            ));
        }
        let state = Negotiations::new(self.store.as_ref()).state(&agreement.id)?;
        Ok((agreement, state))
    }

    /// Checks our signature on an agreement and that it is the one on
    /// record, and remembers it.
    fn verify_agreement(&self, agreement_jws: &str) -> Result<Arc<Agreement>> {
        let signed = SignedDocument::<Agreement>::verify(
            agreement_jws,
            DocumentKind::Agreement,
            Some(&self.key.public_key()),
        )?;
        let agreement = Arc::new(signed.payload().clone());
        let n = Negotiations::new(self.store.as_ref()).get(&agreement.id)?;
        let stored = n.agreement.as_ref().map(SignedDocument::jws);
        if stored != Some(signed.jws()) {
            return Err(Error::Forbidden(
                "the agreement does not match the one on record".into(),
            ));
        }
        self.agreements
            .insert(agreement_jws, Arc::clone(&agreement));
        Ok(agreement)
    }

    /// The agreement `agreement_jws` presented by `caller`, verified and
    /// admitted (see [`Self::admit`]), with its engine; and `base` with what
    /// was learnt of the agreement (dataset, id, purpose), for the audit
    /// record of the outcome either way. The one admission step of a query
    /// and of a dry run.
    async fn admitted(
        &self,
        caller: &VerifiedCaller,
        agreement_jws: &str,
        base: AuditEntry,
    ) -> (Result<(Arc<Agreement>, Arc<GovernedEngine>)>, AuditEntry) {
        let (agreement, state) = match self.presented_agreement(caller, agreement_jws) {
            Ok(presented) => presented,
            Err(e) => return (Err(e), base),
        };
        let base = base
            .with_dataset(agreement.dataset.clone())
            .with_agreement(agreement.id.clone())
            .with_purpose(agreement.purpose.clone());
        match self.admit(&agreement, state).await {
            Ok(engine) => (Ok((agreement, engine)), base),
            Err(e) => (Err(e), base),
        }
    }

    /// Admits a query under a verified `agreement` in negotiation `state`:
    /// in force, policy intact, purpose covered, valid now; returns the
    /// engine for its dataset.
    async fn admit(
        &self,
        agreement: &Agreement,
        state: NegotiationState,
    ) -> Result<Arc<GovernedEngine>> {
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
        if !policy.is_valid_at(Utc::now()) {
            return Err(
                Refusal::new(Rule::Validity, "the agreement's policy is not in force now").into(),
            );
        }
        self.engine_for(agreement).await
    }

    async fn engine_for(&self, agreement: &Agreement) -> Result<Arc<GovernedEngine>> {
        let key = format!("{}|{}", agreement.dataset, agreement.policy_hash);
        if let Some(engine) = self.engines.lock().ok().and_then(|e| e.get(&key).cloned()) {
            return Ok(engine);
        }
        let dataset = DatasetRegistry::new(self.store.as_ref()).get(&agreement.dataset)?;
        let limits = ExecutionLimits {
            memory_bytes: self.config.query_memory_bytes,
            timeout: std::time::Duration::from_secs(self.config.query_timeout_secs),
            sql: self.config.sql_limits(),
        };
        let mut engine = GovernedEngine::with_plans(limits, Arc::clone(&self.plans))?;
        let policy = agreement.policy.payload().clone();
        match self
            .memory_table(&dataset.id, &dataset.path, &engine)
            .await?
        {
            Some(table) => engine.register_provider(policy, table)?,
            None => {
                let roots = &self.config.data_roots;
                engine.add_dataset(policy, &dataset.path, roots).await?;
            }
        }
        let engine = Arc::new(engine);
        if let Ok(mut engines) = self.engines.lock() {
            engines.insert(key, Arc::clone(&engine));
        }
        Ok(engine)
    }

    /// The dataset held in memory, when its files total at most
    /// `memory_table_bytes`: read at the first query that needs it and
    /// shared by every agreement on it until the dataset is registered
    /// again.
    async fn memory_table(
        &self,
        id: &str,
        path: &std::path::Path,
        engine: &GovernedEngine,
    ) -> Result<Option<Arc<dyn datafusion::catalog::TableProvider>>> {
        let limit = self.config.memory_table_bytes;
        if limit == 0 {
            return Ok(None);
        }
        if let Some(table) = self
            .memory_tables
            .lock()
            .ok()
            .and_then(|t| t.get(id).cloned())
        {
            return Ok(Some(table));
        }
        let bytes = tables::files_bytes(path)?;
        if bytes > limit {
            return Ok(None);
        }
        let started = Instant::now();
        let roots = &self.config.data_roots;
        let files = tables::open_table(engine.state(), id, path, roots).await?;
        let table = tables::in_memory(engine.state(), id, files).await?;
        tracing::info!(dataset = %id, bytes, ms = elapsed_ms(started), "dataset held in memory");
        let table: Arc<dyn datafusion::catalog::TableProvider> = table;
        if let Ok(mut tables) = self.memory_tables.lock() {
            tables.insert(id.to_owned(), Arc::clone(&table));
        }
        Ok(Some(table))
    }

    /// Charges one query to the agreement, atomically (concurrent queries
    /// can never overspend); refuses past `max`. The charge is durable in the
    /// audit log (a `quota_charged` record, group-committed) before the query
    /// runs, and the counters are rebuilt from those records at start-up.
    async fn charge_query(
        &self,
        base: &AuditEntry,
        agreement: &str,
        max: Option<u64>,
    ) -> Result<u64> {
        let used = {
            let mut quota = self
                .quota
                .lock()
                .map_err(|_| Error::Storage("the quota lock is poisoned".into()))?;
            let used = quota.entry(agreement.to_owned()).or_insert(0);
            if let Some(max) = max.filter(|m| *used >= *m) {
                return Err(Refusal::new(
                    Rule::Quota,
                    format!("the agreement's quota of {max} queries is used up"),
                )
                .into());
            }
            *used += 1;
            *used
        };
        let limit = max.map_or_else(|| "unlimited".to_owned(), |m| m.to_string());
        self.record(
            retitle(base.clone(), RecordKind::QuotaCharged)
                .with_decision("charged")
                .with_detail(format!("query {used} of {limit}")),
        )
        .await?;
        Ok(used)
    }

    /// Queries charged to an agreement so far.
    pub fn queries_used(&self, agreement: &str) -> Result<u64> {
        let quota = self
            .quota
            .lock()
            .map_err(|_| Error::Storage("the quota lock is poisoned".into()))?;
        Ok(quota.get(agreement).copied().unwrap_or(0))
    }

    /// Runs a governed query for `caller`. Every outcome is audited.
    pub async fn query(
        &self,
        caller: &VerifiedCaller,
        request: &QueryRequest,
    ) -> Result<QueryAnswer> {
        let started = Instant::now();
        let base = self.query_entry(RecordKind::QueryRefused, caller, &request.sql);
        let (admitted, base) = self.admitted(caller, &request.agreement, base).await;
        let (agreement, engine) = match admitted {
            Ok(admitted) => admitted,
            Err(e) => return Err(self.audit_refusal(base, e, started).await),
        };
        if let Err(e) = self
            .charge_query(
                &base,
                &agreement.id,
                agreement.policy.payload().max_queries(),
            )
            .await
        {
            return Err(self.audit_refusal(base, e, started).await);
        }
        let answer = match engine.query(&request.sql, Utc::now()).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.audit_refusal(base, e, started).await),
        };
        let schema = answer
            .batches
            .first()
            .map(|b| b.schema())
            .unwrap_or_else(|| Arc::new(datafusion::arrow::datatypes::Schema::empty()));
        let body = match request.format {
            AnswerFormat::Arrow => to_arrow_stream(&schema, &answer.batches)?,
            AnswerFormat::Json => to_json_rows(&answer.batches)?,
        };
        let rows = u64::try_from(answer.rows).unwrap_or(u64::MAX);
        let result_hash = hash_bytes(&body);
        let record = self
            .record(
                retitle(base, RecordKind::QueryAnswered)
                    .with_decision("answered".to_owned())
                    .with_rows(rows)
                    .with_bytes(body.len() as u64)
                    .with_duration_ms(elapsed_ms(started))
                    .with_result_hash(result_hash.clone()),
            )
            .await?;
        let receipt = Receipt {
            agreement_id: agreement.id.clone(),
            provider: self.id().to_owned(),
            consumer: caller.participant_id.clone(),
            sql_hash: hash_bytes(request.sql.as_bytes()),
            result_hash,
            rows,
            bytes: body.len() as u64,
            at: now(),
            audit_seq: record.seq,
            audit_hash: record.hash.clone(),
            checkpoint: self.audit.latest_checkpoint(),
        };
        let receipt = SignedDocument::sign(receipt, DocumentKind::Receipt, &self.key)?;
        tracing::info!(agreement = %agreement.id, consumer = %caller.participant_id, rows, audit_seq = record.seq, "query answered");
        Ok(QueryAnswer {
            body,
            format: request.format,
            rows,
            receipt: receipt.jws().to_owned(),
        })
    }

    /// Writes the audit record of a query that did not get an answer and
    /// returns the error to send.
    async fn audit_refusal(&self, base: AuditEntry, error: Error, started: Instant) -> Error {
        let entry = match &error {
            Error::Refused(r) => base
                .with_decision("refused".to_owned())
                .with_rule(r.rule.id().to_owned())
                .with_detail(r.message.clone()),
            Error::Execution { id } => retitle(base, RecordKind::QueryFailed)
                .with_decision("failed".to_owned())
                .with_detail(format!("error id {id}")),
            other => base
                .with_decision("refused".to_owned())
                .with_detail(other.to_string()),
        };
        tracing::info!(consumer = %entry.counterparty.as_deref().unwrap_or("?"), decision = ?entry.decision, rule = ?entry.rule, "query not answered");
        match self
            .record(entry.with_duration_ms(elapsed_ms(started)))
            .await
        {
            Ok(_) => error,
            Err(audit_error) => audit_error,
        }
    }

    /// The start of a query's audit records: the caller and the SQL as
    /// [`audit_sql`] bounds it.
    fn query_entry(&self, kind: RecordKind, caller: &VerifiedCaller, sql: &str) -> AuditEntry {
        audit_sql(
            AuditEntry::new(kind, self.id()).with_counterparty(caller.participant_id.clone()),
            sql,
            self.config.audit_sql_bytes,
        )
    }

    /// Dry run: the decision and the enforced plan, without executing.
    /// Every outcome is audited (`query_checked`, with the decision).
    pub async fn check(
        &self,
        caller: &VerifiedCaller,
        request: &QueryRequest,
    ) -> Result<CheckOutcome> {
        let base = self.query_entry(RecordKind::QueryChecked, caller, &request.sql);
        let (outcome, base) = self.dry_run(caller, base, request).await;
        let entry = match &outcome {
            Ok(o) => {
                let entry = base.with_decision(o.decision.clone());
                match (&o.rule, &o.reason) {
                    (Some(rule), Some(reason)) => {
                        entry.with_rule(rule.clone()).with_detail(reason.clone())
                    }
                    _ => entry,
                }
            }
            Err(Error::Execution { id }) => base
                .with_decision("failed")
                .with_detail(format!("error id {id}")),
            Err(Error::Refused(r)) => base
                .with_decision("refused")
                .with_rule(r.rule.id())
                .with_detail(r.message.clone()),
            Err(other) => base.with_decision("refused").with_detail(other.to_string()),
        };
        self.record(entry).await?;
        outcome
    }

    /// The dry run's outcome, and `base` with what it learnt of the
    /// agreement.
    async fn dry_run(
        &self,
        caller: &VerifiedCaller,
        base: AuditEntry,
        request: &QueryRequest,
    ) -> (Result<CheckOutcome>, AuditEntry) {
        let (admitted, base) = self.admitted(caller, &request.agreement, base).await;
        let engine = match admitted {
            Ok((_, engine)) => engine,
            Err(e) => return (Err(e), base),
        };
        let outcome = match engine.plan(&request.sql, Utc::now()).await {
            Ok(checked) => Ok(CheckOutcome {
                decision: "accepted".into(),
                rule: None,
                reason: None,
                plan: Some(checked.enforced.plan.display_indent().to_string()),
            }),
            Err(Error::Refused(r)) => Ok(refused_outcome(r)),
            Err(other) => Err(other),
        };
        (outcome, base)
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

/// `entry` with the SQL of a query: the text up to `max` bytes, cut on a
/// character boundary and marked when cut (`… [truncated: K of N bytes
/// kept]`), and the `sha256:` hash of the whole text, which a receipt's
/// `sql_hash` also names. So a record grows by at most `max` bytes plus a
/// fixed overhead, however long the query.
pub fn audit_sql(entry: AuditEntry, sql: &str, max: usize) -> AuditEntry {
    entry
        .with_sql(bounded_text(sql, max))
        .with_sql_hash(hash_bytes(sql.as_bytes()))
}

/// Queries charged per agreement, counted from the `quota_charged` records
/// of an audit log.
pub fn charges_in(store: &dyn AuditStore) -> Result<HashMap<String, u64>> {
    let mut charges = HashMap::new();
    let mut from = 0;
    loop {
        let chunk = store.range(from, 10_000)?;
        let Some(last) = chunk.last() else { break };
        from = last.seq + 1;
        for record in &chunk {
            if let (RecordKind::QuotaCharged, Some(agreement)) = (record.kind, &record.agreement) {
                *charges.entry(agreement.clone()).or_insert(0) += 1;
            }
        }
    }
    Ok(charges)
}

/// `text` cut to at most `max` bytes on a character boundary, marked when
/// cut (`… [truncated: K of N bytes kept]`).
pub fn bounded_text(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let cut = text.floor_char_boundary(max);
    let head = text.get(..cut).unwrap_or_default();
    format!("{head}… [truncated: {cut} of {} bytes kept]", text.len())
}

/// The entry with another kind.
fn retitle(mut entry: AuditEntry, kind: RecordKind) -> AuditEntry {
    entry.kind = kind;
    entry
}

fn elapsed_ms(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_and_marked() {
        assert_eq!(bounded_text("short", 10), "short");
        let cut = bounded_text("ééééé", 3);
        assert!(cut.starts_with("é…"), "{cut}");
        assert!(cut.contains("2 of 10 bytes"), "{cut}");
        let sql = format!("SELECT '{}'", "x".repeat(10_000));
        let entry = audit_sql(AuditEntry::new(RecordKind::QueryChecked, "p"), &sql, 100);
        let kept = entry.sql.unwrap();
        assert!(
            kept.len() < 100 + 64 && kept.contains("[truncated: 100 of 10009"),
            "{kept}"
        );
        assert_eq!(entry.sql_hash, Some(hash_bytes(sql.as_bytes())));
    }
}
