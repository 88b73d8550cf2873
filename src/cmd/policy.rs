//! `dataspace policy`: usage policies as signed documents.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use policy::document::{DocumentKind, SignedDocument};
use policy::keys::{KeyPair, PublicKey};
use policy::model::UsagePolicy;

use super::files::{emit, read_text};

/// Commands on usage policies.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a usage policy and sign it with a participant's key.
    Sign(SignArgs),
    /// Verify a signed usage policy and print who signed what.
    Verify(VerifyArgs),
    /// Run red-team case files against the enforcer; ends with `N passed, M failed`.
    Test(super::policy_cases::TestArgs),
    /// Dry run: print the decision, the rule, the enforced plan and the verified physical plan for one query.
    Check(super::policy_cases::CheckArgs),
}

impl PolicyCommand {
    /// Runs the chosen policy command.
    pub fn run(self) -> Result<()> {
        match self {
            Self::Sign(args) => sign(&args),
            Self::Verify(args) => verify(&args),
            Self::Test(args) => super::policy_cases::test(&args),
            Self::Check(args) => super::policy_cases::check(&args),
        }
    }
}

/// Arguments of `dataspace policy sign`.
#[derive(Debug, Args)]
pub struct SignArgs {
    /// The signer's private key (`private.pk8`, mode 0600).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The usage policy, JSON as in `docs/usage-policy.md`.
    #[arg(value_name = "POLICY.json")]
    policy: PathBuf,
    /// Write the signed policy (a JWS) to FILE instead of printing it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Arguments of `dataspace policy verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The signed policy (a JWS, as written by `policy sign`).
    #[arg(value_name = "FILE")]
    signed: PathBuf,
    /// Also require this signer (`public.jwk.json`).
    #[arg(long, value_name = "FILE")]
    public_key: Option<PathBuf>,
}

fn sign(args: &SignArgs) -> Result<()> {
    let key = KeyPair::load(&args.key)?;
    let policy = UsagePolicy::from_json_str(&read_text(&args.policy)?)
        .with_context(|| format!("`{}`", args.policy.display()))?;
    let id = policy.id.clone();
    let signed = SignedDocument::sign(policy, DocumentKind::UsagePolicy, &key)?;
    emit(signed.jws(), args.out.as_deref())?;
    if let Some(out) = &args.out {
        println!(
            "signed policy `{id}` with key id {}: {}",
            key.public_key().key_id(),
            out.display()
        );
    }
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let expected = args
        .public_key
        .as_deref()
        .map(PublicKey::load_jwk)
        .transpose()?;
    let jws = read_text(&args.signed)?;
    let signed = SignedDocument::<UsagePolicy>::verify(
        jws.trim(),
        DocumentKind::UsagePolicy,
        expected.as_ref(),
    )
    .with_context(|| format!("`{}`", args.signed.display()))?;
    let policy = signed.payload();
    policy
        .validate()
        .with_context(|| format!("`{}`", args.signed.display()))?;
    println!("signature: valid");
    println!("signer key id: {}", signed.signer().key_id());
    println!("policy: {}", policy.id);
    println!("issuer: {}", policy.issuer);
    println!("dataset: {}", policy.dataset());
    println!("content hash: {}", signed.content_hash());
    Ok(())
}
