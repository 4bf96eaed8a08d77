//! What plan, apply and drift share for one command: the project, its inventory and
//! registry, the provider host, one runner session per target, the async runtime that
//! drives the sessions, and the masker of secret values.
//!
//! Provider calls block (wasmtime runs synchronously and forwards runner ops by blocking
//! on the runtime), so they run on plain threads, never on the runtime's workers.

use std::sync::Arc;

use crate::facts::Sessions;
use crate::inventory::Inventory;
use crate::project::Project;
use crate::provider_host::{Limits, ProviderHost};
use crate::schema::Registry;
use crate::secrets::Masker;
use crate::transport::{Connector, Session, TargetError};

pub struct Engine {
    pub project: Project,
    pub inventory: Inventory,
    pub registry: &'static Registry,
    pub providers: Arc<ProviderHost>,
    pub sessions: Arc<Sessions>,
    pub runtime: tokio::runtime::Handle,
    pub masker: Masker,
    /// Resources planned or applied at once, over all hosts.
    pub parallelism: usize,
    /// The project's state (`.froyo/state.db`, or the server of `[state] url`).
    pub store: Arc<dyn crate::state::Store + Send + Sync>,
}

/// How long facts stay cached in the state unless `froyo.toml` says otherwise.
pub const DEFAULT_FACTS_TTL_SECS: u64 = 600;

impl Engine {
    pub fn new(
        project: Project,
        inventory: Inventory,
        runtime: tokio::runtime::Handle,
        parallelism: usize,
    ) -> Result<Engine, crate::Error> {
        let store = crate::state::open(&project)?;
        Engine::with_store(project, inventory, runtime, parallelism, store)
    }

    /// An engine on a store opened already (a worker's, from `--state`).
    pub fn with_store(
        project: Project,
        inventory: Inventory,
        runtime: tokio::runtime::Handle,
        parallelism: usize,
        store: Arc<dyn crate::state::Store + Send + Sync>,
    ) -> Result<Engine, crate::Error> {
        let masker = Masker::for_project(&project.root);
        let registry = Registry::for_project(&project)?;
        let mut providers = ProviderHost::for_project(&project, Limits::default())?;
        providers.runtime = Some(runtime.clone());
        let sessions = Arc::new(Sessions::new(
            Connector::for_project(&project),
            inventory.clone(),
            false,
        ));
        Ok(Engine {
            project,
            inventory,
            registry,
            providers: Arc::new(providers),
            sessions,
            runtime,
            masker,
            parallelism: parallelism.max(1),
            store,
        })
    }

    /// The runner session of `target` (opened on first use), as root when `become`.
    /// Blocks: call it from a plain thread.
    pub fn session(&self, target: &str, r#become: bool) -> Result<Arc<Session>, TargetError> {
        self.runtime
            .block_on(self.sessions.get_as(target, r#become))
    }

    /// The facts of this run, gathered over the engine's sessions.
    pub fn facts(&self) -> Arc<crate::facts::Facts> {
        Arc::new(crate::facts::Facts::new(
            self.sessions.clone(),
            self.runtime.clone(),
        ))
    }

    /// The provider that implements `type_name`.
    pub fn provider_of(&self, type_name: &str) -> Option<&str> {
        self.registry.get(type_name).map(|t| t.provider.as_str())
    }

    /// Closes every session (runners exit and delete themselves).
    pub fn close(&self) {
        self.runtime.block_on(self.sessions.close_all());
    }
}
