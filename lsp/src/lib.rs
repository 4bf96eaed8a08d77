//! The OpenFroyo language server: `starlark_lsp` for navigation and Starlark-level
//! completion, with a proxy in front of it that adds what only OpenFroyo knows (resource
//! types and their CUE fields, the bundled stdlib, evaluation + schema diagnostics).
//!
//! This crate never depends on the interpreter: everything OpenFroyo-specific comes
//! through the [`Analyzer`] trait, which the `froyo` crate implements
//! (`interpreter/src/lsp_bridge.rs`) and hands to [`serve`] for `froyo lsp`.

mod context;
mod diagnostics;
mod features;
mod position;
mod proxy;
mod scan;
mod stdlib;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use starlark::codemap::FileSpan;
pub use starlark::docs::DocModule;

/// Everything the server needs to know about OpenFroyo, implemented by the interpreter.
///
/// Every method is called from a server thread and must be cheap enough to answer an
/// editor request, except [`Analyzer::check`], which runs on the debounced diagnostics
/// thread.
pub trait Analyzer: Send + Sync + 'static {
    /// Evaluates and validates `text` as the contents of the playbook `path`,
    /// hermetically: no target is contacted, and findings that only exist because facts
    /// are unknown in the editor are left out.
    fn check(&self, path: &Path, text: &str) -> Vec<Finding>;
    /// The resource types a playbook at `path` can declare (its project may add providers).
    fn resource_types(&self, path: &Path) -> Vec<ResourceTypeInfo>;
    /// The bundled stdlib: `(module file name, source)`, e.g. `("linux.star", "...")`.
    fn stdlib(&self) -> Vec<(String, String)>;
    /// The documentation of the global built-ins.
    fn builtins(&self) -> DocModule;
    /// Resolves a `load()` path that is not `@stdlib//…` (`//x.star`, `./x.star`) from
    /// the file `current`.
    fn resolve_load(&self, path: &str, current: &Path) -> Option<PathBuf>;
    /// A version string that changes whenever the bundled stdlib may have changed.
    fn version(&self) -> String;
    /// The Starlark dialect playbooks are parsed with.
    fn dialect(&self) -> starlark::syntax::Dialect;
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Hint,
}

/// A location an analyzer reports: a file (an absolute path, or `@stdlib//NAME.star`)
/// and a span into the text it analyzed.
#[derive(Debug, Clone)]
pub struct Spot {
    pub file: String,
    pub span: FileSpan,
    pub message: String,
}

/// One diagnostic of [`Analyzer::check`].
#[derive(Debug, Clone)]
pub struct Finding {
    /// The stable code, e.g. `E-SCHEMA`.
    pub code: String,
    pub severity: Severity,
    pub message: String,
    pub primary: Option<Spot>,
    /// More locations, shown as related information.
    pub related: Vec<Spot>,
    pub help: String,
}

/// A resource type with its schema's fields.
#[derive(Debug, Clone)]
pub struct ResourceTypeInfo {
    /// `provider.namespace::kind`, e.g. `linux.file::file`.
    pub name: String,
    pub summary: String,
    /// Markdown documentation (from the schema's comments).
    pub doc: String,
    pub fields: Vec<FieldInfo>,
}

/// A field of a resource type.
#[derive(Debug, Clone)]
pub struct FieldInfo {
    pub name: String,
    /// The CUE type, e.g. `string | *"0644"`.
    pub cue_type: String,
    pub default: Option<String>,
    pub required: bool,
    pub doc: String,
}

/// The crate's error: what stops the server before or while it serves.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    /// The stdio connection or the LSP handshake failed.
    #[error("language server protocol error: {0}")]
    #[diagnostic(code(froyo_lsp::protocol))]
    Protocol(String),
    /// The bundled stdlib could not be written to its cache directory.
    #[error("cannot write the stdlib cache `{path}`: {source}")]
    #[diagnostic(
        code(froyo_lsp::cache),
        help("set `XDG_CACHE_HOME` to a writable directory")
    )]
    Cache {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Serves the language server protocol on stdin/stdout until the client says `exit`.
pub fn serve(analyzer: Arc<dyn Analyzer>) -> Result<(), Error> {
    let (connection, io_threads) = lsp_server::Connection::stdio();
    proxy::run(connection, analyzer)?;
    io_threads
        .join()
        .map_err(|e| Error::Protocol(format!("stdio: {e}")))?;
    Ok(())
}
