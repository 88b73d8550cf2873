//! `dataspace keygen`: a participant's key pair.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use policy::keys::KeyPair;

use super::files::{create_dir, refuse_existing};

/// File name of a private key (PKCS#8 DER, mode 0600) in a key folder.
pub const PRIVATE_KEY_FILE: &str = "private.pk8";
/// File name of a public key (JWK JSON) in a key folder.
pub const PUBLIC_KEY_FILE: &str = "public.jwk.json";

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
