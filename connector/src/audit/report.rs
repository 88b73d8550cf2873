//! What a verification finds: the report, where the chain breaks, the
//! owner's recoveries it passed. The checks (`verify`, `chunk`, `head`,
//! `recovery`) all speak of these, so they live apart from each.

use std::fmt;

use serde::Serialize;

/// The outcome of [`super::verify()`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records found intact (before the first broken one, if any).
    pub records: u64,
    /// Checkpoints among them.
    pub checkpoints: u64,
    /// The hash of the last intact record, if any.
    pub head: Option<String>,
    /// The first record that breaks the chain (or, for a complete check,
    /// the first the signed head says is missing or different).
    pub first_broken: Option<Broken>,
    /// Signed recoveries found in the chain: where records were lost and
    /// the log was recovered by its owner.
    pub recoveries: Vec<Recovery>,
}

impl VerifyReport {
    /// Whether no record breaks the chain.
    pub fn is_intact(&self) -> bool {
        self.first_broken.is_none()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_broken {
            None => {
                write!(
                    f,
                    "chain intact: {} records, {} checkpoints",
                    self.records, self.checkpoints
                )?;
                for r in &self.recoveries {
                    match r.lost_to {
                        Some(to) => write!(
                            f,
                            "; recovered at #{}: records #{}..=#{} lost",
                            r.seq, r.lost_from, to
                        )?,
                        None => write!(f, "; recovered at #{} ({})", r.seq, r.reason)?,
                    }
                }
                Ok(())
            }
            Some(broken) => write!(f, "broken at record #{}: {}", broken.seq, broken.reason),
        }
    }
}

/// Where and why a chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// The sequence number of the first record that fails (or is missing).
    pub seq: u64,
    /// Why, in words.
    pub reason: String,
}

/// A recovery found in a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recovery {
    /// The `recovered` record's sequence number.
    pub seq: u64,
    /// The first lost sequence number.
    pub lost_from: u64,
    /// The last lost one, when the head said.
    pub lost_to: Option<u64>,
    /// Why the log was broken.
    pub reason: String,
}
