//! Facts (spec §6): gathered lazily from each target's runner session, once per host per
//! run, and cached for the rest of the run.
//!
//! Evaluation is synchronous Starlark running on a blocking thread; a fact lookup from a
//! playbook blocks that thread on the async session (never a runtime worker thread).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value as Json;

use crate::inventory::{Inventory, Target};
use crate::transport::{Connector, Session, TargetError};

/// The facts a runner can collect.
pub const KNOWN: &[&str] = &["os.basic", "hw.cpu", "net.ifaces", "pkg.manifest"];

/// Facts by host, for evaluation (`host.facts.*`).
pub trait FactSource: Send + Sync {
    /// One fact (`os.basic`) of one target, or why it could not be had.
    fn fact(&self, host: &str, fact: &str) -> Result<Json, TargetError>;

    /// One fact of several targets (in the order given); sources that can, gather them
    /// concurrently.
    fn fact_of_many(&self, hosts: &[String], fact: &str) -> Vec<Result<Json, TargetError>> {
        hosts.iter().map(|h| self.fact(h, fact)).collect()
    }
}

/// A Ctrl-C for work that blocks on targets (the REPL): once raised, fact queries in
/// flight end with an "interrupted" error and are not cached.
#[derive(Debug, Default)]
pub struct Interrupt {
    raised: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Interrupt {
    pub fn raise(&self) {
        self.raised.store(true, std::sync::atomic::Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    pub fn reset(&self) {
        self.raised
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Resolves once [`raise`](Self::raise) was called (at once if it already was).
    pub async fn raised(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_raised() {
                return;
            }
            notified.await;
        }
    }
}

/// A session being opened or open, shared by everyone who asked for it.
type SessionCell = Arc<tokio::sync::OnceCell<Arc<Session>>>;

/// One runner session per target, opened on first use and shared by everyone in the run.
pub struct Sessions {
    connector: Connector,
    inventory: Inventory,
    r#become: bool,
    /// By target name and whether the runner runs with `become`.
    open: tokio::sync::Mutex<HashMap<(String, bool), SessionCell>>,
}

impl Sessions {
    pub fn new(connector: Connector, inventory: Inventory, r#become: bool) -> Self {
        Sessions {
            connector,
            inventory,
            r#become,
            open: Default::default(),
        }
    }

    pub fn target(&self, name: &str) -> Option<&Target> {
        self.inventory.targets.iter().find(|t| t.name == name)
    }

    /// The session of `name`, opening it if needed (concurrent callers share one open).
    pub async fn get(&self, name: &str) -> Result<Arc<Session>, TargetError> {
        self.get_as(name, self.r#become).await
    }

    /// The session of `name` whose runner runs with `become` (root through `sudo -n`) or
    /// not: a host whose resources ask for `become` gets a second session if facts were
    /// read over a plain one.
    pub async fn get_as(&self, name: &str, r#become: bool) -> Result<Arc<Session>, TargetError> {
        let cell = self
            .open
            .lock()
            .await
            .entry((name.to_owned(), r#become))
            .or_default()
            .clone();
        let target = self
            .target(name)
            .ok_or_else(|| TargetError::new(name, "no such target in the inventory"))?
            .clone();
        cell.get_or_try_init(|| async {
            self.connector.open(&target, r#become).await.map(Arc::new)
        })
        .await
        .cloned()
    }

    /// Closes every open session (the runners exit and are gone).
    pub async fn close_all(&self) {
        let cells: Vec<_> = self.open.lock().await.drain().map(|(_, c)| c).collect();
        for cell in cells {
            if let Some(s) = Arc::try_unwrap(cell).ok().and_then(|c| c.into_inner())
                && let Ok(session) = Arc::try_unwrap(s)
            {
                session.close().await;
            }
        }
    }
}

/// Collects facts over [`Sessions`] with a per-run cache, and optionally a cache in the
/// state that outlives the run (spec §6), valid for a TTL and forgotten for a host as
/// soon as an apply changes something on it.
pub struct Facts {
    pub sessions: Arc<Sessions>,
    cache: Mutex<HashMap<(String, String), Result<Json, TargetError>>>,
    runtime: tokio::runtime::Handle,
    stored: Option<(Arc<dyn crate::state::Store + Send + Sync>, u64)>,
    interrupt: Option<Arc<Interrupt>>,
}

impl Facts {
    pub fn new(sessions: Arc<Sessions>, runtime: tokio::runtime::Handle) -> Self {
        Facts {
            sessions,
            cache: Mutex::default(),
            runtime,
            stored: None,
            interrupt: None,
        }
    }

    /// Queries end early with an error when `interrupt` is raised.
    pub fn with_interrupt(mut self, interrupt: Arc<Interrupt>) -> Self {
        self.interrupt = Some(interrupt);
        self
    }

    /// `collect` of one fact, cut short by the interrupt.
    async fn collect_one(&self, host: &str, fact: &str) -> Result<Json, TargetError> {
        let query = async {
            self.collect(host, &[fact]).await.and_then(|mut m| {
                m.remove(fact).ok_or_else(|| {
                    TargetError::new(host, format!("the runner returned no `{fact}`"))
                })
            })
        };
        match &self.interrupt {
            None => query.await,
            Some(i) => tokio::select! {
                r = query => r,
                () = i.raised() => Err(TargetError::new(host, format!("interrupted while gathering `{fact}`"))),
            },
        }
    }

    /// A cached fact (this run's cache, then the state's), if any.
    fn cached(&self, host: &str, fact: &str) -> Option<Result<Json, TargetError>> {
        if let Some(v) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(host.to_owned(), fact.to_owned()))
        {
            return Some(v.clone());
        }
        if let Some((store, _)) = &self.stored
            && let Ok(Some(v)) = store.fact(host, fact)
        {
            self.remember(host, fact, &Ok(v.clone()));
            return Some(Ok(v));
        }
        None
    }

    /// Caches a result, unless it was cut short by the interrupt (asking again must work).
    fn remember(&self, host: &str, fact: &str, result: &Result<Json, TargetError>) {
        if result.is_err() && self.interrupt.as_ref().is_some_and(|i| i.is_raised()) {
            return;
        }
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((host.to_owned(), fact.to_owned()), result.clone());
    }

    /// Also keeps facts in `store` for `ttl_secs` (0: not at all).
    pub fn with_store(
        mut self,
        store: Arc<dyn crate::state::Store + Send + Sync>,
        ttl_secs: u64,
    ) -> Self {
        if ttl_secs > 0 {
            self.stored = Some((store, ttl_secs));
        }
        self
    }

    /// Several facts of one target in one round trip.
    pub async fn collect(
        &self,
        host: &str,
        facts: &[&str],
    ) -> Result<serde_json::Map<String, Json>, TargetError> {
        let session = self.sessions.get(host).await?;
        let result = session
            .call(
                "facts.collect",
                serde_json::json!({ "facts": facts }),
                Duration::from_secs(120),
            )
            .await
            .map_err(|e| TargetError::new(host, format!("collecting facts failed: {e}")))?;
        let map = match result {
            Json::Object(m) => m,
            other => return Err(TargetError::new(host, format!("unexpected facts: {other}"))),
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in &map {
            cache.insert((host.to_owned(), k.clone()), Ok(v.clone()));
            if let Some((store, ttl)) = &self.stored
                && let Err(e) = store.put_fact(host, k, v, *ttl)
            {
                tracing::debug!("not caching fact {k} of {host}: {e}");
            }
        }
        Ok(map)
    }
}

impl FactSource for Facts {
    fn fact(&self, host: &str, fact: &str) -> Result<Json, TargetError> {
        if let Some(v) = self.cached(host, fact) {
            return v;
        }
        let result = self.runtime.block_on(self.collect_one(host, fact));
        self.remember(host, fact, &result);
        result
    }

    fn fact_of_many(&self, hosts: &[String], fact: &str) -> Vec<Result<Json, TargetError>> {
        let mut out: Vec<Option<Result<Json, TargetError>>> =
            hosts.iter().map(|h| self.cached(h, fact)).collect();
        let missing: Vec<usize> = (0..hosts.len()).filter(|&i| out[i].is_none()).collect();
        let fetched = self.runtime.block_on(futures::future::join_all(
            missing.iter().map(|&i| self.collect_one(&hosts[i], fact)),
        ));
        for (i, r) in missing.into_iter().zip(fetched) {
            self.remember(&hosts[i], fact, &r);
            out[i] = Some(r);
        }
        out.into_iter()
            .map(|r| r.expect("every host answered"))
            .collect()
    }
}
