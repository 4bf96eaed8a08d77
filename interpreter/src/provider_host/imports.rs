//! The host side of the provider world: the generated bindings, the per-call store state,
//! and the imports a provider may call — each checked against the capabilities its
//! manifest declares before anything reaches the target.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::transport::{CallError, Session};

wasmtime::component::bindgen!({
    world: "provider",
    path: "../providers/wit",
    imports: { default: trappable },
});

pub use froyo::provider::types::ErrorClass;

/// What one provider call may use. A fresh one per store (per call).
pub struct CallState {
    pub provider: String,
    pub capabilities: Vec<String>,
    /// The runner session of the host this call is about (none: runner imports fail).
    pub session: Option<Arc<Session>>,
    pub runtime: Option<tokio::runtime::Handle>,
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    /// Runner calls made (round trips), for plan statistics.
    pub runner_calls: u64,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A capability check that failed: the call is aborted (a trap), not a domain error the
/// provider could ignore.
#[derive(Debug, thiserror::Error)]
#[error(
    "provider `{provider}` called `{import}` without declaring the capability `{capability}` in its manifest"
)]
pub struct CapabilityDenied {
    pub provider: String,
    pub import: String,
    pub capability: String,
}

impl CallState {
    fn require(&self, capability: &str, import: &str) -> wasmtime::Result<()> {
        if self.capabilities.iter().any(|c| c == capability) {
            Ok(())
        } else {
            Err(wasmtime::Error::new(CapabilityDenied {
                provider: self.provider.clone(),
                import: import.to_owned(),
                capability: capability.to_owned(),
            }))
        }
    }

    /// Forwards a runner op; blocks this (non-async) thread on the session.
    fn runner(
        &mut self,
        capability: &str,
        op: &str,
        args: String,
    ) -> wasmtime::Result<Result<String, ProviderError>> {
        self.require(capability, &format!("runner.{op}"))?;
        let (Some(session), Some(rt)) = (self.session.clone(), self.runtime.clone()) else {
            return Ok(Err(ProviderError {
                class: ErrorClass::Permanent,
                message: "no target session for this call".into(),
            }));
        };
        let args: serde_json::Value = match serde_json::from_str(&args) {
            Ok(v) => v,
            Err(e) => {
                return Ok(Err(ProviderError {
                    class: ErrorClass::Permanent,
                    message: format!("`{op}` arguments are not JSON: {e}"),
                }));
            }
        };
        self.runner_calls += 1;
        let result = rt.block_on(session.call(op, args, session.op_timeout));
        Ok(match result {
            Ok(v) => Ok(v.to_string()),
            Err(e) => Err(ProviderError {
                class: class_of(&e),
                message: e.to_string(),
            }),
        })
    }
}

fn class_of(e: &CallError) -> ErrorClass {
    use froyo_runner::protocol::ErrorClass as R;
    match e.class() {
        R::Transient => ErrorClass::Transient,
        R::Throttled => ErrorClass::Throttled,
        R::Conflict => ErrorClass::Conflict,
        R::Permanent => ErrorClass::Permanent,
    }
}

impl froyo::provider::types::Host for CallState {}

impl froyo::provider::runner::Host for CallState {
    fn exec(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:exec", "exec", args)
    }
    fn file_stat(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:file", "file.stat", args)
    }
    fn file_read(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:file", "file.read", args)
    }
    fn file_write(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:file", "file.write", args)
    }
    fn file_remove(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:file", "file.remove", args)
    }
    fn dir_ensure(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:file", "dir.ensure", args)
    }
    fn symlink_ensure(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:file", "symlink.ensure", args)
    }
    fn net_connect(&mut self, args: String) -> wasmtime::Result<Result<String, ProviderError>> {
        self.runner("runner:net", "net.connect", args)
    }
}

impl froyo::provider::http::Host for CallState {
    fn request(
        &mut self,
        method: String,
        url: String,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<froyo::provider::http::Response, ProviderError>> {
        self.require("net:http", "http.request")?;
        Ok(super::http::request(
            &method,
            &url,
            Duration::from_millis(u64::from(timeout_ms.max(1))),
        )
        .map(|(status, body)| froyo::provider::http::Response { status, body })
        .map_err(|message| ProviderError {
            class: ErrorClass::Transient,
            message,
        }))
    }
}

impl froyo::provider::net::Host for CallState {
    fn tcp_connect(
        &mut self,
        host: String,
        port: u16,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<u32, ProviderError>> {
        self.require("net:tcp", "net.tcp-connect")?;
        Ok(super::http::tcp_connect(
            &host,
            port,
            Duration::from_millis(u64::from(timeout_ms.max(1))),
        )
        .map(|d| u32::try_from(d.as_millis()).unwrap_or(u32::MAX))
        .map_err(|message| ProviderError {
            class: ErrorClass::Transient,
            message,
        }))
    }
}

impl froyo::provider::log::Host for CallState {
    fn log(&mut self, level: froyo::provider::log::Level, message: String) -> wasmtime::Result<()> {
        use froyo::provider::log::Level;
        let p = &self.provider;
        match level {
            Level::Debug => tracing::debug!(provider = %p, "{message}"),
            Level::Info => tracing::info!(provider = %p, "{message}"),
            Level::Warn => tracing::warn!(provider = %p, "{message}"),
        }
        Ok(())
    }
}
