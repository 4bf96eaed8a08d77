//! HTTP requests from the controller, for probes (capability `net:http`).

use crate::{ProviderError, Result};

pub use crate::bindings::froyo::provider::http::Response;

/// Sends one request from the controller; a status other than 2xx is a response, not an
/// error.
pub fn request(method: &str, url: &str, timeout_ms: u32) -> Result<Response> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::bindings::froyo::provider::http::request(method, url, timeout_ms)
            .map_err(|e| ProviderError::from(e).context(format_args!("{method} {url}")))
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = timeout_ms;
        Err(ProviderError::permanent(format!(
            "{method} {url}: HTTP is only available to a provider running in the engine"
        )))
    }
}
