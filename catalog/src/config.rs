//! The catalog's configuration: one typed struct, read from
//! `HOME/catalog.toml` if present, then overridden by `DATASPACE_CATALOG_*`
//! environment variables (and, in the command, by its options).
//!
//! Every key of `catalog.toml` is a field of [`CatalogConfig`]; unknown
//! keys are refused. For example:
//!
//! ```toml
//! listen = "127.0.0.1:8090"
//! authority_key = "authority.json"   # from `dataspace authority init`
//! max_page_size = 100
//! ```

use std::path::{Path, PathBuf};

use policy::credential::TrustedAuthority;
use policy::keys::{Jwk, PublicKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Result};

/// File name of the configuration in a catalog's home folder.
pub const CONFIG_FILE: &str = "catalog.toml";
/// Folder of the sled store in a catalog's home folder.
pub const STORE_DIR: &str = "store";

/// Every option of a catalog. Paths are relative to the home folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// Address the HTTP API listens on (`DATASPACE_CATALOG_LISTEN`).
    pub listen: String,
    /// The trusted authority: `authority.json` as written by `authority
    /// init` (`{"id", "jwk"}`), or a bare public JWK whose authority id is
    /// `authority_id` (`DATASPACE_CATALOG_AUTHORITY_KEY`). Required.
    pub authority_key: Option<PathBuf>,
    /// The authority's id when `authority_key` is a bare JWK
    /// (`DATASPACE_CATALOG_AUTHORITY_ID`).
    pub authority_id: String,
    /// Title of the catalog in its DCAT export.
    pub title: String,
    /// Largest request body accepted, in bytes; larger ones get 413.
    pub max_body_bytes: usize,
    /// Largest search page.
    pub max_page_size: usize,
    /// Clock-skew tolerance for membership credentials, in seconds.
    pub clock_skew_secs: i64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8090".to_owned(),
            authority_key: None,
            authority_id: "authority".to_owned(),
            title: "Data-space catalog".to_owned(),
            max_body_bytes: 1 << 20,
            max_page_size: 100,
            clock_skew_secs: 60,
        }
    }
}

impl CatalogConfig {
    /// Reads `HOME/catalog.toml` (defaults if it is missing), then applies
    /// environment overrides.
    pub fn load(home: &Path) -> Result<Self> {
        let path = home.join(CONFIG_FILE);
        let mut config = match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).map_err(|source| Error::ConfigSyntax {
                file: path.display().to_string(),
                source: Box::new(source),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Self::default(),
            Err(source) => return Err(Error::ConfigFile { path, source }),
        };
        config.apply_env(|name| std::env::var(name).ok());
        Ok(config)
    }

    /// Parses the TOML of a `catalog.toml`; unknown keys are refused.
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|source| Error::ConfigSyntax {
            file: CONFIG_FILE.to_owned(),
            source: Box::new(source),
        })
    }

    /// Applies `DATASPACE_CATALOG_*` overrides read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        if let Some(v) = var("DATASPACE_CATALOG_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = var("DATASPACE_CATALOG_AUTHORITY_KEY") {
            self.authority_key = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        if let Some(v) = var("DATASPACE_CATALOG_AUTHORITY_ID") {
            self.authority_id = v;
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.authority_key.is_none() {
            return Err(Error::config(
                "authority_key",
                "is required: the authority's `authority.json` or public JWK",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(Error::config("max_body_bytes", "must be at least 1024"));
        }
        if self.max_page_size == 0 {
            return Err(Error::config("max_page_size", "must be at least 1"));
        }
        if self.clock_skew_secs < 0 {
            return Err(Error::config("clock_skew_secs", "must not be negative"));
        }
        Ok(())
    }

    /// Reads the trusted authority from `authority_key` (relative to `home`).
    pub fn load_authority(&self, home: &Path) -> Result<TrustedAuthority> {
        let relative = self
            .authority_key
            .as_ref()
            .ok_or_else(|| Error::config("authority_key", "is required"))?;
        let path = home.join(relative);
        let text = std::fs::read_to_string(&path).map_err(|source| Error::ConfigFile {
            path: path.clone(),
            source,
        })?;
        let not_a_key = |source| Error::AuthorityKey {
            path: path.clone(),
            source,
        };
        let value: Value = serde_json::from_str(&text).map_err(not_a_key)?;
        if value.get("jwk").is_some() {
            return serde_json::from_value(value).map_err(not_a_key);
        }
        let jwk: Jwk = serde_json::from_value(value).map_err(not_a_key)?;
        let public_key = PublicKey::from_jwk(&jwk)
            .map_err(|e| Error::trust(format!("the authority key `{}`", path.display()), e))?;
        Ok(TrustedAuthority {
            id: self.authority_id.clone(),
            public_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_flat_toml_with_comments() {
        let config = CatalogConfig::from_toml(
            "# the catalog\nlisten = \"0.0.0.0:9000\" # all interfaces\n\nauthority_key = \"keys/authority.json\"\nmax_page_size = 1_000\n",
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(
            config.authority_key,
            Some(PathBuf::from("keys/authority.json"))
        );
        assert_eq!(config.max_page_size, 1000);
        assert_eq!(config.max_body_bytes, 1 << 20);
    }

    #[test]
    fn refuses_unknown_keys_tables_and_bad_values() {
        for text in [
            "colour = \"red\"",
            "[server]",
            "listen = \"open",
            "max_page_size = \"x\"",
            "a = 1\na = 2",
        ] {
            assert!(CatalogConfig::from_toml(text).is_err(), "{text}");
        }
    }

    #[test]
    fn environment_overrides_the_file() {
        let mut config = CatalogConfig::from_toml("listen = \"127.0.0.1:1\"").unwrap();
        config.apply_env(|name| match name {
            "DATASPACE_CATALOG_LISTEN" => Some("127.0.0.1:2".to_owned()),
            "DATASPACE_CATALOG_AUTHORITY_KEY" => Some("a.json".to_owned()),
            _ => None,
        });
        assert_eq!(config.listen, "127.0.0.1:2");
        assert_eq!(config.authority_key, Some(PathBuf::from("a.json")));
        assert!(config.validate().is_ok());
        assert!(CatalogConfig::default().validate().is_err());
    }

    #[test]
    fn loads_authority_json_or_a_bare_jwk() {
        let dir = tempfile::tempdir().unwrap();
        let key = policy::keys::KeyPair::generate().unwrap().public_key();
        let trusted = TrustedAuthority {
            id: "gaia".into(),
            public_key: key,
        };
        std::fs::write(
            dir.path().join("authority.json"),
            serde_json::to_string(&trusted).unwrap(),
        )
        .unwrap();
        key.save_jwk(&dir.path().join("key.jwk.json"), false)
            .unwrap();
        let mut config = CatalogConfig {
            authority_key: Some("authority.json".into()),
            ..CatalogConfig::default()
        };
        assert_eq!(config.load_authority(dir.path()).unwrap(), trusted);
        config.authority_key = Some("key.jwk.json".into());
        let bare = config.load_authority(dir.path()).unwrap();
        assert_eq!((bare.id.as_str(), bare.public_key), ("authority", key));
        config.authority_key = Some("missing.json".into());
        assert!(matches!(
            config.load_authority(dir.path()),
            Err(Error::ConfigFile { .. })
        ));
        std::fs::write(dir.path().join("notes.txt"), "not json").unwrap();
        config.authority_key = Some("notes.txt".into());
        assert!(matches!(
            config.load_authority(dir.path()),
            Err(Error::AuthorityKey { .. })
        ));
    }
}
