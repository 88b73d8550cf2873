//! `dataspace keygen`: a participant's key pair.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use policy::keys::KeyPair;

use super::{PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, create_dir, refuse_existing};

/// Writes `DIR/private.pk8` (PKCS#8, readable by the owner only) and
/// `DIR/public.jwk.json`, and prints the key id. Existing files are never
/// overwritten.
#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Folder for the key files (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

/// Runs `dataspace keygen`.
pub fn keygen(args: &KeygenArgs) -> Result<()> {
    let private = args.out.join(PRIVATE_KEY_FILE);
    let public = args.out.join(PUBLIC_KEY_FILE);
    refuse_existing(&[&private, &public])?;
    create_dir(&args.out)?;
    let key = KeyPair::generate()?;
    key.save(&private, false)?;
    key.public_key().save_jwk(&public, false)?;
    println!("key id: {}", key.public_key().key_id());
    println!("private key: {}", private.display());
    println!("public key: {}", public.display());
    Ok(())
}
