//! The interpreter's side of `froyo lsp`: implements [`froyo_lsp::Analyzer`] with the real
//! loader, globals, registry and checks, so the editor sees exactly what `froyo check`
//! reports (minus what only live facts could decide).
//!
//! `froyo-lsp` cannot depend on this crate (the `froyo` binary lives here), so this module
//! is the seam: it turns [`Diagnostic`]s into [`Finding`]s and the schema registry into
//! [`ResourceTypeInfo`]s.

use std::path::{Path, PathBuf};

use froyo_lsp::{Analyzer, FieldInfo, Finding, ResourceTypeInfo, Severity, Spot};
use serde_json::Map;
use starlark::codemap::{CodeMap, FileSpan, Pos, Span};

use crate::diag::{self, Code, Diagnostic, Label};
use crate::inventory::Inventory;
use crate::project::Project;
use crate::schema::{Registry, ResourceType};
use crate::selector::Selector;

/// The [`Analyzer`] `froyo lsp` serves with.
#[derive(Debug, Default)]
pub struct Bridge;

impl Analyzer for Bridge {
    #[tracing::instrument(skip_all, fields(file = %path.display()))]
    fn check(&self, path: &Path, text: &str) -> Vec<Finding> {
        let project = match Project::discover(path) {
            Ok(p) => p,
            Err(e) => return vec![finding(None, e.to_diagnostic())],
        };
        let inventory = match Inventory::load(&project.root, &Map::new()) {
            Ok(i) => i,
            Err(e) => return vec![finding(Some(&project), e.to_diagnostic())],
        };
        let on_text = project
            .settings
            .defaults
            .on
            .clone()
            .unwrap_or_else(|| "name=local".into());
        let on = match Selector::parse(&on_text) {
            Ok(s) => s,
            Err(e) => {
                let d = Diagnostic::new(Code::Selector, format!("`on = \"{on_text}\"`: {e}"));
                return vec![finding(Some(&project), d)];
            }
        };
        let registry = match Registry::for_project(&project) {
            Ok(r) => r,
            Err(e) => return vec![finding(Some(&project), e.to_diagnostic())],
        };
        let checked =
            crate::check::check_source(&project, &inventory, registry, path, text.to_owned(), on);
        let mut diagnostics = checked.diagnostics;
        // Facts are unknown in the editor: what depends on them is not an error there.
        diagnostics.retain(|d| d.code != Code::FactUnavailable);
        diag::sort(&mut diagnostics);
        diagnostics
            .into_iter()
            .map(|d| finding(Some(&project), d))
            .collect()
    }

    fn resource_types(&self, path: &Path) -> Vec<ResourceTypeInfo> {
        let registry = Project::discover(path)
            .ok()
            .and_then(|p| Registry::for_project(&p).ok())
            .unwrap_or_else(Registry::builtin);
        registry.types().map(|t| type_info(t)).collect()
    }

    fn stdlib(&self) -> Vec<(String, String)> {
        crate::bundled::STDLIB
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect()
    }

    fn builtins(&self) -> starlark::docs::DocModule {
        crate::eval::globals().documentation()
    }

    fn resolve_load(&self, path: &str, current: &Path) -> Option<PathBuf> {
        let project = Project::discover(current).ok()?;
        let (base, rel) = if let Some(rel) = path.strip_prefix("//") {
            (project.root.clone(), rel)
        } else if path.starts_with("./") || path.starts_with("../") {
            (current.parent()?.to_path_buf(), path)
        } else {
            return None;
        };
        project.resolve_inside(&base, rel).ok()
    }

    fn version(&self) -> String {
        env!("CARGO_PKG_VERSION").to_owned()
    }

    fn dialect(&self) -> starlark::syntax::Dialect {
        crate::eval::dialect()
    }
}

fn type_info(t: &ResourceType) -> ResourceTypeInfo {
    let mut doc = t.doc.doc.clone();
    doc.push_str(&format!(
        "\n\nProvider `{}` {}; identity `{}` (defaults to the resource name).",
        t.provider, t.provider_version, t.identity
    ));
    ResourceTypeInfo {
        name: t.name.clone(),
        summary: t.summary.clone(),
        doc: doc.trim().to_owned(),
        fields: t
            .doc
            .fields
            .iter()
            .map(|f| FieldInfo {
                name: f.name.clone(),
                cue_type: f.cue_type.clone(),
                default: f.default.clone(),
                required: f.required,
                doc: f.doc.clone(),
            })
            .collect(),
    }
}

/// A file name as diagnostics show it (relative to the current directory or the project
/// root, or `@stdlib//NAME`) as an absolute path, or the stdlib name unchanged.
fn absolute(project: Option<&Project>, name: &str) -> String {
    if name.starts_with("@stdlib//") || Path::new(name).is_absolute() {
        return name.to_owned();
    }
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|c| std::fs::canonicalize(c).ok());
    let candidates = cwd
        .into_iter()
        .chain(project.map(|p| p.root.clone()))
        .map(|base| base.join(name));
    for c in candidates {
        if c.exists() {
            return c.display().to_string();
        }
    }
    name.to_owned()
}

fn spot(project: Option<&Project>, label: &Label) -> Spot {
    Spot {
        file: absolute(project, label.span.filename()),
        span: label.span.clone(),
        message: label.message.clone(),
    }
}

fn finding(project: Option<&Project>, d: Diagnostic) -> Finding {
    let mut related: Vec<Spot> = d
        .secondary
        .iter()
        .chain(&d.notes)
        .map(|l| spot(project, l))
        .collect();
    let mut primary = d.primary.as_ref().map(|l| spot(project, l));
    if let Some(p) = &d.plain {
        // A location in a TOML file: a span over its own code map.
        let file = CodeMap::new(p.file.clone(), p.source.to_string());
        let span = Span::new(
            Pos::new(p.offset as u32),
            Pos::new((p.offset + p.len) as u32),
        );
        let s = Spot {
            file: absolute(project, &p.file),
            span: FileSpan { file, span },
            message: p.message.clone(),
        };
        if primary.is_none() {
            primary = Some(s);
        } else {
            related.push(s);
        }
    }
    Finding {
        code: d.code.as_str().to_owned(),
        severity: match d.severity {
            diag::Severity::Error => Severity::Error,
            diag::Severity::Warning => Severity::Warning,
            diag::Severity::Advice => Severity::Hint,
        },
        message: d.message,
        primary,
        related,
        help: d.help,
    }
}
