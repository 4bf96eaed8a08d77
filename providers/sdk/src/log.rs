//! Structured logs into the engine's tracing, always allowed. Outside the engine (unit
//! tests on the host target) they go to stderr.

#[cfg(target_arch = "wasm32")]
use crate::bindings::froyo::provider::log::{Level, log};

/// Detail for `--verbose` runs.
pub fn debug(message: &str) {
    #[cfg(target_arch = "wasm32")]
    log(Level::Debug, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("debug: {message}");
}

/// Progress worth seeing in a normal run.
pub fn info(message: &str) {
    #[cfg(target_arch = "wasm32")]
    log(Level::Info, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("info: {message}");
}

/// Something surprising that did not fail the call.
pub fn warn(message: &str) {
    #[cfg(target_arch = "wasm32")]
    log(Level::Warn, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("warn: {message}");
}
