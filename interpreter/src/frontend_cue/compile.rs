//! Reading `.cue` inputs (one file, or every `.cue` file of a directory: one CUE package)
//! and evaluating them with real CUE (libcue through `cue-rs`) into JSON, with CUE's
//! errors turned into diagnostics at the `file.cue:line:col` of the field they name.
//!
//! libcue compiles one source text and resolves no imports but CUE's builtin packages, so
//! the package's files are evaluated as one text: `package` clauses and `import`s are
//! blanked (keeping every other byte in place), builtin imports are declared once at the
//! top, and each import of a froyo schema package (`import "froyo.dev/linux/pkg"`) is
//! bound by a `let` to that provider's `schema.cue`, the very file `froyo doc
//! --cue-module` writes for editors and `cue vet`.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use starlark::codemap::{CodeMap, FileSpan, Pos, Span};

use super::scan::{self, Index};
use crate::diag::{Code, Diagnostic};
use crate::project::Project;
use crate::schema::Registry;

/// The prefix of the schema packages' import paths: `froyo.dev/linux/pkg` is `linux.pkg`.
pub const MODULE: &str = "froyo.dev";

/// One input file.
pub struct Input {
    pub display: String,
    pub real: PathBuf,
    pub text: String,
    pub index: Index,
    map: CodeMap,
}

/// The files of one evaluation.
#[derive(Default)]
pub struct Sources {
    pub files: Vec<Input>,
}

impl Sources {
    /// Reads `path`: a `.cue` file (its text replaced by `source` when given, an editor's
    /// unsaved buffer) and the `more` files of the same package, or a directory whose
    /// `.cue` files form one package.
    pub fn read(
        project: &Project,
        path: &Path,
        more: &[PathBuf],
        source: Option<String>,
    ) -> Result<Sources, Box<Diagnostic>> {
        let real = std::fs::canonicalize(path).map_err(|e| {
            Diagnostic::new(Code::Path, format!("cannot read `{}`: {e}", path.display()))
        })?;
        let mut paths = Vec::new();
        if real.is_dir() {
            let entries = std::fs::read_dir(&real).map_err(|e| {
                Diagnostic::new(Code::Path, format!("cannot read `{}`: {e}", path.display()))
            })?;
            for e in entries.flatten() {
                let p = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                if p.is_file() && name.ends_with(".cue") && !name.starts_with('.') {
                    paths.push(p);
                }
            }
            paths.sort();
            if paths.is_empty() {
                return Err(Diagnostic::new(
                    Code::Path,
                    format!("`{}` holds no `.cue` file", path.display()),
                )
                .help("give a `.star` or `.cue` file, or a directory of `.cue` files (one CUE package)")
                .into());
            }
            if let Some(extra) = more.first() {
                return Err(Diagnostic::new(
                    Code::Arg,
                    format!(
                        "`{}` is a directory (one CUE package): it takes no more files (`{}`)",
                        path.display(),
                        extra.display()
                    ),
                )
                .help("give a directory alone, or the `.cue` files themselves")
                .into());
            }
        } else {
            paths.push(real);
            for m in more {
                let p = std::fs::canonicalize(m).map_err(|e| {
                    Diagnostic::new(Code::Path, format!("cannot read `{}`: {e}", m.display()))
                })?;
                if p.is_dir() || p.extension().is_none_or(|e| e != "cue") {
                    return Err(Diagnostic::new(
                        Code::Arg,
                        format!("`{}` is not a `.cue` file", m.display()),
                    )
                    .help("several inputs must all be `.cue` files of one CUE package")
                    .into());
                }
                if !paths.contains(&p) {
                    paths.push(p);
                }
            }
        }
        let mut source = source;
        let mut files = Vec::new();
        for p in paths {
            let display = project.display_name(&p);
            let text = match source.take() {
                Some(t) => t,
                None => std::fs::read_to_string(&p).map_err(|e| {
                    Diagnostic::new(Code::Path, format!("cannot read `{display}`: {e}"))
                })?,
            };
            files.push(Input::new(display, p, text));
        }
        Ok(Sources { files })
    }

