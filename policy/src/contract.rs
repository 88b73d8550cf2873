//! The documents of a contract, signed as JWS (see [`crate::document`]):
//! the provider's offer, the consumer's request, the provider's agreement
//! (embedding the policy and the signed request, so neither side can alter
//! it later), the consumer's acceptance, and the receipt of a query.

use serde::{Deserialize, Serialize};

use crate::document::SignedDocument;
use crate::model::UsagePolicy;

/// A provider's offer: one dataset under one signed usage policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// Unique per provider.
    pub id: String,
    /// The provider's participant id.
    pub provider: String,
    /// The dataset id (the table name consumers query).
    pub dataset: String,
    /// The signed usage policy.
    pub policy: SignedDocument<UsagePolicy>,
    /// Where the provider's connector answers (base URL).
    pub endpoint: String,
    /// Unix seconds.
    pub issued_at: i64,
}

/// A consumer's request to contract for an offer, for one purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractRequest {
    /// Unique id of the request (random).
    pub id: String,
    /// The consumer's participant id.
    pub consumer: String,
    /// The provider's participant id.
    pub provider: String,
    /// The offer asked for.
    pub offer_id: String,
    /// The content hash of the signed policy the consumer read.
    pub policy_hash: String,
    /// The declared purpose; one of the policy's purposes.
    pub purpose: String,
    /// Unix seconds.
    pub requested_at: i64,
}

/// An agreement, signed by the provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// Unique id, chosen by the provider.
    pub id: String,
    /// The provider's participant id.
    pub provider: String,
    /// The consumer's participant id.
    pub consumer: String,
    /// The offer the agreement is for.
    pub offer_id: String,
    /// The dataset id.
    pub dataset: String,
    /// The purpose, fixed for every query.
    pub purpose: String,
    /// The content hash of the signed policy.
    pub policy_hash: String,
    /// The signed policy itself.
    pub policy: SignedDocument<UsagePolicy>,
    /// The consumer's signed request.
    pub request: SignedDocument<ContractRequest>,
    /// Unix seconds.
    pub agreed_at: i64,
}

/// The consumer's countersignature of an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Acceptance {
    /// The agreement's id.
    pub agreement_id: String,
    /// The content hash of the provider-signed agreement.
    pub agreement_hash: String,
    /// The consumer's participant id.
    pub consumer: String,
    /// Unix seconds.
    pub accepted_at: i64,
}

/// A provider's receipt for one answered query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// The agreement queried under.
    pub agreement_id: String,
    /// The provider's participant id.
    pub provider: String,
    /// The consumer's participant id.
    pub consumer: String,
    /// `sha256:` hash of the SQL text.
    pub sql_hash: String,
    /// `sha256:` hash of the result as sent (Arrow IPC stream bytes).
    pub result_hash: String,
    /// Rows returned.
    pub rows: u64,
    /// Bytes returned.
    pub bytes: u64,
    /// Unix seconds.
    pub at: i64,
    /// Sequence number of the audit record of this query.
    pub audit_seq: u64,
    /// Hash of that audit record.
    pub audit_hash: String,
    /// The latest signed checkpoint of the provider's audit log when the
    /// receipt was signed (a compact JWS over its position, hash and record
    /// count), so that the receipt also proves how long the log was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}
