//! `froyo backup FILE` / `froyo restore FILE`: a consistent hot copy of the project's
//! state (taken while other runs may write), and back.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::Error;
use crate::state::{SqliteStore, Store};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist).
    file: PathBuf,
}

fn store() -> Result<SqliteStore, Error> {
    let project = super::cwd_project()?;
    SqliteStore::open_project(&project.root)
}

pub fn backup(args: &BackupArgs) -> Result<ExitCode, Error> {
    let store = store()?;
    store.backup(&args.file)?;
    store.audit("backup", &serde_json::json!({"to": args.file}))?;
    say!("State copied to {}.", args.file.display());
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: &BackupArgs) -> Result<ExitCode, Error> {
    let store = store()?;
    // Nobody may write while the state is replaced.
    let lock = store.lock("restore")?;
    store.restore(&args.file, &lock)?;
    store.audit("restore", &serde_json::json!({"from": args.file}))?;
    say!("State restored from {}.", args.file.display());
    Ok(ExitCode::SUCCESS)
}