    /// The span of `range` in file `file`.
    pub fn span(&self, file: usize, range: Range<usize>) -> FileSpan {
        let f = &self.files[file];
        f.map.file_span(Span::new(
            Pos::new(range.start as u32),
            Pos::new(range.end as u32),
        ))
    }

    /// Where the field at `path` is declared: the first file that declares exactly it,
    /// else the deepest declared ancestor in any file.
    pub fn locate(&self, path: &[String]) -> Option<FileSpan> {
        for (i, f) in self.files.iter().enumerate() {
            if let Some(r) = f.index.field(path) {
                return Some(self.span(i, r));
            }
        }
        self.files
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.index.nearest(path).map(|(n, r)| (n, i, r)))
            .max_by_key(|(n, i, _)| (*n, std::cmp::Reverse(*i)))
            .map(|(_, i, r)| self.span(i, r))
    }

    /// The start of the first file (for errors CUE gives no path for).
    fn start(&self) -> Option<FileSpan> {
        (!self.files.is_empty()).then(|| self.span(0, 0..0))
    }

    /// Evaluates the files as one CUE package and exports it as JSON.
    pub fn evaluate(&self, registry: &Registry) -> Result<Json, Vec<Diagnostic>> {
        let text = self.combined(registry)?;
        let ctx = cue_rs::Ctx::new().map_err(|e| {
            vec![Diagnostic::new(
                Code::Cue,
                format!("CUE is unavailable: {e}"),
            )]
        })?;
        let exported = cue_rs::Value::compile_string(&ctx, &text).and_then(|v| v.to_json_bytes());
        match exported {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                vec![Diagnostic::new(
                    Code::Cue,
                    format!("CUE exported invalid JSON: {e}"),
                )]
            }),
            Err(e) => Err(vec![self.cue_error(&e.to_string())]),
        }
    }

    /// The text CUE evaluates (see the module docs).
    fn combined(&self, registry: &Registry) -> Result<String, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let mut builtin: BTreeSet<(Option<String>, String)> = BTreeSet::new();
        let mut bound: BTreeMap<String, (String, String)> = BTreeMap::new();
        let package = self
            .files
            .iter()
            .enumerate()
            .find_map(|(i, f)| f.index.package.clone().map(|p| (i, p)));
        for (i, f) in self.files.iter().enumerate() {
            if let (Some((first, (name, _))), Some((other, r))) = (&package, &f.index.package)
                && other != name
            {
                errors.push(
                    Diagnostic::new(
                        Code::Cue,
                        format!("`{}` is package `{other}`, but `{}` is package `{name}`", f.display, self.files[*first].display),
                    )
                    .at(self.span(i, r.clone()), "a different package")
                    .help("the `.cue` files of a directory form one package: give them the same `package` clause"),
                );
            }
            for imp in &f.index.imports {
                if let Some(rest) = imp.path.strip_prefix(&format!("{MODULE}/")) {
                    let provider = rest.replace('/', ".");
                    let Some(schema) = schema_of(registry, &provider) else {
                        let names = providers(registry);
                        let hint = match crate::util::did_you_mean(
                            &provider,
                            names.iter().map(String::as_str),
                        ) {
                            Some(s) => format!("did you mean `{MODULE}/{}`?", s.replace('.', "/")),
                            None => format!(
                                "the schema packages are {}",
                                names
                                    .iter()
                                    .map(|n| format!("`{MODULE}/{}`", n.replace('.', "/")))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        errors.push(
                            Diagnostic::new(
                                Code::Cue,
                                format!("no provider `{provider}` for import `{}`", imp.path),
                            )
                            .at(self.span(i, imp.span.clone()), "unknown schema package")
                            .help(hint),
                        );
                        continue;
                    };
                    let alias = imp
                        .alias
                        .clone()
                        .unwrap_or_else(|| rest.rsplit('/').next().unwrap_or(rest).to_owned());
                    match bound.get(&alias) {
                        Some((p, _)) if *p != imp.path => errors.push(
                            Diagnostic::new(
                                Code::Cue,
                                format!(
                                    "`{alias}` names both `{p}` and `{}` in this package",
                                    imp.path
                                ),
                            )
                            .at(
                                self.span(i, imp.span.clone()),
                                "second import under this name",
                            )
                            .help(format!(
                                "import one of them under another name: `import other \"{}\"`",
                                imp.path
                            )),
                        ),
                        Some(_) => {}
                        None => {
                            bound.insert(alias, (imp.path.clone(), schema));
                        }
                    }
                } else if imp.path.split('/').next().is_some_and(|p| p.contains('.')) {
                    errors.push(
                        Diagnostic::new(Code::Cue, format!("cannot import `{}`: froyo evaluates CUE's builtin packages and its own schema packages only", imp.path))
                            .at(self.span(i, imp.span.clone()), "not available")
                            .help(format!("the schema packages are `{MODULE}/<provider>` (`{MODULE}/linux/pkg`); keep other definitions in this directory's package")),
                    );
                } else {
                    builtin.insert((imp.alias.clone(), imp.path.clone()));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut text = String::new();
        for (alias, path) in &builtin {
            match alias {
                Some(a) => text.push_str(&format!("import {a} {path:?}\n")),
                None => text.push_str(&format!("import {path:?}\n")),
            }
        }
        for f in &self.files {
            let mut bytes = f.text.clone().into_bytes();
            for r in &f.index.preamble {
                for b in &mut bytes[r.clone()] {
                    if *b != b'\n' {
                        *b = b' ';
                    }
                }
            }
            // Only whole tokens were blanked, so the text is still UTF-8.
            text.push_str(&String::from_utf8_lossy(&bytes));
            text.push('\n');
        }
        for (alias, (_, schema)) in &bound {
            text.push_str(&format!("let {alias} = {{\n{schema}\n}}\n"));
        }
        Ok(text)
    }

    /// CUE's error message → a diagnostic at the field (or identifier) it names.
    pub fn cue_error(&self, msg: &str) -> Diagnostic {
        let (path, message) = match crate::schema::parse_cue_error(msg) {
            Some((p, m)) => (scan::split_path(&p), m),
            None => (Vec::new(), msg.to_owned()),
        };
        let resource_config = path.len() > 3 && path[0] == "resources" && path[2] == "config";
        let code = if resource_config {
            Code::Schema
        } else if path.is_empty() && looks_like_syntax(&message) {
            Code::Parse
        } else {
            Code::Cue
        };
        // `3 errors in empty disjunction:` says only that no alternative matched.
        let message = if message.contains("errors in empty disjunction") {
            "the value is not one of the allowed values".to_owned()
        } else {
            message.trim_end_matches(':').to_owned()
        };
        let shown = if path.is_empty() {
            message.clone()
        } else {
            format!("`{}`: {message}", path.join("."))
        };
        let span = if path.is_empty() {
            named_ident(&message).and_then(|name| {
                self.files
                    .iter()
                    .enumerate()
                    .find_map(|(i, f)| f.index.ident(&name).map(|r| self.span(i, r)))
            })
        } else {
            self.locate(&path)
        };
        let help = if resource_config {
            "the config does not match its type's schema; `froyo doc TYPE` lists the fields"
                .to_owned()
        } else {
            "this is CUE's own error (`cue vet` reports the same); the format is in docs/cue.md"
                .to_owned()
        };
        Diagnostic::new(code, shown)
            .at_opt(span.or_else(|| self.start()), "here")
            .help(help)
    }
}

impl Input {
    fn new(display: String, real: PathBuf, text: String) -> Input {
        let index = scan::index(&text);
        let map = CodeMap::new(display.clone(), text.clone());
        Input {
            display,
            real,
            text,
            index,
            map,
        }
    }
}

/// Whether `path` is an input for this front end: a `.cue` file or a directory.
pub fn is_cue_input(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "cue") || path.is_dir()
}

/// The providers' names, sorted.
fn providers(registry: &Registry) -> Vec<String> {
    let mut names: Vec<String> = registry.types().map(|t| t.provider.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// The `schema.cue` of provider `name`.
fn schema_of(registry: &Registry, name: &str) -> Option<String> {
    registry
        .types()
        .find(|t| t.provider == name)
        .map(|t| t.schema_source.to_string())
}

/// The import path of provider `name`'s schema package (`linux.pkg` → `froyo.dev/linux/pkg`).
pub fn import_path(name: &str) -> String {
    format!("{MODULE}/{}", name.replace('.', "/"))
}

/// Writes every provider's schema as a CUE package under `dir/cue.mod/pkg/froyo.dev/…`,
/// and `dir/cue.mod/module.cue` when there is none, so that `cue vet` and CUE-aware
/// editors resolve `import "froyo.dev/linux/pkg"` as froyo does. Returns the files written.
pub fn write_module(registry: &Registry, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let module = dir.join("cue.mod/module.cue");
    if !module.exists() {
        std::fs::create_dir_all(dir.join("cue.mod"))?;
        std::fs::write(
            &module,
            "// Written by `froyo doc --cue-module`: the schema packages are in pkg/froyo.dev/.\nmodule: \"froyo.local/project@v0\"\nlanguage: version: \"v0.15.0\"\n",
        )?;
        written.push(module);
    }
    for name in providers(registry) {
        let Some(schema) = schema_of(registry, &name) else {
            continue;
        };
        let path = import_path(&name);
        let qualifier = path.rsplit('/').next().unwrap_or_default().to_owned();
        let pkg_dir = dir.join("cue.mod/pkg").join(&path);
        std::fs::create_dir_all(&pkg_dir)?;
        let file = pkg_dir.join("schema.cue");
        std::fs::write(
            &file,
            format!(
                "// The schema of provider {name}, as built into froyo (`froyo doc`).\npackage {qualifier}\n\n{schema}"
            ),
        )?;
        written.push(file);
    }
    Ok(written)
}

/// CUE's syntax errors carry no path; these are the parser's message shapes.
fn looks_like_syntax(msg: &str) -> bool {
    [
        "expected ",
        "illegal ",
        "missing ",
        "string literal not terminated",
        "unexpected ",
    ]
    .iter()
    .any(|p| msg.contains(p))
}

/// `reference "pkgg" not found` names `pkgg`.
fn named_ident(msg: &str) -> Option<String> {
    let rest = msg.split("reference \"").nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

#[cfg(test)]
mod tests {
    /// The process's resident set, in KiB (Linux).
    fn rss_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// One CUE evaluation that fails: a conflict inside a struct of 2,000 fields.
    fn fail_once(src: &str) {
        let ctx = cue_rs::Ctx::new().unwrap();
        let err = cue_rs::Value::compile_string(&ctx, src)
            .and_then(|v| v.to_json_bytes())
            .unwrap_err();
        assert!(err.to_string().contains("conflicting values"), "{err}");
    }

    /// libcue returns each error as a handle only `cue_free` releases (vendor/cue-rs,
    /// PATCH.md): without it every failed evaluation kept its error and the values it
    /// refers to, and a long-lived process (the language server, the REPL, the fuzzer)
    /// grew without bound. Unpatched, these 1,000 failures grew the RSS by 2.6 GiB.
    #[test]
    fn cue_errors_do_not_accumulate() {
        let fields: String = (0..2000).map(|i| format!("f{i}: {i}\n")).collect();
        let src = format!("a: {{\n{fields}}}\nb: a & {{f7: 8}}\n");
        for _ in 0..300 {
            fail_once(&src);
        }
        let before = rss_kib();
        for _ in 0..1000 {
            fail_once(&src);
        }
        let grown_mib = rss_kib().saturating_sub(before) / 1024;
        assert!(
            grown_mib < 64,
            "1,000 failed CUE evaluations grew the process by {grown_mib} MiB"
        );
    }
}
