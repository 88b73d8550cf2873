//! Audit records: what callers hand in ([`AuditEntry`]), what the log stores
//! ([`AuditRecord`]), and the record hash that chains them.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::Result;

/// The `prev_hash` of record #0: `sha256:` and 64 zeros.
pub const GENESIS_HASH: &str =
    "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// The connector started.
    Start,
    /// The connector stopped.
    Stop,
    /// A consumer asked to contract for an offer.
    ContractRequested,
    /// The provider offered an agreement.
    AgreementOffered,
    /// An agreement's signatures and content were verified.
    AgreementVerified,
    /// Both sides signed an agreement.
    AgreementFinalized,
    /// An agreement ended (expiry or termination).
    AgreementTerminated,
    /// The provider revoked an agreement.
    AgreementRevoked,
    /// A governed query was answered.
    QueryAnswered,
    /// A governed query was refused by the usage policy.
    QueryRefused,
    /// An accepted query failed while executing.
    QueryFailed,
    /// A query was charged to an agreement's quota.
    QuotaCharged,
    /// A signed checkpoint written by the log itself.
    Checkpoint,
    /// The owner started the connector on a broken log with the recovery
    /// flag; the signed detail names what was lost.
    Recovered,
    /// A dry run (`/query/check`): the decision, nothing executed.
    QueryChecked,
    /// A request refused before any agreement was looked at: a bad or
    /// replayed request token, a bad credential (never the token itself).
    AccessRefused,
}

impl RecordKind {
    /// The name of the kind as stored (`snake_case`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Start => "start",
            Self::Stop => "stop",
            Self::ContractRequested => "contract_requested",
            Self::AgreementOffered => "agreement_offered",
            Self::AgreementVerified => "agreement_verified",
            Self::AgreementFinalized => "agreement_finalized",
            Self::AgreementTerminated => "agreement_terminated",
            Self::AgreementRevoked => "agreement_revoked",
            Self::QueryAnswered => "query_answered",
            Self::QueryRefused => "query_refused",
            Self::QueryFailed => "query_failed",
            Self::QuotaCharged => "quota_charged",
            Self::Checkpoint => "checkpoint",
            Self::Recovered => "recovered",
            Self::QueryChecked => "query_checked",
            Self::AccessRefused => "access_refused",
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a caller asks the log to record: every field of a record except the
/// ones the log assigns (`seq`, `prev_hash`, `hash`).
///
/// `time` is the time of the event, set by [`AuditEntry::new`]; records are
/// ordered by `seq`, and times of concurrent events need not be monotonic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// What happened.
    pub kind: RecordKind,
    /// The participant that decided (this connector).
    pub actor: String,
    /// The other participant, when there is one.
    pub counterparty: Option<String>,
    /// The dataset concerned.
    pub dataset: Option<String>,
    /// The agreement concerned.
    pub agreement: Option<String>,
    /// The agreed purpose.
    pub purpose: Option<String>,
    /// The SQL text, cut to `audit_sql_bytes` (see `sql_hash`).
    pub sql: Option<String>,
    /// `sha256:` hash of the whole SQL text (`sql` may hold only its start).
    pub sql_hash: Option<String>,
    /// `answered`, `refused`, `failed`, `agreed`, ...
    pub decision: Option<String>,
    /// The id of the rule that refused, for a refusal.
    pub rule: Option<String>,
    /// Rows answered.
    pub rows: Option<u64>,
    /// Bytes answered.
    pub bytes: Option<u64>,
    /// How long the request took, in milliseconds.
    pub duration_ms: Option<u64>,
    /// `sha256:` hash of the answer as sent.
    pub result_hash: Option<String>,
    /// What else there is to say, in words (never a data value).
    pub detail: Option<String>,
}

/// Generates a `with_*` setter for an optional field of [`AuditEntry`].
macro_rules! setter {
    ($name:ident, $field:ident, String) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $name(mut self, value: impl Into<String>) -> Self {
            self.$field = Some(value.into());
            self
        }
    };
    ($name:ident, $field:ident, u64) => {
        #[doc = concat!("Sets `", stringify!($field), "`.")]
        #[must_use]
        pub fn $name(mut self, value: u64) -> Self {
            self.$field = Some(value);
            self
        }
    };
}

impl AuditEntry {
    /// An entry of `kind` by `actor`, timed now, with no other field set.
    pub fn new(kind: RecordKind, actor: impl Into<String>) -> Self {
        Self {
            time: Utc::now(),
            kind,
            actor: actor.into(),
            counterparty: None,
            dataset: None,
            agreement: None,
            purpose: None,
            sql: None,
            sql_hash: None,
            decision: None,
            rule: None,
            rows: None,
            bytes: None,
            duration_ms: None,
            result_hash: None,
            detail: None,
        }
    }

    /// Sets `time` (by default the time [`AuditEntry::new`] was called).
    #[must_use]
    pub fn with_time(mut self, time: DateTime<Utc>) -> Self {
        self.time = time;
        self
    }

