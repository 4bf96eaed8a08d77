//! `froyo backup FILE` / `froyo restore FILE`: a consistent hot copy of the project's
//! state (taken while other runs may write), and back. A PostgreSQL state is backed up
//! into a SQLite file too; it is brought back with `froyo state migrate --to`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::error::Error;
use crate::state::{Location, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist).
    file: PathBuf,
}

pub fn backup(args: &BackupArgs) -> Result<ExitCode, Error> {
    let store = crate::state::open(&super::cwd_project()?)?;
    store.backup(&args.file)?;
    store.audit("backup", &serde_json::json!({"to": args.file}))?;
    say!("State copied to {}.", args.file.display());
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: &BackupArgs) -> Result<ExitCode, Error> {
    let project = super::cwd_project()?;
    if let Location::Postgres { url, .. } = crate::state::location(&project) {
        return Err(Error::StateServer {
            url: froyo_cluster::pg::redact_url(&url),
            message: "`froyo restore` replaces a SQLite state only".into(),
            help: "restore a backup into a new PostgreSQL namespace or database with `froyo state migrate --from FILE --to URL`".into(),
        });
    }
    // A damaged state (one that does not open, or fails its integrity check) is kept
    // aside and the backup goes into a new file: the one command that repairs a broken
    // state must not need the state to work. The backup is checked before anything moves.
    SqliteStore::check_backup(&args.file)?;
    if let Some(aside) = SqliteStore::set_aside_if_damaged(&project.root)? {
        say!(
            "The state was damaged; it is kept as {} and the backup replaces it.",
            aside.display()
        );
    }
    let store = SqliteStore::open_project(&project.root)?;
    // Nobody may write while the state is replaced.
    let lock = store.lock("restore")?;
    store.restore(&args.file, &lock)?;
    store.audit("restore", &serde_json::json!({"from": args.file}))?;
    say!("State restored from {}.", args.file.display());
    Ok(ExitCode::SUCCESS)
}
