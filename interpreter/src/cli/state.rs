//! `froyo state migrate --to postgres://…`: moves a project from the solo profile to the
//! cluster profile by copying its SQLite state into a PostgreSQL database, and proves the
//! copy (row counts and checksums per table, equal on both sides, or nothing is kept).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::Error;
use crate::state::{PgStore, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct StateArgs {
    #[command(subcommand)]
    command: StateCommand,
}

#[derive(Debug, Subcommand)]
enum StateCommand {
    /// Copy the project's SQLite state into a PostgreSQL database (the project's
    /// namespace there must be empty), verified by counts and checksums.
    Migrate {
        /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE`; FROYO_STATE_URL if not given
        /// (which keeps a password off the command line).
        #[arg(long, env = "FROYO_STATE_URL", hide_env_values = true)]
        to: String,
        /// The SQLite state to copy (default: the project's `.froyo/state.db`; a file from
        /// `froyo backup` works too).
        #[arg(long)]
        from: Option<PathBuf>,
    },
}

pub fn run(args: &StateArgs) -> Result<ExitCode, Error> {
    match &args.command {
        StateCommand::Migrate { to, from } => migrate(to, from.as_deref()),
    }
}

fn migrate(to: &str, from: Option<&std::path::Path>) -> Result<ExitCode, Error> {
    let project = super::cwd_project()?;
    let from = from
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| crate::state::state_dir(&project.root).join("state.db"));
    if !from.is_file() {
        return Err(Error::State {
            path: from,
            message: "no SQLite state to copy".into(),
        });
    }
    // No apply may write to either side while the copy runs.
    let source = SqliteStore::open(&from)?;
    let _source_lock = source.lock("state migrate")?;
    let namespace = crate::state::namespace(&project);
    let dest = PgStore::open(to, &namespace)?;
    let _dest_lock = dest.lock("state migrate")?;
    let sums = crate::state::sqlite_to_postgres(&from, &dest)?;
    let rows: u64 = sums.iter().map(|s| s.rows).sum();
    dest.audit(
        "state migrate",
        &serde_json::json!({
            "from": from,
            "tables": sums.iter().map(|s| serde_json::json!({
                "table": s.table, "rows": s.rows, "sha256": s.sha256,
            })).collect::<Vec<_>>(),
        }),
    )?;
    let mut out = String::new();
    for s in &sums {
        out.push_str(&format!("{:<17} {:>8}  {}\n", s.table, s.rows, s.sha256));
    }
    super::write_stdout(&out);
    eprintln!(
        "Copied {rows} rows into `{}` (namespace `{namespace}`, schema `{}`); every table's count and checksum match.\n\
         Use it from now on with `[state] url = \"…\"` in froyo.toml or FROYO_STATE_URL; {} stays as it was.",
        dest.shown_url(),
        dest.schema(),
        from.display()
    );
    Ok(ExitCode::SUCCESS)
}