    setter!(with_counterparty, counterparty, String);
    setter!(with_dataset, dataset, String);
    setter!(with_agreement, agreement, String);
    setter!(with_purpose, purpose, String);
    setter!(with_sql, sql, String);
    setter!(with_sql_hash, sql_hash, String);
    setter!(with_decision, decision, String);
    setter!(with_rule, rule, String);
    setter!(with_rows, rows, u64);
    setter!(with_bytes, bytes, u64);
    setter!(with_duration_ms, duration_ms, u64);
    setter!(with_result_hash, result_hash, String);
    setter!(with_detail, detail, String);
}

/// One stored record of the chain.
///
/// `hash` is the content hash (`sha256:<hex>` of the canonical JSON, see
/// `policy::canonical`) of the record without its `hash` member, so it
/// covers `seq` and `prev_hash`; `prev_hash` is the `hash` of record
/// `seq - 1`, or [`GENESIS_HASH`] for record #0. Absent optional fields are
/// left out of the JSON (and so of the hash). Unknown members are refused
/// when reading, so nothing can be slipped in beside the hashed content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Position in the log: 0, 1, 2, ... without gaps.
    pub seq: u64,
    /// When the event happened.
    pub time: DateTime<Utc>,
    /// What happened.
    pub kind: RecordKind,
    /// The participant that decided (this connector).
    pub actor: String,
    /// The other participant, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counterparty: Option<String>,
    /// The dataset concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// The agreement concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<String>,
    /// The agreed purpose.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// The SQL text, cut to `audit_sql_bytes` (see `sql_hash`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// `sha256:` hash of the whole SQL text (`sql` may hold only its start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql_hash: Option<String>,
    /// `answered`, `refused`, `failed`, `agreed`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// The id of the rule that refused, for a refusal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Rows answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Bytes answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// How long the request took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// `sha256:` hash of the answer as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_hash: Option<String>,
    /// What else there is to say, in words (never a data value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The hash of the record before (the genesis hash for #0).
    pub prev_hash: String,
    /// The hash of this record's content (everything but `hash`).
    pub hash: String,
}

/// The hashed content of a record: every member but `hash`.
///
/// Members are declared in canonical (sorted) order and hold only strings,
/// integers and absent options, so the JSON `serde_json` writes for this
/// struct is already canonical JSON; a test checks it against
/// `policy::canonical::content_hash`.
#[derive(Serialize)]
struct HashedContent<'a> {
    actor: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agreement: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    counterparty: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decision: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<u64>,
    kind: RecordKind,
    prev_hash: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rows: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sql_hash: Option<&'a str>,
    time: &'a DateTime<Utc>,
}

impl AuditRecord {
    /// Seals `entry` as record `seq` following a record whose hash is
    /// `prev_hash`: fills in `hash`.
    pub fn seal(entry: AuditEntry, seq: u64, prev_hash: String) -> Result<Self> {
        let mut record = Self {
            seq,
            time: entry.time,
            kind: entry.kind,
            actor: entry.actor,
            counterparty: entry.counterparty,
            dataset: entry.dataset,
            agreement: entry.agreement,
            purpose: entry.purpose,
            sql: entry.sql,
            sql_hash: entry.sql_hash,
            decision: entry.decision,
            rule: entry.rule,
            rows: entry.rows,
            bytes: entry.bytes,
            duration_ms: entry.duration_ms,
            result_hash: entry.result_hash,
            detail: entry.detail,
            prev_hash,
            hash: String::new(),
        };
        record.hash = record.compute_hash()?;
        Ok(record)
    }

    /// The hash this record's content calls for (whatever `hash` holds).
    pub fn compute_hash(&self) -> Result<String> {
        Ok(policy::canonical::hash_bytes(&self.canonical_content()?))
    }

    /// Whether `hash` matches the content: the same answer as comparing it
    /// with [`AuditRecord::compute_hash`], without rendering the hash.
    pub fn hash_matches(&self) -> Result<bool> {
        let digest = ring::digest::digest(&ring::digest::SHA256, &self.canonical_content()?);
        Ok(renders_as(digest.as_ref(), &self.hash))
    }

    /// The canonical JSON of everything but `hash`.
    fn canonical_content(&self) -> Result<Vec<u8>> {
        let mut canonical = Vec::with_capacity(CONTENT_CAPACITY);
        serde_json::to_writer(&mut canonical, &self.hashed_content())
            .map_err(|e| super::AuditError::Encode(e.to_string()))?;
        Ok(canonical)
    }

    fn hashed_content(&self) -> HashedContent<'_> {
        HashedContent {
            actor: &self.actor,
            agreement: self.agreement.as_deref(),
            bytes: self.bytes,
            counterparty: self.counterparty.as_deref(),
            dataset: self.dataset.as_deref(),
            decision: self.decision.as_deref(),
            detail: self.detail.as_deref(),
            duration_ms: self.duration_ms,
            kind: self.kind,
            prev_hash: &self.prev_hash,
            purpose: self.purpose.as_deref(),
            result_hash: self.result_hash.as_deref(),
            rows: self.rows,
            rule: self.rule.as_deref(),
            seq: self.seq,
            sql: self.sql.as_deref(),
            sql_hash: self.sql_hash.as_deref(),
            time: &self.time,
        }
    }
}

