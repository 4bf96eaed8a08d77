//! Which store a project uses: `FROYO_STATE_URL`, else `[state] url` in `froyo.toml`,
//! names a PostgreSQL database (the cluster profile); without either the state is
//! `.froyo/state.db` (solo). Resolved once per command, here only.

use std::path::PathBuf;
use std::sync::Arc;

use super::{PgStore, Result, SqliteStore, Store};
use crate::project::Project;

/// The environment variable that overrides `[state] url`.
pub const STATE_URL_ENV: &str = "FROYO_STATE_URL";

/// Where the state of a project lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `.froyo/state.db` under the project root.
    Sqlite(PathBuf),
    /// A PostgreSQL database, and the project's namespace in it (`[state] namespace`,
    /// else `[project] name`, else the root directory's name).
    Postgres { url: String, namespace: String },
}

/// The project's namespace on a shared state server.
pub fn namespace(project: &Project) -> String {
    let s = &project.settings;
    s.state
        .namespace
        .clone()
        .or_else(|| s.project.name.clone())
        .or_else(|| {
            project
                .root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "project".into())
}

/// Where `project` keeps its state.
pub fn location(project: &Project) -> Location {
    let url = std::env::var(STATE_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| project.settings.state.url.clone());
    match url {
        Some(url) => Location::Postgres {
            url,
            namespace: namespace(project),
        },
        None => Location::Sqlite(super::state_dir(&project.root).join("state.db")),
    }
}

/// Opens (creating and migrating as needed) the project's store.
pub fn open(project: &Project) -> Result<Arc<dyn Store + Send + Sync>> {
    Ok(match location(project) {
        Location::Sqlite(_) => Arc::new(SqliteStore::open_project(&project.root)?),
        Location::Postgres { url, namespace } => Arc::new(PgStore::open(&url, &namespace)?),
    })
}

/// The project's store if it has one already (a SQLite file that exists, or a server);
/// for readers that must not create `.froyo/`.
pub fn open_existing(project: &Project) -> Result<Option<Arc<dyn Store + Send + Sync>>> {
    match location(project) {
        Location::Sqlite(path) if !path.is_file() => Ok(None),
        _ => open(project).map(Some),
    }
}
