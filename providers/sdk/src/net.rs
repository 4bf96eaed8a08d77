//! TCP connections from the controller, for probes (capability `net:tcp`); a connection
//! from the target is [`crate::runner::net_connect`].

use crate::{ProviderError, Result};

/// Connects to `host:port` from the controller and closes the connection; returns the
/// milliseconds it took. A refused or timed-out connection is a `transient` error.
pub fn tcp_connect(host: &str, port: u16, timeout_ms: u32) -> Result<u32> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::froyo::provider::net::tcp_connect(host, port, timeout_ms)
            .map_err(|e| ProviderError::from(e).context(format_args!("connect {host}:{port}")))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = timeout_ms;
        Err(ProviderError::permanent(format!(
            "connect {host}:{port}: TCP is only available to a provider running in the engine"
        )))
    }
}