/// Room for the canonical content of a typical record, so that encoding it
/// does not reallocate.
const CONTENT_CAPACITY: usize = 1024;

/// Whether `hash` is `digest` as `policy::canonical::hash_bytes` renders it
/// (`sha256:` and lowercase hex).
fn renders_as(digest: &[u8], hash: &str) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let Some(hex) = hash.strip_prefix(policy::canonical::HASH_PREFIX) else {
        return false;
    };
    hex.len() == digest.len() * 2
        && digest
            .iter()
            .zip(hex.as_bytes().chunks_exact(2))
            .all(|(byte, pair)| {
                pair[0] == HEX[usize::from(byte >> 4)] && pair[1] == HEX[usize::from(byte & 0xf)]
            })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn full_entry() -> AuditEntry {
        AuditEntry::new(RecordKind::QueryAnswered, "platform-north")
            .with_counterparty("sme-south")
            .with_dataset("telemetry")
            .with_agreement("urn:agreement:1")
            .with_purpose("maintenance")
            .with_sql("SELECT region, avg(\"temp\") FROM telemetry GROUP BY 1 -- é\n")
            .with_decision("answered")
            .with_rule("min_entities")
            .with_rows(12)
            .with_bytes(4096)
            .with_duration_ms(7)
            .with_result_hash("sha256:ab")
            .with_detail("note")
    }

    /// The definition: `content_hash` of the record as JSON without `hash`.
    fn reference_hash(record: &AuditRecord) -> String {
        let mut value = serde_json::to_value(record).unwrap();
        value.as_object_mut().unwrap().remove("hash");
        policy::canonical::content_hash(&value).unwrap()
    }

    #[test]
    fn hash_is_the_content_hash_of_the_record_without_its_hash() {
        let full = AuditRecord::seal(full_entry(), 7, GENESIS_HASH.into()).unwrap();
        assert_eq!(full.hash, reference_hash(&full));
        let bare = AuditRecord::seal(
            AuditEntry::new(RecordKind::Start, "c"),
            0,
            GENESIS_HASH.into(),
        )
        .unwrap();
        assert_eq!(bare.hash, reference_hash(&bare));
        assert!(bare.hash.starts_with("sha256:") && bare.hash.len() == 71);
    }

    #[test]
    fn hash_covers_seq_prev_hash_and_every_field() {
        let base = AuditRecord::seal(full_entry(), 3, GENESIS_HASH.into()).unwrap();
        let edits: Vec<fn(&mut AuditRecord)> = vec![
            |r| r.seq += 1,
            |r| r.prev_hash = format!("sha256:{}", "1".repeat(64)),
            |r| r.kind = RecordKind::QueryRefused,
            |r| r.actor.push('x'),
            |r| r.rows = Some(13),
            |r| r.sql = None,
            |r| r.time += chrono::Duration::nanoseconds(1),
            |r| r.detail = Some("other".into()),
        ];
        for edit in edits {
            let mut record = base.clone();
            edit(&mut record);
            assert!(!record.hash_matches().unwrap(), "{record:?}");
        }
        assert!(base.hash_matches().unwrap());
    }

    #[test]
    fn hash_matches_only_the_exact_rendering() {
        let record = AuditRecord::seal(full_entry(), 2, GENESIS_HASH.into()).unwrap();
        assert!(record.hash_matches().unwrap());
        let hex = record.hash.trim_start_matches("sha256:").to_owned();
        for other in [
            format!("sha256:{}", hex.to_uppercase()),
            format!("SHA256:{hex}"),
            hex.clone(),
            format!("sha256:{}", &hex[..62]),
            format!("sha256:{hex}00"),
            String::new(),
        ] {
            let mut tampered = record.clone();
            tampered.hash = other;
            assert!(!tampered.hash_matches().unwrap(), "{}", tampered.hash);
        }
    }

    #[test]
    fn json_round_trip_keeps_the_hash_valid() {
        let record = AuditRecord::seal(full_entry(), 1, GENESIS_HASH.into()).unwrap();
        let back: AuditRecord =
            serde_json::from_slice(&serde_json::to_vec(&record).unwrap()).unwrap();
        assert_eq!(back, record);
        assert!(back.hash_matches().unwrap());
    }

    #[test]
    fn absent_fields_are_left_out_and_unknown_members_refused() {
        let record = AuditRecord::seal(
            AuditEntry::new(RecordKind::Stop, "c"),
            0,
            GENESIS_HASH.into(),
        )
        .unwrap();
        let mut value = serde_json::to_value(&record).unwrap();
        assert!(value.get("sql").is_none());
        assert_eq!(value["kind"], "stop");
        value["smuggled"] = Value::from(1);
        assert!(serde_json::from_value::<AuditRecord>(value).is_err());
    }

    #[test]
    fn kinds_serialize_snake_case() {
        let json = serde_json::to_value(RecordKind::AgreementFinalized).unwrap();
        assert_eq!(json, "agreement_finalized");
        assert_eq!(RecordKind::QuotaCharged.to_string(), "quota_charged");
    }
}
