//! The files the commands read and write: text read naming its file,
//! output to a file or stdout, folders created, nothing overwritten.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `text` (plus a newline) to `out`, or prints it to stdout.
pub fn emit(text: &str, out: Option<&Path>) -> Result<()> {
    match out {
        Some(path) => fs::write(path, format!("{text}\n"))
            .with_context(|| format!("cannot write `{}`", path.display())),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Reads a text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// Refuses to go on if any of `paths` exists.
pub fn refuse_existing(paths: &[&Path]) -> Result<()> {
    match paths.iter().find(|path| path.exists()) {
        Some(path) => anyhow::bail!(
            "`{}` already exists; refusing to overwrite it",
            path.display()
        ),
        None => Ok(()),
    }
}

/// Creates folder `dir` (and its parents) if missing.
pub fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}
