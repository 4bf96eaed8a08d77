//! The WebAssembly provider host: providers hold the domain logic (how to read a package's
//! state, diff a file, start a service) and run sandboxed in wasmtime as components of the
//! `froyo:provider` world (`providers/wit/provider.wit`).
//!
//! A built-in provider comes compiled to native code at build time (`build.rs`, with the
//! engine configuration of `engine_config.rs`) and is deserialised and pre-instantiated on
//! its first call, so a run pays only for the providers it uses and nobody's first run
//! compiles anything; an extra provider is compiled when it is loaded, so a bad one fails
//! early, and cached per user (`$XDG_CACHE_HOME/froyo/providers`). Every call gets
//! a fresh store with a fuel budget and a memory limit, WASI without preopens, environment,
//! arguments or sockets, and imports that check the manifest's capabilities before a runner
//! op is forwarded to the target. A provider's domain error is a value reported with its
//! class; a trap (exhausted limit, undeclared capability, guest bug) aborts the call and
//! leaves the host working.

mod engine_config;
mod http;
mod imports;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder, Trap};
use wasmtime_wasi::WasiCtxBuilder;

pub use imports::froyo::provider::types::{Actual, ApplyResult, Description, Operation, Resource};
use imports::{CallState, Provider, ProviderPre};
pub use imports::{CapabilityDenied, ErrorClass, ProviderError};

use crate::diag::{Code, Diagnostic};
use crate::project::{Project, ProviderFiles};
use crate::transport::Session;

/// Per-call limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel (≈ WebAssembly instructions) per call; about 8·10⁹ per second here.
    pub fuel: u64,
    /// Linear memory per instance, in bytes.
    pub memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 40_000_000_000,
            memory_bytes: 256 << 20,
        }
    }
}

/// A provider call that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("provider `{provider}`: {message}")]
pub struct ProviderFailure {
    pub provider: String,
    /// `Some` for a domain error the provider returned; `None` for a trap.
    pub class: Option<ErrorClass>,
    pub message: String,
}

impl ProviderFailure {
    fn trap(provider: &str, message: impl Into<String>) -> Self {
        ProviderFailure {
            provider: provider.to_owned(),
            class: None,
            message: message.into(),
        }
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        let class = match self.class {
            Some(ErrorClass::Transient) => "transient",
            Some(ErrorClass::Throttled) => "throttled",
            Some(ErrorClass::Conflict) => "conflict",
            Some(ErrorClass::Permanent) | None => "permanent",
        };
        Diagnostic::new(Code::Provider, format!("{self} ({class})"))
    }
}

struct Loaded {
    capabilities: Vec<String>,
    /// Compiled and linked on first use (a run pays only for the providers it calls).
    pre: std::sync::OnceLock<Result<ProviderPre<CallState>, ProviderFailure>>,
    /// The component, kept until it is compiled.
    wasm: &'static [u8],
    /// Its native code, made by `build.rs` for [`crate::bundled::PRECOMPILED_ENGINE`]
    /// (empty for extra providers).
    precompiled: &'static [u8],
}

/// The engine, the linker and every loaded provider.
pub struct ProviderHost {
    engine: Engine,
    /// [`engine_config::compatibility_hash`] of `engine`.
    compatibility: u64,
    linker: Linker<CallState>,
    providers: BTreeMap<String, Loaded>,
    pub limits: Limits,
    cache_dir: Option<PathBuf>,
    /// The runtime that drives runner sessions. Provider calls block on it, so they must
    /// run on a blocking thread, never on one of its workers.
    pub runtime: Option<tokio::runtime::Handle>,
}

