//! The demo's data space: an authority, the shared catalog, and the
//! participants it admits, each with a connector served on loopback
//! ([`Served`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use catalog::config::CatalogConfig;
use catalog::server::{RunningCatalog, open_catalog};
use connector::home::{InitOptions, init, issue_credential};
use policy::credential::{Attributes, Authority};
use policy::keys::KeyPair;

use crate::served::Served;

/// The platform's participant id.
pub const PLATFORM: &str = "platform-north";
/// The SME's participant id.
pub const SME: &str = "sme-south";

/// The authority, its file, and what it issues.
pub struct Space {
    /// The authority that admits participants.
    pub authority: Authority,
    /// Its public part (`authority.json`), which every home trusts.
    pub authority_file: PathBuf,
    /// The folder of every home, store and data file.
    pub dir: PathBuf,
    /// The shared catalog's base URL.
    pub catalog_url: String,
}

impl Space {
    /// Founds the space in `dir`: a new authority, written to
    /// `authority.json`, and the shared catalog trusting it, served on a
    /// free loopback port.
    pub async fn found(dir: &Path) -> Result<(Self, RunningCatalog)> {
        let authority = Authority::new("authority", KeyPair::generate()?);
        let authority_file = dir.join("authority.json");
        std::fs::write(
            &authority_file,
            serde_json::to_string_pretty(&authority.trusted())?,
        )?;
        let catalog_home = dir.join("catalog");
        std::fs::create_dir_all(&catalog_home)?;
        std::fs::copy(&authority_file, catalog_home.join("authority.json"))?;
        let config = CatalogConfig {
            authority_key: Some("authority.json".into()),
            ..CatalogConfig::default()
        };
        let opened = open_catalog(&catalog_home, &config).context("cannot open the catalog")?;
        let catalog = RunningCatalog::start(Arc::new(opened), "127.0.0.1:0", config.max_body_bytes)
            .await
            .context("cannot start the catalog")?;
        let space = Self {
            authority,
            authority_file,
            dir: dir.to_path_buf(),
            catalog_url: catalog.url(),
        };
        Ok((space, catalog))
    }

    /// Creates a participant's home (keys, config, admin token), issues its
    /// credential, and serves its connector on a free loopback port.
    pub async fn admit(&self, id: &str, role: &str, roots: Vec<PathBuf>) -> Result<Served> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on loopback")?;
        let addr = listener.local_addr()?;
        let home = self.dir.join(id);
        init(
            &home,
            &InitOptions {
                id: id.to_owned(),
                authority_file: self.authority_file.clone(),
                data_roots: roots,
                listen: Some(addr.to_string()),
                catalog_url: Some(self.catalog_url.clone()),
            },
        )
        .with_context(|| format!("cannot create the home of `{id}`"))?;
        let mut attributes = Attributes::default();
        attributes.set("role", role)?;
        attributes.set("sme", if role == "sme" { "true" } else { "false" })?;
        attributes.set("sector", "manufacturing")?;
        issue_credential(&home, &self.authority, attributes, 7 * 86_400)
            .with_context(|| format!("cannot issue the credential of `{id}`"))?;
        Served::start(home, listener)
    }
}
