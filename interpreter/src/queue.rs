//! The cluster profile's work distribution: `apply --queue` plans as in the solo profile,
//! then publishes one work item per (run, host) on NATS JetStream and follows the run
//! from the state ([`controller`]); `froyo worker` takes items, claims the host in the
//! state with the delivery's attempt number, and applies that host's part of the plan
//! through the usual transports ([`worker`]). The state must be shared (PostgreSQL):
//! it is where claims, fencing, results and events meet.
//!
//! Invariant: an item names the playbook and its inputs, never a secret or a resolved
//! config; a worker evaluates the same playbook from its own copy of the project and
//! refuses a host whose units differ from the controller's ([`digest`]).

pub mod controller;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use froyo_cluster::queue::{Queue, QueueConfig};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::plan::Unit;
use crate::project::Project;
use crate::state::{Location, PgStore};

/// The version of the work item format.
pub const ITEM_VERSION: u32 = 1;
/// The largest item a worker reads (an item is a few hundred bytes).
pub const MAX_ITEM_BYTES: usize = 1 << 20;
/// The environment variable that overrides `[queue] url`.
pub const QUEUE_URL_ENV: &str = "FROYO_QUEUE_URL";

/// One (run, host) to apply, as published.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub v: u32,
    pub run: i64,
    pub target: String,
    /// The playbook, relative to the project root.
    pub playbook: PathBuf,
    /// More `.cue` files of its package, relative to the root.
    #[serde(default)]
    pub more: Vec<PathBuf>,
    pub on: Option<String>,
    #[serde(default)]
    pub vars: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Play names in the order they run.
    pub plays: Vec<String>,
    /// [`digest`] of the host's units as the controller evaluated them.
    pub digest: String,
}

/// Where the queue is and how it times items.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    pub url: String,
    pub config: QueueConfig,
}

/// The queue of `project`: `flag` (`--queue`), else `FROYO_QUEUE_URL`, else `[queue] url`;
/// `None` when none is given (the solo profile).
pub fn settings(project: &Project, flag: Option<&str>) -> Result<Option<QueueSettings>, Error> {
    let q = &project.settings.queue;
    let url = flag
        .map(str::to_owned)
        .or_else(|| std::env::var(QUEUE_URL_ENV).ok().filter(|u| !u.is_empty()))
        .or_else(|| q.url.clone());
    let Some(url) = url else { return Ok(None) };
    let mut config = QueueConfig::default();
    if let Some(w) = &q.ack_wait {
        let ms = crate::util::parse_duration_ms(w).ok_or_else(|| Error::Queue {
            message: format!("`[queue] ack_wait = {w:?}` is not a duration"),
            help: "write it like \"30s\" or \"500ms\"".into(),
        })?;
        config.ack_wait = Duration::from_millis(ms.max(100));
    }
    if let Some(n) = q.max_deliver {
        config.max_deliver = n.max(1);
    }
    Ok(Some(QueueSettings { url, config }))
}

/// The project's state as the queue needs it: on PostgreSQL (`state` overrides the
/// project's `[state] url`). A SQLite state cannot be shared by processes on other
/// machines, so it is refused.
pub fn shared_state(project: &Project, state: Option<&str>) -> Result<Arc<PgStore>, Error> {
    let location = match state {
        Some(url) => Location::Postgres {
            url: url.to_owned(),
            namespace: crate::state::namespace(project),
        },
        None => crate::state::location(project),
    };
    match location {
        Location::Postgres { url, namespace } => Ok(Arc::new(PgStore::open(&url, &namespace)?)),
        Location::Sqlite(path) => Err(Error::Queue {
            message: format!(
                "the work queue needs a shared state, and this project's is the SQLite file `{}`",
                path.display()
            ),
            help: "put the state on PostgreSQL: `[state] url = \"postgres://…\"` in froyo.toml or FROYO_STATE_URL (`froyo state migrate --to URL` moves an existing state there)".into(),
        }),
    }
}

/// Connects to the queue, scoped to the project's namespace on the state server (so two
/// projects sharing one NATS server never take each other's items).
pub fn connect(settings: &QueueSettings, state: &PgStore) -> Result<Queue, Error> {
    Queue::connect(&settings.url, state.schema(), settings.config).map_err(|e| Error::Queue {
        message: e.to_string(),
        help: "start `nats-server -js` (JetStream on) and check the URL: nats://HOST:PORT (`froyo dev up` starts one for trying)".into(),
    })
}

/// A fingerprint of a host's units as evaluated (ids, types, plays, configs with secrets
/// as references): a worker whose copy of the project evaluates differently refuses the
/// host instead of applying something nobody reviewed.
pub fn digest(units: &[Unit]) -> String {
    let mut text = String::new();
    for u in units {
        let config = crate::util::sha256_hex(u.config.to_string().as_bytes());
        text.push_str(&format!(
            "{}\0{}\0{}\0{}\0{config}\n",
            u.id, u.type_name, u.play, u.handler
        ));
    }
    crate::util::sha256_hex(text.as_bytes())
}