impl std::fmt::Debug for ProviderHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderHost")
            .field("providers", &self.providers.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn check_capabilities(name: &str, capabilities: &[String]) -> Result<(), ProviderFailure> {
    match capabilities
        .iter()
        .find(|c| !KNOWN_CAPABILITIES.contains(&c.as_str()))
    {
        Some(c) => Err(ProviderFailure::trap(
            name,
            format!(
                "unknown capability `{c}` (known: {})",
                KNOWN_CAPABILITIES.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

impl ProviderHost {
    /// A host with no providers. `cache_dir` keeps compiled providers between runs.
    pub fn new(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, ProviderFailure> {
        let engine = Engine::new(&engine_config::engine_config())
            .map_err(|e| ProviderFailure::trap("host", format!("cannot start wasmtime: {e}")))?;
        let mut linker: Linker<CallState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| ProviderFailure::trap("host", e.to_string()))?;
        Provider::add_to_linker::<CallState, HasSelf<CallState>>(&mut linker, |s| s)
            .map_err(|e| ProviderFailure::trap("host", e.to_string()))?;
        Ok(ProviderHost {
            compatibility: engine_config::compatibility_hash(&engine),
            engine,
            linker,
            providers: BTreeMap::new(),
            limits,
            cache_dir,
            runtime: None,
        })
    }

    /// The built-in providers (compiled from the workspace, embedded in `froyo`).
    pub fn builtin(limits: Limits, cache_dir: Option<PathBuf>) -> Result<Self, ProviderFailure> {
        let mut host = ProviderHost::new(limits, cache_dir)?;
        for (name, manifest, _, wasm) in crate::bundled::PROVIDERS {
            if !wasm.is_empty() {
                let capabilities =
                    manifest_capabilities(manifest).map_err(|e| ProviderFailure::trap(name, e))?;
                check_capabilities(name, &capabilities)?;
                let precompiled = crate::bundled::PRECOMPILED
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(&[][..], |(_, code)| *code);
                host.providers.insert(
                    (*name).to_owned(),
                    Loaded {
                        capabilities,
                        pre: std::sync::OnceLock::new(),
                        wasm,
                        precompiled,
                    },
                );
            }
        }
        Ok(host)
    }

    /// Loads a provider from its component bytes with the capabilities it declared.
    #[tracing::instrument(skip_all, fields(provider = name))]
    pub fn load(
        &mut self,
        name: &str,
        capabilities: Vec<String>,
        wasm: &[u8],
    ) -> Result<(), ProviderFailure> {
        check_capabilities(name, &capabilities)?;
        let component = self.compile(name, wasm)?;
        let pre = self.link(name, &component)?;
        self.providers.insert(
            name.to_owned(),
            Loaded {
                capabilities,
                pre: std::sync::OnceLock::from(Ok(pre)),
                wasm: &[],
                precompiled: &[],
            },
        );
        Ok(())
    }

    /// Pre-instantiates a component.
    fn link(
        &self,
        name: &str,
        component: &Component,
    ) -> Result<ProviderPre<CallState>, ProviderFailure> {
        self.linker
            .instantiate_pre(component)
            .and_then(ProviderPre::new)
            .map_err(|e| {
                ProviderFailure::trap(name, format!("does not fit the froyo:provider world: {e}"))
            })
    }

    /// The host for a project: the built-in providers and the extra ones its `froyo.toml`
    /// pins, with compiled extra providers cached in [`user_cache_dir`].
    pub fn for_project(project: &Project, limits: Limits) -> Result<Self, crate::error::Error> {
        Self::for_project_with_cache(project, limits, user_cache_dir())
    }

    /// [`ProviderHost::for_project`] with compiled extra providers cached in `cache`.
    pub fn for_project_with_cache(
        project: &Project,
        limits: Limits,
        cache: Option<PathBuf>,
    ) -> Result<Self, crate::error::Error> {
        let fail = |path: &Path, e: ProviderFailure| crate::error::Error::Provider {
            path: path.to_owned(),
            message: e.message,
            help: "see docs/providers.md".into(),
        };
        let mut host =
            ProviderHost::builtin(limits, cache).map_err(|e| fail(Path::new("built-in"), e))?;
        for p in project.extra_providers()? {
            host.load_files(&p).map_err(|e| fail(&p.dir, e))?;
        }
        Ok(host)
    }

    /// Loads an extra provider whose files matched their pin; returns its name.
    pub fn load_files(&mut self, p: &ProviderFiles) -> Result<String, ProviderFailure> {
        let shown = p.dir.display().to_string();
        let name = manifest_name(&p.manifest).map_err(|e| ProviderFailure::trap(&shown, e))?;
        if self.providers.contains_key(&name) {
            return Err(ProviderFailure::trap(
                &name,
                "is already loaded (a built-in provider's name cannot be reused)",
            ));
        }
        self.load(
            &name,
            manifest_capabilities(&p.manifest).map_err(|e| ProviderFailure::trap(&shown, e))?,
            &p.wasm,
        )?;
        Ok(name)
    }

    /// The native code of a built-in provider: the embedded precompiled component when it
    /// was made for this engine, else compiled here (and cached).
    fn builtin_component(&self, name: &str, loaded: &Loaded) -> Result<Component, ProviderFailure> {
        if !loaded.precompiled.is_empty() {
            if self.compatibility == crate::bundled::PRECOMPILED_ENGINE {
                // SAFETY: the bytes are embedded in this binary by its build script, made
                // by `precompile_component` with the configuration of `engine_config.rs`
                // (the same compatibility hash as this engine); `deserialize` checks the
                // wasmtime version and configuration again.
                return unsafe { Component::deserialize(&self.engine, loaded.precompiled) }
                    .map_err(|e| {
                        ProviderFailure::trap(
                            name,
                            format!("its embedded native code does not load ({e}); this froyo binary is broken, rebuild it"),
                        )
                    });
            }
            // The binary runs on a CPU (or was built with a wasmtime setup) other than the
            // one it was built for.
            tracing::warn!(
                provider = name,
                "the embedded native code was made for another CPU or wasmtime configuration; compiling the provider"
            );
        }
        self.compile(name, loaded.wasm)
    }

    fn compile(&self, name: &str, wasm: &[u8]) -> Result<Component, ProviderFailure> {
        let cached = self.cache_dir.as_ref().map(|dir| {
            dir.join(format!(
                "{}-{:016x}.cwasm",
                crate::util::sha256_hex(wasm),
                self.compatibility
            ))
        });
        if let Some(path) = &cached
            && path.is_file()
        {
            // SAFETY: the file is one this host serialized itself (its name holds the
            // source's sha256 and the engine's compatibility hash), in the user's private
            // cache; `deserialize_file` checks the engine version and configuration too.
            match unsafe { Component::deserialize_file(&self.engine, path) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(provider = name, "ignoring a stale compiled provider: {e}")
                }
            }
        }
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| ProviderFailure::trap(name, format!("is not a valid component: {e}")))?;
        if let Some(path) = cached
            && let Ok(bytes) = component.serialize()
        {
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            let written = path
                .parent()
                .map(create_private_dir)
                .transpose()
                .and_then(|_| std::fs::write(&tmp, bytes))
                .and_then(|_| std::fs::rename(&tmp, &path));
            if let Err(e) = written {
                tracing::debug!(provider = name, "not caching the compiled provider: {e}");
            }
        }
        Ok(component)
    }

    pub fn providers(&self) -> impl Iterator<Item = &str> {
        self.providers.keys().map(String::as_str)
    }

    /// Runs `f` on a fresh instance of `provider` under the call limits.
    fn call<R>(
        &self,
        provider: &str,
        session: Option<Arc<Session>>,
        f: impl FnOnce(&Provider, &mut Store<CallState>) -> wasmtime::Result<Result<R, ProviderError>>,
    ) -> Result<R, ProviderFailure> {
        let loaded = self
            .providers
            .get(provider)
            .ok_or_else(|| ProviderFailure::trap(provider, "no such provider is loaded"))?;
        let wasi = WasiCtxBuilder::new()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(8)
            .tables(16)
            .memories(4)
            .trap_on_grow_failure(true)
            .build();
        let state = CallState {
            provider: provider.to_owned(),
            capabilities: loaded.capabilities.clone(),
            session,
            runtime: self
                .runtime
                .clone()
                .or_else(|| tokio::runtime::Handle::try_current().ok()),
            wasi,
            table: Default::default(),
            limits,
            runner_calls: 0,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|e| ProviderFailure::trap(provider, e.to_string()))?;
        let pre = loaded
            .pre
            .get_or_init(|| {
                let component = self.builtin_component(provider, loaded)?;
                self.link(provider, &component)
            })
            .as_ref()
            .map_err(Clone::clone)?;
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| trap_failure(provider, &e))?;
        let result = f(&instance, &mut store);
        let used = self
            .limits
            .fuel
            .saturating_sub(store.get_fuel().unwrap_or(0));
        froyo_telemetry::metrics::global().provider_call(provider, used);
        match result {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(ProviderFailure {
                provider: provider.to_owned(),
                class: Some(e.class),
                message: e.message,
            }),
            Err(e) => Err(trap_failure(provider, &e)),
        }
    }

    pub fn describe(&self, provider: &str) -> Result<Description, ProviderFailure> {
        self.call(provider, None, |p, s| p.call_describe(s).map(Ok))
    }

    #[tracing::instrument(name = "provider.read", skip_all, fields(provider, n = resources.len()))]
    pub fn read(
        &self,
        provider: &str,
        session: Option<Arc<Session>>,
        resources: &[Resource],
    ) -> Result<Vec<Actual>, ProviderFailure> {
        self.call(provider, session, |p, s| p.call_read(s, resources))
    }

    #[tracing::instrument(name = "provider.diff", skip_all, fields(provider, resource = %desired.id))]
    pub fn diff(
        &self,
        provider: &str,
        desired: &Resource,
        actual: &Actual,
    ) -> Result<Vec<Operation>, ProviderFailure> {
        self.call(provider, None, |p, s| p.call_diff(s, desired, actual))
    }

    #[tracing::instrument(name = "provider.apply", skip_all, fields(provider, resource = %op.id, op = %op.kind))]
    pub fn apply(
        &self,
        provider: &str,
        session: Option<Arc<Session>>,
        op: &Operation,
    ) -> Result<ApplyResult, ProviderFailure> {
        self.call(provider, session, |p, s| p.call_apply(s, op))
    }

    #[tracing::instrument(name = "provider.destroy", skip_all, fields(provider, resource = %resource.id))]
    pub fn destroy(
        &self,
        provider: &str,
        session: Option<Arc<Session>>,
        resource: &Resource,
    ) -> Result<ApplyResult, ProviderFailure> {
        self.call(provider, session, |p, s| p.call_destroy(s, resource))
    }
}

/// Where compiled extra providers are cached, shared by the user's projects:
/// `$XDG_CACHE_HOME/froyo/providers`, else `~/.cache/froyo/providers`; `None` (no cache)
/// without either, never a shared temporary directory, since the files hold native code.
pub fn user_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|d| !d.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("froyo").join("providers"))
}

/// Creates the cache directory readable by its owner only (it holds native code).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Capabilities a manifest may declare.
pub const KNOWN_CAPABILITIES: &[&str] = &[
    "runner:exec",
    "runner:file",
    "runner:net",
    "net:http",
    "net:tcp",
];

fn trap_failure(provider: &str, e: &wasmtime::Error) -> ProviderFailure {
    if let Some(denied) = e.downcast_ref::<CapabilityDenied>() {
        return ProviderFailure::trap(
            provider,
            format!(
                "refused: called `{}` without declaring `{}`",
                denied.import, denied.capability
            ),
        );
    }
    let message = match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            "stopped: it used up its CPU budget (fuel) for one call".to_owned()
        }
        Some(t) => format!("trapped: {t}"),
        None if format!("{e:?}").contains("growing memory") => {
            "stopped: it went over its memory limit".to_owned()
        }
        None => format!("failed: {e:#}"),
    };
    ProviderFailure::trap(provider, message)
}

