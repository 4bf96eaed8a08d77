//! The `starlark_lsp::server::LspContext` behind the proxy: parsing (for go-to-definition,
//! hover and completion on Starlark names), `load()` resolution into the project and the
//! stdlib cache, and the built-ins' documentation.
//!
//! It reports no diagnostics: those come from the debounced [`crate::diagnostics`] thread,
//! which runs the whole OpenFroyo check.

use std::path::Path;
use std::sync::Arc;

use lsp_types::CompletionItemKind;
use starlark::docs::DocModule;
use starlark::syntax::{AstModule, Dialect};
use starlark_lsp::completion::{StringCompletionResult, StringCompletionType};
use starlark_lsp::server::{LspContext, LspEvalResult, LspUri, StringLiteralResult};

use crate::Analyzer;
use crate::stdlib::Stdlib;

pub(crate) struct Context {
    pub analyzer: Arc<dyn Analyzer>,
    pub stdlib: Arc<Stdlib>,
    pub builtins: DocModule,
    pub dialect: Dialect,
}

impl LspContext for Context {
    fn parse_file_with_contents(&self, uri: &LspUri, content: String) -> LspEvalResult {
        let name = match uri {
            LspUri::File(p) => self
                .stdlib
                .load_path_of(p)
                .unwrap_or_else(|| p.display().to_string()),
            other => other.to_string(),
        };
        LspEvalResult {
            diagnostics: Vec::new(),
            ast: AstModule::parse(&name, content, &self.dialect).ok(),
        }
    }

    fn resolve_load(
        &self,
        path: &str,
        current_file: &LspUri,
        _workspace_root: Option<&Path>,
    ) -> Result<LspUri, String> {
        if path.starts_with("@stdlib//") {
            return self
                .stdlib
                .path_of(path)
                .map(LspUri::File)
                .ok_or_else(|| format!("no stdlib module `{path}`"));
        }
        let LspUri::File(current) = current_file else {
            return Err(format!("cannot resolve `{path}` from `{current_file}`"));
        };
        self.analyzer
            .resolve_load(path, current)
            .map(LspUri::File)
            .ok_or_else(|| format!("cannot resolve `{path}`"))
    }

    fn render_as_load(
        &self,
        target: &LspUri,
        _current_file: &LspUri,
        _workspace_root: Option<&Path>,
    ) -> Result<String, String> {
        match target {
            LspUri::File(p) => Ok(self
                .stdlib
                .load_path_of(p)
                .unwrap_or_else(|| p.display().to_string())),
            other => Err(format!("cannot load `{other}`")),
        }
    }

    fn resolve_string_literal(
        &self,
        literal: &str,
        current_file: &LspUri,
        workspace_root: Option<&Path>,
    ) -> Result<Option<StringLiteralResult>, String> {
        // A load path in a string (e.g. the first argument of `load`) jumps to the module.
        if !literal.ends_with(".star") {
            return Ok(None);
        }
        Ok(self
            .resolve_load(literal, current_file, workspace_root)
            .ok()
            .map(|uri| StringLiteralResult {
                uri,
                location_finder: None,
            }))
    }

    fn get_load_contents(&self, uri: &LspUri) -> Result<Option<String>, String> {
        match uri {
            LspUri::File(p) => match std::fs::read_to_string(p) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(format!("cannot read `{}`: {e}", p.display())),
            },
            _ => Ok(None),
        }
    }

    fn get_environment(&self, _uri: &LspUri) -> DocModule {
        self.builtins.clone()
    }

    fn get_uri_for_global_symbol(
        &self,
        _current_file: &LspUri,
        _symbol: &str,
    ) -> Result<Option<LspUri>, String> {
        Ok(None)
    }

    fn get_string_completion_options(
        &self,
        _document_uri: &LspUri,
        kind: StringCompletionType,
        _current_value: &str,
        _workspace_root: Option<&Path>,
    ) -> Result<Vec<StringCompletionResult>, String> {
        Ok(match kind {
            StringCompletionType::LoadPath => self
                .stdlib
                .modules
                .iter()
                .map(|(name, _)| StringCompletionResult {
                    value: format!("@stdlib//{name}"),
                    insert_text: None,
                    insert_text_offset: 0,
                    kind: CompletionItemKind::FILE,
                })
                .collect(),
            StringCompletionType::String => Vec::new(),
        })
    }
}
