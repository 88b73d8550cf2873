//! The connector's configuration: one typed struct, read from
//! `HOME/config.toml`, then overridden by `DATASPACE_*` environment variables.

use std::path::{Path, PathBuf};

use policy::enforce::SqlLimits;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How contract requests are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    /// Agree at once when the request satisfies the policy.
    #[default]
    Auto,
    /// Keep requests `REQUESTED` until the owner approves or rejects them.
    Manual,
}

/// Every option of a connector. Paths are relative to the home folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectorConfig {
    /// This participant's id; must equal the subject of its credential.
    pub id: String,
    /// Address the HTTP API listens on (`DATASPACE_LISTEN`).
    pub listen: String,
    /// Base URL other participants reach this connector at; written into
    /// offers (`DATASPACE_PUBLIC_URL`). Default: `http://<listen>`.
    pub public_url: Option<String>,
    /// Folders datasets may be registered from; nothing outside them
    /// (`DATASPACE_DATA_ROOTS`, separated by `:`). Every file a dataset
    /// reads is checked to really lie under one, at registration and at
    /// every scan (`crate::rooted`).
    pub data_roots: Vec<PathBuf>,
    /// The trusted authority (`{"id", "jwk"}`, from `authority init`).
    pub authority_file: PathBuf,
    /// This participant's membership credential (a JWS from `authority issue`).
    pub credential_file: PathBuf,
    /// The shared catalog to publish to, if any (`DATASPACE_CATALOG_URL`).
    pub catalog_url: Option<String>,
    /// `auto` or `manual` decisions on contract requests (`DATASPACE_APPROVAL`).
    pub approval: Approval,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Memory one query may use, in bytes.
    pub query_memory_bytes: usize,
    /// Time one query may take, in seconds.
    pub query_timeout_secs: u64,
    /// Longest SQL text of a query, in bytes.
    pub max_sql_bytes: usize,
    /// Deepest nesting of expressions and subqueries in a query.
    pub max_sql_depth: usize,
    /// Most expressions in a query.
    pub max_sql_nodes: usize,
    /// Most query blocks (`SELECT`s, CTEs, subqueries) in a query.
    pub max_sql_queries: usize,
    /// Datasets whose files total at most this many bytes are read into
    /// memory once and queried there (0: always read the files).
    pub memory_table_bytes: u64,
    /// Clock-skew tolerance for tokens and credentials, in seconds.
    pub clock_skew_secs: i64,
    /// A signed checkpoint every this many audit records.
    pub checkpoint_every: u64,
    /// Most bytes of a query's SQL kept in an audit record; a longer text
    /// is cut (on a character boundary, marked) and the record keeps the
    /// hash of the whole text (`sql_hash`) too.
    pub audit_sql_bytes: usize,
    /// Memory all prepared plans kept for repeated queries may take, by
    /// estimate, in bytes (0: keep none).
    pub plan_cache_bytes: usize,
    /// Most `access_refused` audit records per second for one reason; the
    /// refusals past it are counted and the count goes into the next record.
    pub refusal_records_per_sec: u32,
}

impl Default for ConnectorConfig {
    fn default() -> Self {
        Self {
            id: String::new(),
            listen: "127.0.0.1:8080".to_owned(),
            public_url: None,
            data_roots: Vec::new(),
            authority_file: PathBuf::from("authority.json"),
            credential_file: PathBuf::from("credential.jws"),
            catalog_url: None,
            approval: Approval::Auto,
            max_body_bytes: 1 << 20,
            query_memory_bytes: 1 << 30,
            query_timeout_secs: 60,
            max_sql_bytes: SqlLimits::default().max_bytes,
            max_sql_depth: SqlLimits::default().max_depth,
            max_sql_nodes: SqlLimits::default().max_nodes,
            max_sql_queries: SqlLimits::default().max_queries,
            memory_table_bytes: 0,
            clock_skew_secs: 60,
            checkpoint_every: 1000,
            audit_sql_bytes: 4096,
            plan_cache_bytes: 64 << 20,
            refusal_records_per_sec: 10,
        }
    }
}

/// Largest `audit_sql_bytes`.
pub const MAX_AUDIT_SQL_BYTES: usize = 1 << 20;

/// Largest `refusal_records_per_sec`.
pub const MAX_REFUSAL_RECORDS_PER_SEC: u32 = 1000;

/// File name of the configuration in a home folder.
pub const CONFIG_FILE: &str = "config.toml";

