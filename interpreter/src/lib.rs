//! OpenFroyo: Starlark playbooks → a CUE-validated resource graph → plan → apply.
//!
//! The flow follows the modules: [`eval`] runs the playbook and records what it declares,
//! [`schema`] validates every resource with its type's CUE schema, [`graph`] holds the
//! result, and [`check`] ties them together for `froyo check` / `froyo graph`. See
//! `ARCHITECTURE.md` at the repository root for the map and the invariants.

pub mod apply;
pub mod check;
pub mod cli;
pub mod diag;
pub mod engine;
pub mod error;
pub mod eval;
pub mod events;
pub mod facts;
pub mod frontend_cue;
pub mod graph;
pub mod inventory;
pub mod lsp_bridge;
pub mod onboard;
pub mod plan;
pub mod policy;
pub mod project;
pub mod provider_host;
pub mod queue;
pub mod schema;
pub mod secrets;
pub mod selector;
pub mod state;
pub mod transport;
pub mod util;

/// The stdlib modules and provider manifests/schemas embedded by `build.rs`.
pub mod bundled {
    include!(concat!(env!("OUT_DIR"), "/bundled.rs"));
}

pub use error::Error;
