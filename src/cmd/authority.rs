//! `dataspace authority`: the data-space authority's key and the membership
//! credentials it issues.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use policy::credential::{Attributes, Authority, Membership, TrustedAuthority};
use policy::keys::{KeyPair, PublicKey};

use super::files::{create_dir, emit, read_text, refuse_existing};
use super::keys::PRIVATE_KEY_FILE;

/// File name of the authority's public description (id and public JWK).
const AUTHORITY_FILE: &str = "authority.json";

const SECONDS_PER_DAY: i64 = 86_400;

/// Commands of the data-space authority.
#[derive(Debug, Subcommand)]
pub enum AuthorityCommand {
    /// Create the authority: a key pair and `authority.json` (id and public key).
    Init(InitArgs),
    /// Issue a membership credential (a signed JWS) to a participant.
    Issue(IssueArgs),
}

/// Arguments of `dataspace authority init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder for `private.pk8` and `authority.json` (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The authority's id, the `iss` of its credentials.
    #[arg(long, default_value = "authority")]
    id: String,
}

/// Arguments of `dataspace authority issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// The authority's folder, as written by `authority init`.
    #[arg(long, value_name = "DIR")]
    authority: PathBuf,
    /// The participant's id (the credential's subject).
    #[arg(long, value_name = "ID")]
    participant: String,
    /// The participant's display name [default: the participant id].
    #[arg(long)]
    name: Option<String>,
    /// The participant's public key (`public.jwk.json` from `keygen`).
    #[arg(long, value_name = "FILE")]
    public_key: PathBuf,
    /// An attribute as NAME=VALUE; repeatable. `role`, `sector`, `region`
    /// and `sme` (`true`/`false`) are standard, other names are extras.
    #[arg(long = "attr", value_name = "NAME=VALUE", value_parser = parse_attr)]
    attrs: Vec<(String, String)>,
    /// Validity in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    days: u32,
    /// Write the credential to FILE instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

impl AuthorityCommand {
    /// Runs the chosen authority command.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Init(args) => init(&args),
            Self::Issue(args) => issue(&args),
        }
    }
}

fn init(args: &InitArgs) -> Result<()> {
    if args.id.trim().is_empty() {
        bail!("the authority id must not be empty");
    }
    let private = args.out.join(PRIVATE_KEY_FILE);
    let description = args.out.join(AUTHORITY_FILE);
    refuse_existing(&[&private, &description])?;
    create_dir(&args.out)?;
    let authority = Authority::new(args.id.clone(), KeyPair::generate()?);
    authority.keypair.save(&private, false)?;
    let json = serde_json::to_string_pretty(&authority.trusted())?;
    fs::write(&description, format!("{json}\n"))
        .with_context(|| format!("cannot write `{}`", description.display()))?;
    println!("authority: {}", authority.id);
    println!("key id: {}", authority.keypair.public_key().key_id());
    println!("private key: {}", private.display());
    println!("trust anchor: {}", description.display());
    Ok(())
}

fn issue(args: &IssueArgs) -> Result<()> {
    let authority = load_authority(&args.authority)?;
    let mut attributes = Attributes::default();
    for (name, value) in &args.attrs {
        attributes.set(name, value)?;
    }
    let membership = Membership {
        participant_id: args.participant.clone(),
        name: args
            .name
            .clone()
            .unwrap_or_else(|| args.participant.clone()),
        public_key: PublicKey::load_jwk(&args.public_key)?,
        attributes,
    };
    let valid_for = i64::from(args.days) * SECONDS_PER_DAY;
    let credential = authority.issue(&membership, now_unix()?, valid_for)?;
    emit(&credential, args.out.as_deref())?;
    if let Some(out) = &args.out {
        println!(
            "issued a credential for `{}` (key id {}) valid {} days: {}",
            membership.participant_id,
            membership.public_key.key_id(),
            args.days,
            out.display()
        );
    }
    Ok(())
}

/// Loads the authority's key and checks it against its `authority.json`.
fn load_authority(dir: &Path) -> Result<Authority> {
    let description = dir.join(AUTHORITY_FILE);
    let trusted: TrustedAuthority =
        serde_json::from_str(&read_text(&description)?).with_context(|| {
            format!(
                "`{}` is not an authority description",
                description.display()
            )
        })?;
    let keypair = KeyPair::load(&dir.join(PRIVATE_KEY_FILE))?;
    if keypair.public_key() != trusted.public_key {
        bail!(
            "the key in `{}` does not match the public key in `{}`",
            dir.join(PRIVATE_KEY_FILE).display(),
            description.display()
        );
    }
    Ok(Authority::new(trusted.id, keypair))
}

/// Parses `NAME=VALUE`.
fn parse_attr(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!("expected NAME=VALUE, got `{text}`")),
    }
}

/// The current time in unix seconds.
fn now_unix() -> Result<i64> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    i64::try_from(elapsed.as_secs()).context("the system clock is out of range")
}
