//! The provider SDK: lets a provider be ordinary Rust instead of hand-written WIT glue.
//!
//! A provider implements [`Provider`] with plain Rust types and SDK errors, then exports
//! itself with [`export_provider!`]:
//!
//! ```
//! use froyo_provider_sdk::{Actual, ApplyResult, Description, Operation, Provider, Resource, Result};
//!
//! struct Noop;
//!
//! impl Provider for Noop {
//!     fn describe() -> Description {
//!         Description { name: "noop".into(), version: "0.1.0".into(), types: vec!["noop::thing".into()] }
//!     }
//!     fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
//!         Ok(resources.into_iter().map(|r| Actual { id: r.id, state: "null".into() }).collect())
//!     }
//!     fn diff(_desired: Resource, _actual: Actual) -> Result<Vec<Operation>> {
//!         Ok(Vec::new())
//!     }
//!     fn apply(_op: Operation) -> Result<ApplyResult> {
//!         Ok(ApplyResult { changed: false, output: "{}".into() })
//!     }
//!     fn destroy(_resource: Resource) -> Result<ApplyResult> {
//!         Ok(ApplyResult { changed: false, output: "{}".into() })
//!     }
//! }
//!
//! froyo_provider_sdk::export_provider!(Noop);
//! # fn main() {}
//! ```
//!
//! Runner ops on the target are typed calls in [`runner`], logs go through [`log`], and
//! [`diff::unified_diff`] renders content changes for the plan. Everything except the
//! imports themselves is plain Rust that also builds and tests on the host target; there,
//! runner and HTTP calls fail with a permanent error and logs go to stderr.

pub mod diff;
pub mod error;
pub mod http;
pub mod log;
pub mod meta;
pub mod net;
pub mod runner;
pub mod shell;

/// The bindings generated from `providers/wit/provider.wit` (world `provider`).
///
/// Providers rarely need this module directly: the SDK re-exports the records and wraps
/// the imports. [`export_provider!`] uses its generated `export!` macro.
// Generated code, with the ABI's flattened parameter lists.
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "provider",
        pub_export_macro: true,
        default_bindings_module: "froyo_provider_sdk::bindings",
        additional_derives: [PartialEq],
    });
}

pub use bindings::froyo::provider::types::{
    Actual, ApplyResult, Description, ErrorClass, Operation, Resource,
};
pub use error::{ProviderError, Result};

/// Resource records are shared with the host, so they carry no Rust conveniences of their
/// own beyond the ones below.
impl Resource {
    /// The resource's config parsed into the provider's own type (see [`config`]).
    pub fn config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        config(self)
    }
}

/// Parses a resource's config JSON (schema defaults already filled by the engine) into the
/// provider's own struct. A mismatch is a permanent error naming the resource.
pub fn config<T: serde::de::DeserializeOwned>(resource: &Resource) -> Result<T> {
    serde_json::from_str(&resource.config).map_err(|e| {
        ProviderError::permanent(format!(
            "invalid config for `{}` ({}): {e}",
            resource.id, resource.type_name
        ))
    })
}

/// What a provider implements: the exports of the `provider` world with SDK errors.
///
/// The functions take no `self`: a provider is stateless between calls (the host may use
/// a fresh instance for every call).
pub trait Provider {
    /// Name, version and resource types of this provider.
    fn describe() -> Description;
    /// The actual state of many resources of one host, in as few runner calls as possible.
    fn read(resources: Vec<Resource>) -> Result<Vec<Actual>>;
    /// What to do to turn `actual` into the desired resource (empty: nothing).
    fn diff(desired: Resource, actual: Actual) -> Result<Vec<Operation>>;
    /// Carries out one operation.
    fn apply(op: Operation) -> Result<ApplyResult>;
    /// Removes a resource the engine no longer manages (`--prune`).
    fn destroy(resource: Resource) -> Result<ApplyResult>;
}

impl<T: Provider> bindings::Guest for T {
    fn describe() -> Description {
        T::describe()
    }

    fn read(resources: Vec<Resource>) -> std::result::Result<Vec<Actual>, bindings::ProviderError> {
        T::read(resources).map_err(Into::into)
    }

    fn diff(
        desired: Resource,
        actual: Actual,
    ) -> std::result::Result<Vec<Operation>, bindings::ProviderError> {
        T::diff(desired, actual).map_err(Into::into)
    }

    fn apply(op: Operation) -> std::result::Result<ApplyResult, bindings::ProviderError> {
        T::apply(op).map_err(Into::into)
    }

    fn destroy(resource: Resource) -> std::result::Result<ApplyResult, bindings::ProviderError> {
        T::destroy(resource).map_err(Into::into)
    }
}

/// Exports a [`Provider`] implementation as the component's `provider` world.
///
/// Use it once, at the top level of the provider's `cdylib` crate:
/// `froyo_provider_sdk::export_provider!(MyProvider);`
///
/// On other targets than wasm32 it only checks that the type implements [`Provider`]: the
/// exports are plain C symbols named after the world's functions (`read`, …), which on
/// the host would take the place of libc's and break the provider's unit tests.
#[macro_export]
macro_rules! export_provider {
    ($provider:ident) => {
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::export!($provider with_types_in $crate::bindings);
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn() -> $crate::Description = <$provider as $crate::Provider>::describe;
    };
}
