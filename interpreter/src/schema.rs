//! Resource types and their CUE schemas: which types exist, what their fields mean, and
//! validation of every emitted resource against its type (through real CUE, `cue-rs`).
//!
//! The registry is built from the providers' `manifest.toml` + `schema.cue` (embedded at
//! build time, see `build.rs`); the CUE schemas are the single source of truth for fields,
//! allowed values, defaults and docs.

mod docs;
mod registry;
mod validate;

pub use docs::{FieldDoc, TypeDoc};
pub use registry::{META_KEYWORDS, Registry, ResourceType};
pub use validate::{FieldError, Validator, parse_error as parse_cue_error};