fn manifest_value(manifest: &str) -> Result<toml::Value, String> {
    toml::from_str(manifest).map_err(|e| format!("manifest.toml: {e}"))
}

fn manifest_name(manifest: &str) -> Result<String, String> {
    manifest_value(manifest)?
        .get("provider")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .map(String::from)
        .ok_or_else(|| "manifest.toml has no [provider] name".to_owned())
}

/// The `capabilities = [...]` of a manifest (none when absent).
pub fn manifest_capabilities(manifest: &str) -> Result<Vec<String>, String> {
    let v = manifest_value(manifest)?;
    match v.get("capabilities") {
        None => Ok(Vec::new()),
        Some(toml::Value::Array(a)) => a
            .iter()
            .map(|c| {
                c.as_str()
                    .map(String::from)
                    .ok_or_else(|| "capabilities must be strings".to_owned())
            })
            .collect(),
        Some(_) => Err("capabilities must be a list of strings".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The native code `build.rs` embeds fits the run-time engine: the same compatibility
    /// hash, and every built-in provider loads from it. A drift between the build script's
    /// wasmtime (version, features, configuration) and this one fails here, not as a
    /// silent compile on a user's machine.
    #[test]
    fn builtin_providers_load_from_their_embedded_native_code() {
        let host = ProviderHost::builtin(Limits::default(), None).unwrap();
        assert_eq!(host.compatibility, crate::bundled::PRECOMPILED_ENGINE);
        let mut n = 0;
        for (name, _, _, wasm) in crate::bundled::PROVIDERS {
            if wasm.is_empty() {
                continue;
            }
            let loaded = &host.providers[*name];
            assert!(!loaded.precompiled.is_empty(), "{name}: no native code");
            host.builtin_component(name, loaded)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 2, "only {n} built-in providers with a component");
        host.describe("linux.file").unwrap();
    }
}