impl ConnectorConfig {
    /// Reads `HOME/config.toml`, then applies environment overrides.
    pub fn load(home: &Path) -> Result<Self> {
        let path = home.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| invalid("config", format!("cannot read `{}`: {e}", path.display())))?;
        let mut config: Self = toml::from_str(&text)
            .map_err(|e| invalid("config", format!("`{}`: {e}", path.display())))?;
        config.apply_env(|name| std::env::var(name).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `DATASPACE_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = var("DATASPACE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = var("DATASPACE_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = var("DATASPACE_CATALOG_URL") {
            self.catalog_url = Some(v).filter(|s| !s.is_empty());
        }
        if let Some(v) = var("DATASPACE_DATA_ROOTS") {
            self.data_roots = v
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect();
        }
        if let Some(v) = var("DATASPACE_APPROVAL") {
            self.approval = match v.as_str() {
                "auto" => Approval::Auto,
                "manual" => Approval::Manual,
                other => {
                    return Err(invalid(
                        "DATASPACE_APPROVAL",
                        format!("`{other}` is not `auto` or `manual`"),
                    ));
                }
            };
        }
        Ok(())
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        if self.max_body_bytes < 1024 {
            return Err(invalid("max_body_bytes", "must be at least 1024"));
        }
        if self.query_timeout_secs == 0 {
            return Err(invalid("query_timeout_secs", "must be at least 1"));
        }
        for (field, value) in [
            ("max_sql_bytes", self.max_sql_bytes),
            ("max_sql_depth", self.max_sql_depth),
            ("max_sql_nodes", self.max_sql_nodes),
            ("max_sql_queries", self.max_sql_queries),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        if self.max_sql_depth > 1024 {
            return Err(invalid(
                "max_sql_depth",
                "must be at most 1024 (deeper expressions would exhaust the executor's stack)",
            ));
        }
        if self.checkpoint_every == 0 {
            return Err(invalid("checkpoint_every", "must be at least 1"));
        }
        self.validate_bounds()
    }

    /// Checks the bounds on what queries and refusals may cost.
    fn validate_bounds(&self) -> Result<()> {
        if self.query_memory_bytes < 1 << 20 {
            return Err(invalid(
                "query_memory_bytes",
                format!(
                    "is {}; must be at least 1048576 (1 MiB): planning and execution draw on it",
                    self.query_memory_bytes
                ),
            ));
        }
        if self.audit_sql_bytes > MAX_AUDIT_SQL_BYTES {
            return Err(invalid(
                "audit_sql_bytes",
                format!(
                    "is {}; must be at most {MAX_AUDIT_SQL_BYTES} (the whole text is identified by its hash in every record anyway)",
                    self.audit_sql_bytes
                ),
            ));
        }
        if self.plan_cache_bytes != 0 && self.plan_cache_bytes < 1 << 20 {
            return Err(invalid(
                "plan_cache_bytes",
                format!(
                    "is {}; must be 0 (no plan kept) or at least 1048576 (1 MiB)",
                    self.plan_cache_bytes
                ),
            ));
        }
        if !(1..=MAX_REFUSAL_RECORDS_PER_SEC).contains(&self.refusal_records_per_sec) {
            return Err(invalid(
                "refusal_records_per_sec",
                format!(
                    "is {}; must be 1 to {MAX_REFUSAL_RECORDS_PER_SEC}",
                    self.refusal_records_per_sec
                ),
            ));
        }
        Ok(())
    }

    /// The bounds on a query's SQL text.
    pub fn sql_limits(&self) -> SqlLimits {
        SqlLimits {
            max_bytes: self.max_sql_bytes,
            max_depth: self.max_sql_depth,
            max_nodes: self.max_sql_nodes,
            max_queries: self.max_sql_queries,
        }
    }

    /// The base URL written into offers.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
    }
}

fn invalid(field: &str, reason: impl Into<String>) -> Error {
    Error::Invalid {
        field: field.to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_the_file() {
        let mut config: ConnectorConfig =
            toml::from_str("id = \"p1\"\nlisten = \"127.0.0.1:9\"").unwrap();
        config
            .apply_env(|name| match name {
                "DATASPACE_LISTEN" => Some("127.0.0.1:7".into()),
                "DATASPACE_DATA_ROOTS" => Some("/a:/b".into()),
                "DATASPACE_APPROVAL" => Some("manual".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.listen, "127.0.0.1:7");
        assert_eq!(
            config.data_roots,
            vec![PathBuf::from("/a"), PathBuf::from("/b")]
        );
        assert_eq!(config.approval, Approval::Manual);
        assert!(
            config
                .apply_env(|n| (n == "DATASPACE_APPROVAL").then(|| "sometimes".into()))
                .is_err()
        );
    }

    #[test]
    fn bounds_out_of_range_are_refused_with_the_option_named() {
        let valid = ConnectorConfig {
            id: "p".into(),
            ..ConnectorConfig::default()
        };
        valid.validate().unwrap();
        type Edit = fn(&mut ConnectorConfig);
        let cases: [(&str, Edit); 5] = [
            ("audit_sql_bytes", |c| c.audit_sql_bytes = (1 << 20) + 1),
            ("plan_cache_bytes", |c| c.plan_cache_bytes = 1000),
            ("refusal_records_per_sec", |c| c.refusal_records_per_sec = 0),
            ("refusal_records_per_sec", |c| {
                c.refusal_records_per_sec = 5000
            }),
            ("query_memory_bytes", |c| c.query_memory_bytes = 1000),
        ];
        for (field, edit) in cases {
            let mut config = valid.clone();
            edit(&mut config);
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(&format!("`{field}`")), "{error}");
            assert!(error.contains("must be"), "{error}");
        }
        let mut none = valid.clone();
        none.plan_cache_bytes = 0;
        none.audit_sql_bytes = 0;
        none.validate().unwrap();
    }

    #[test]
    fn unknown_options_are_refused() {
        assert!(toml::from_str::<ConnectorConfig>("id = \"p\"\nlisten_port = 3").is_err());
        let empty: ConnectorConfig = toml::from_str("").unwrap();
        assert!(empty.validate().is_err());
    }
}
