//! A connector's home folder:
//!
//! ```text
//! HOME/config.toml          the configuration (see `config`)
//! HOME/keys/private.pk8     the participant's Ed25519 key (PKCS#8, mode 0600)
//! HOME/keys/public.jwk.json its public key
//! HOME/authority.json       the trusted authority (id and public key)
//! HOME/credential.jws       the membership credential the authority issued
//! HOME/admin.token          the owner's admin token (mode 0600)
//! HOME/store/               datasets, offers, negotiations, used request-token ids (sled)
//! HOME/audit/               the audit log (sled)
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use policy::credential::{Attributes, Authority, Membership, TrustedAuthority};
use policy::keys::{KeyPair, PublicKey};

use crate::clock::{Clock, SystemClock};
use crate::config::{CONFIG_FILE, ConnectorConfig};
use crate::service::{Connector, Parts};
use crate::store::SledStore;
use crate::{Error, Result};

/// Private key file, relative to the home folder.
pub const PRIVATE_KEY: &str = crate::audit::PRIVATE_KEY_FILE;
/// Public key file, relative to the home folder.
pub const PUBLIC_KEY: &str = crate::audit::PUBLIC_KEY_FILE;
/// Admin token file, relative to the home folder.
pub const ADMIN_TOKEN: &str = "admin.token";

/// What `init` needs.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The participant id.
    pub id: String,
    /// The authority file to trust (copied into the home).
    pub authority_file: PathBuf,
    /// Folders datasets may come from.
    pub data_roots: Vec<PathBuf>,
    /// Listen address.
    pub listen: Option<String>,
    /// Catalog URL.
    pub catalog_url: Option<String>,
}

/// What `init` made.
#[derive(Debug, Clone)]
pub struct InitReport {
    /// The new key's id.
    pub key_id: String,
    /// The admin token (shown once; stored in `HOME/admin.token`).
    pub admin_token: String,
    /// The public key file, for `authority issue --public-key`.
    pub public_key_file: PathBuf,
}

/// Creates a home folder: keys, configuration, admin token.
pub fn init(home: &Path, options: &InitOptions) -> Result<InitReport> {
    if home.join(CONFIG_FILE).exists() {
        return Err(Error::Conflict(format!(
            "`{}` already holds a connector",
            home.display()
        )));
    }
    let authority: TrustedAuthority = read_json(&options.authority_file)?;
    let key = crate::audit::write_new_keys(home)?;
    let authority_json =
        serde_json::to_string_pretty(&authority).map_err(|e| Error::Storage(e.to_string()))?;
    std::fs::write(home.join("authority.json"), authority_json).map_err(|e| io(home, &e))?;
    let config = ConnectorConfig {
        id: options.id.clone(),
        listen: options
            .listen
            .clone()
            .unwrap_or_else(|| ConnectorConfig::default().listen),
        data_roots: options.data_roots.clone(),
        catalog_url: options.catalog_url.clone(),
        ..ConnectorConfig::default()
    };
    config.validate()?;
    let text = toml::to_string_pretty(&config).map_err(|e| Error::Storage(e.to_string()))?;
    std::fs::write(home.join(CONFIG_FILE), text).map_err(|e| io(home, &e))?;
    let admin_token = policy::id::new_id("adm")?;
    write_private(&home.join(ADMIN_TOKEN), &admin_token)?;
    Ok(InitReport {
        key_id: key.public_key().key_id(),
        admin_token,
        public_key_file: home.join(PUBLIC_KEY),
    })
}

/// Opens the connector of a home folder; refused when its audit log is
/// broken (see [`crate::audit::open_log`]).
pub fn open(home: &Path) -> Result<Connector> {
    open_with(home, false).map(|(connector, _)| connector)
}

/// Opens the connector of a home folder, recovering a broken audit log
/// first (see [`crate::audit::open_log`]); returns what the recovery did,
/// if the log needed one.
pub fn open_recovering(home: &Path) -> Result<(Connector, Option<crate::audit::RecoveryDone>)> {
    open_with(home, true)
}

/// Opens the connector of a home folder, recovering a broken audit log when
/// `recover_audit`.
pub fn open_with(
    home: &Path,
    recover_audit: bool,
) -> Result<(Connector, Option<crate::audit::RecoveryDone>)> {
    let config = ConnectorConfig::load(home)?;
    let key = Arc::new(KeyPair::load(&home.join(PRIVATE_KEY))?);
    let credential_path = home.join(&config.credential_file);
    let credential = std::fs::read_to_string(&credential_path)
        .map_err(|_| Error::Invalid {
            field: "credential_file".into(),
            reason: format!(
                "`{}` is missing: have the authority issue a credential for `{}` (dataspace authority issue --public-key {})",
                credential_path.display(),
                config.id,
                home.join(PUBLIC_KEY).display()
            ),
        })?
        .trim()
        .to_owned();
    let authority: TrustedAuthority = read_json(&home.join(&config.authority_file))?;
    let store = Arc::new(SledStore::open(&home.join("store"))?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let replay = Arc::new(store.replay_guard(clock.unix())?);
    let (audit, recovery) = crate::audit::open_log(
        home,
        Arc::clone(&key),
        config.checkpoint_every,
        recover_audit,
    )?;
    let token = std::fs::read_to_string(home.join(ADMIN_TOKEN)).map_err(|e| io(home, &e))?;
    let connector = Connector::new(Parts {
        config,
        store,
        replay,
        key,
        credential,
        authority,
        audit: Arc::new(audit),
        admin_token_hash: policy::document::hash_bytes(token.trim().as_bytes()),
        clock,
    })?;
    Ok((connector, recovery))
}

/// Has `authority` issue the membership credential of the participant of
/// `home` (its id as name, its public key, `attributes`), valid from now for
/// `valid_for_secs`, and writes it where the configuration expects it. For
/// set-ups where one process plays the authority too: the demo, the
/// benchmarks, the tests.
pub fn issue_credential(
    home: &Path,
    authority: &Authority,
    attributes: Attributes,
    valid_for_secs: i64,
) -> Result<()> {
    let config = ConnectorConfig::load(home)?;
    let member = Membership {
        participant_id: config.id.clone(),
        name: config.id.clone(),
        public_key: PublicKey::load_jwk(&home.join(PUBLIC_KEY))?,
        attributes,
    };
    let credential = authority.issue(&member, SystemClock.unix(), valid_for_secs)?;
    let path = home.join(&config.credential_file);
    std::fs::write(&path, credential).map_err(|e| io(&path, &e))
}

/// Reads the admin token of a home folder.
pub fn admin_token(home: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(home.join(ADMIN_TOKEN))
        .map_err(|e| io(home, &e))?
        .trim()
        .to_owned())
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, &e))?;
    serde_json::from_str(&text).map_err(|e| Error::Invalid {
        field: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io(path, &e))?;
    file.write_all(text.as_bytes()).map_err(|e| io(path, &e))
}

fn io(path: &Path, e: &std::io::Error) -> Error {
    Error::Storage(format!("`{}`: {e}", path.display()))
}
