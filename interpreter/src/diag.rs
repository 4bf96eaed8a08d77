//! User-facing diagnostics: a stable code, a message, a location in a `.star` file and a hint.
//!
//! Analyses collect [`Diagnostic`]s and keep going; the CLI renders them with `miette`
//! (human) or as JSON (`--json`). The code is part of the contract (spec §9), so every
//! constructor takes a [`Code`] rather than a free-form string.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceSpan};
use serde::Serialize;
use starlark::codemap::{FileSpan, Pos, Span};

/// The stable diagnostic codes of spec §9, plus the few this implementation adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Code {
    /// The file does not parse.
    #[serde(rename = "E-PARSE")]
    Parse,
    /// A Starlark runtime error that is not one of the more specific codes.
    #[serde(rename = "E-EVAL")]
    Eval,
    /// `load()` could not find or evaluate a module, or modules load each other in a cycle.
    #[serde(rename = "E-LOAD")]
    Load,
    /// A path leaves the project root or does not exist.
    #[serde(rename = "E-PATH")]
    Path,
    /// A built-in got an argument it cannot use.
    #[serde(rename = "E-ARG")]
    Arg,
    /// `resource()` or `handler()` named a type no provider declares.
    #[serde(rename = "E-UNKNOWN-TYPE")]
    UnknownType,
    /// A resource's config violates its type's CUE schema.
    #[serde(rename = "E-SCHEMA")]
    Schema,
    /// The same `(type, name)` declared twice on one host.
    #[serde(rename = "E-DUP-ID")]
    DupId,
    /// A dependency cycle.
    #[serde(rename = "E-CYCLE")]
    Cycle,
    /// `notify()` aimed at something that is not a handler.
    #[serde(rename = "E-NOT-HANDLER")]
    NotHandler,
    /// A value only known at apply time was used as if it were known now.
    #[serde(rename = "E-DEFERRED")]
    Deferred,
    /// A secret was concatenated into a plain string.
    #[serde(rename = "E-SECRET-STR")]
    SecretStr,
    /// A fact name that does not exist.
    #[serde(rename = "E-FACT-UNKNOWN")]
    FactUnknown,
    /// Facts were read where no target session exists.
    #[serde(rename = "E-FACT-UNAVAILABLE")]
    FactUnavailable,
    /// A template failed to render.
    #[serde(rename = "E-TEMPLATE")]
    Template,
    /// `inventory.toml` or `froyo.toml` is malformed.
    #[serde(rename = "E-INVENTORY")]
    Inventory,
    /// A target selector does not parse or names no target.
    #[serde(rename = "E-SELECTOR")]
    Selector,
    /// A target could not be reached (reserved for the transport layer).
    #[serde(rename = "E-TARGET")]
    Target,
    /// A provider failed (reserved for the provider host).
    #[serde(rename = "E-PROVIDER")]
    Provider,
    /// A policy denied the plan (reserved for the policy engine).
    #[serde(rename = "E-POLICY")]
    Policy,
    /// A policy's warning (`data.froyo.warn`).
    #[serde(rename = "W-POLICY")]
    PolicyWarn,
    /// The state database cannot be opened, migrated, read or written.
    #[serde(rename = "E-STATE")]
    State,
    /// Another `froyo` process holds the project's writer lock.
    #[serde(rename = "E-LOCKED")]
    Locked,
    /// The work queue (NATS JetStream) cannot be reached or used.
    #[serde(rename = "E-QUEUE")]
    Queue,
    /// A worker's write for a host that a later delivery claimed was refused.
    #[serde(rename = "E-FENCED")]
    Fenced,
    /// `froyo onboard ssh` or its rollback failed.
    #[serde(rename = "E-ONBOARD")]
    Onboard,
    /// A Starlark lint finding.
    #[serde(rename = "W-LINT")]
    Lint,
    /// A command without `creates`, `removes` or `unless` runs on every apply.
    #[serde(rename = "W-UNGUARDED-CMD")]
    UnguardedCmd,
    /// A play selected no target.
    #[serde(rename = "W-NO-HOSTS")]
    NoHosts,
    /// CUE rejected a `.cue` input (or a `cue_values()` file): a conflict, an incomplete
    /// value, an import froyo cannot resolve.
    #[serde(rename = "E-CUE")]
    Cue,
    /// A `workspace.providers` version constraint that no provider of that name satisfies.
    #[serde(rename = "E-PROVIDER-VERSION")]
    ProviderVersion,
    /// A task `froyo import ansible` could not convert (an `unconverted()` placeholder).
    #[serde(rename = "E-IMPORT")]
    Import,
    /// The same, written with `--allow-unconverted`: shown, skipped, not failing.
    #[serde(rename = "W-IMPORT")]
    ImportAllowed,
    /// `froyo graph --format svg|png` without a working Graphviz `dot`.
    #[serde(rename = "E-GRAPHVIZ")]
    Graphviz,
}

impl Code {
    /// The code as users see it, e.g. `E-SCHEMA`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Parse => "E-PARSE",
            Code::Eval => "E-EVAL",
            Code::Load => "E-LOAD",
            Code::Path => "E-PATH",
            Code::Arg => "E-ARG",
            Code::UnknownType => "E-UNKNOWN-TYPE",
            Code::Schema => "E-SCHEMA",
            Code::DupId => "E-DUP-ID",
            Code::Cycle => "E-CYCLE",
            Code::NotHandler => "E-NOT-HANDLER",
            Code::Deferred => "E-DEFERRED",
            Code::SecretStr => "E-SECRET-STR",
            Code::FactUnknown => "E-FACT-UNKNOWN",
            Code::FactUnavailable => "E-FACT-UNAVAILABLE",
            Code::Template => "E-TEMPLATE",
            Code::Inventory => "E-INVENTORY",
            Code::Selector => "E-SELECTOR",
            Code::Target => "E-TARGET",
            Code::Provider => "E-PROVIDER",
            Code::Policy => "E-POLICY",
            Code::PolicyWarn => "W-POLICY",
            Code::State => "E-STATE",
            Code::Locked => "E-LOCKED",
            Code::Queue => "E-QUEUE",
            Code::Fenced => "E-FENCED",
            Code::Onboard => "E-ONBOARD",
            Code::Lint => "W-LINT",
            Code::UnguardedCmd => "W-UNGUARDED-CMD",
            Code::NoHosts => "W-NO-HOSTS",
            Code::Cue => "E-CUE",
            Code::ProviderVersion => "E-PROVIDER-VERSION",
            Code::Import => "E-IMPORT",
            Code::ImportAllowed => "W-IMPORT",
            Code::Graphviz => "E-GRAPHVIZ",
        }
    }

    /// Warnings do not fail `froyo check`.
    pub fn default_severity(self) -> Severity {
        match self {
            Code::Lint
            | Code::UnguardedCmd
            | Code::NoHosts
            | Code::PolicyWarn
            | Code::ImportAllowed => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// The hint shown when the site that raised the diagnostic has nothing more specific.
    pub fn default_help(self) -> &'static str {
        match self {
            Code::Parse => {
                "fix the syntax; the dialect is Starlark with f-strings, type annotations and top-level `if`/`for`"
            }
            Code::Eval => {
                "fix the expression at this line; the call stack below shows how it was reached"
            }
            Code::Load => {
                "load paths are `@stdlib//NAME.star`, `//path/from/project/root.star` or `./relative.star`"
            }
            Code::Path => {
                "paths are relative to the calling `.star` file and must stay inside the project root"
            }
            Code::Arg => "see `froyo doc` for the built-ins and their arguments",
            Code::UnknownType => "`froyo doc` lists every resource type",
            Code::Schema => {
                "`froyo doc TYPE` lists the type's fields, their allowed values and defaults"
            }
            Code::DupId => {
                "pass the handle returned by the first declaration instead of declaring the resource again"
            }
            Code::Cycle => {
                "remove one of the edges listed above; `froyo graph` shows every edge with its origin"
            }
            Code::NotHandler => {
                "declare the target with `handler()` (or a stdlib handler such as `reload()`/`restart()`) so it runs only when notified"
            }
            Code::Deferred => {
                "use the value as a resource argument, inside `fmt()`, or as `when=`; it is only known at apply time"
            }
            Code::SecretStr => {
                "interpolate secrets with `fmt(\"...{}...\", secret(...))`, which keeps the result secret"
            }
            Code::FactUnknown => {
                "`froyo doc facts` lists the facts: os.basic, hw.cpu, net.ifaces, pkg.manifest"
            }
            Code::FactUnavailable => {
                "facts are gathered from a live target during `froyo plan`/`apply`; `froyo check` runs offline"
            }
            Code::Template => {
                "templates use MiniJinja with strict undefined: every variable must be passed in `vars`"
            }
            Code::Inventory => "see the inventory format in docs/inventory.md",
            Code::Selector => {
                "selectors look like `role=web,env in (prod,stage),!canary,name~web-*`"
            }
            Code::Target => "check that the target is reachable and its host key is known",
            Code::Provider => {
                "the provider reported the error class; transient and throttled errors are retried"
            }
            Code::Policy => "fix the resource or disable the rule in froyo.toml",
            Code::PolicyWarn => "this is a warning from a policy; it does not fail the command",
            Code::State => {
                "the state lives in .froyo/state.db; `froyo restore FILE` brings back a backup"
            }
            Code::Locked => {
                "wait for the other run to finish; a lock whose process died is taken over automatically"
            }
            Code::Fenced => {
                "the host went to another worker; raise [queue] ack_wait if this worker was only slow"
            }
            Code::Queue => {
                "start `nats-server -js` and check the URL; the queue needs the state on PostgreSQL"
            }
            Code::Onboard => {
                "see docs/onboarding.md; every step is idempotent, so onboarding again is safe"
            }
            Code::Lint => "this is a warning; it does not fail `froyo check`",
            Code::UnguardedCmd => {
                "add `creates=`, `removes=` or `unless=` so the command only runs when needed"
            }
            Code::NoHosts => {
                "check the selector against `inventory.toml`; `local` is always a target"
            }
            Code::Cue => {
                "this is CUE's own error (`cue vet` reports the same); docs/cue.md has the format"
            }
            Code::ProviderVersion => {
                "`froyo doc` lists the providers with their versions; widen the constraint or pin another provider"
            }
            Code::Import => {
                "rewrite the Ansible task (named by `at`) by hand here, then remove the `unconverted()` call; IMPORT.md lists them all"
            }
            Code::ImportAllowed => {
                "this task was not converted and is skipped; rewrite it by hand and remove the `unconverted()` call"
            }
            Code::Graphviz => {
                "install the `graphviz` package, or print DOT with `--format dot` and draw it elsewhere"
            }
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Advice,
}

/// A labelled location in a source file.
#[derive(Debug, Clone)]
pub struct Label {
    pub span: FileSpan,
    pub message: String,
}

impl Label {
    pub fn new(span: FileSpan, message: impl Into<String>) -> Self {
        Label {
            span,
            message: message.into(),
        }
    }
}

/// A labelled location outside any `.star` file (e.g. a line of `inventory.toml`).
#[derive(Debug, Clone)]
pub struct PlainLocation {
    pub file: String,
    pub source: Arc<str>,
    pub offset: usize,
    pub len: usize,
    pub message: String,
}

/// One finding: an error or a warning with a stable code.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    /// Where the user should look first (the first frame outside `@stdlib//`).
    pub primary: Option<Label>,
    /// More locations: same file ones are drawn in the same snippet, others as related notes.
    pub secondary: Vec<Label>,
    /// A location in a non-Starlark file.
    pub plain: Option<PlainLocation>,
    /// Extra lines such as the call stack (`called from site.star:12:5 in web()`).
    pub notes: Vec<Label>,
    pub help: String,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.default_severity(),
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            plain: None,
            notes: Vec::new(),
            help: code.default_help().to_owned(),
        }
    }

    pub fn at(mut self, span: FileSpan, label: impl Into<String>) -> Self {
        self.primary = Some(Label::new(span, label));
        self
    }

    pub fn at_opt(self, span: Option<FileSpan>, label: impl Into<String>) -> Self {
        match span {
            Some(span) => self.at(span, label),
            None => self,
        }
    }

    pub fn also(mut self, span: FileSpan, label: impl Into<String>) -> Self {
        self.secondary.push(Label::new(span, label));
        self
    }

    pub fn note(mut self, span: FileSpan, label: impl Into<String>) -> Self {
        self.notes.push(Label::new(span, label));
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = help.into();
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `file:line:col` of the primary location, if any.
    pub fn location(&self) -> Option<String> {
        if let Some(p) = &self.primary {
            return Some(span_location(&p.span));
        }
        self.plain.as_ref().map(|p| {
            let (line, col) = line_col(&p.source, p.offset);
            format!("{}:{line}:{col}", p.file)
        })
    }

    /// The diagnostic as the stable JSON shape printed by `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        let loc = |l: &Label| {
            let r = l.span.resolve_span();
            serde_json::json!({
                "file": l.span.filename(),
                "line": r.begin.line + 1,
                "column": r.begin.column + 1,
                "end_line": r.end.line + 1,
                "end_column": r.end.column + 1,
                "message": l.message,
            })
        };
        let primary = match (&self.primary, &self.plain) {
            (Some(p), _) => loc(p),
            (None, Some(p)) => {
                let (line, column) = line_col(&p.source, p.offset);
                serde_json::json!({"file": p.file, "line": line, "column": column, "message": p.message})
            }
            (None, None) => serde_json::Value::Null,
        };
        serde_json::json!({
            "code": self.code.as_str(),
            "severity": self.severity,
            "message": self.message,
            "location": primary,
            "related": self.secondary.iter().map(loc).collect::<Vec<_>>(),
            "notes": self.notes.iter().map(loc).collect::<Vec<_>>(),
            "help": self.help,
        })
    }

    /// A `miette` report for terminal rendering.
    pub fn to_report(&self) -> miette::Report {
        miette::Report::new(Rendered::from(self))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(loc) = self.location() {
            write!(f, " at {loc}")?;
        }
        Ok(())
    }
}

/// `file:line:col` (1-based) of a span.
pub fn span_location(span: &FileSpan) -> String {
    let r = span.resolve_span();
    format!(
        "{}:{}:{}",
        span.filename(),
        r.begin.line + 1,
        r.begin.column + 1
    )
}

/// `file:line` (1-based) of a span, as printed next to graph nodes and plan lines.
pub fn span_line(span: &FileSpan) -> String {
    let r = span.resolve_span();
    format!("{}:{}", span.filename(), r.begin.line + 1)
}

/// The span of `field = ...` inside a call expression, for a precise label.
pub fn kwarg_span(call: &FileSpan, field: &str) -> Option<FileSpan> {
    if field.is_empty() {
        return None;
    }
    let text = call.source_span();
    let base = call.span.begin().get() as usize;
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(i) = text[from..].find(field) {
        let start = from + i;
        let end = start + field.len();
        let before_ok =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let rest = text[end..].trim_start();
        if before_ok && rest.starts_with('=') && !rest.starts_with("==") {
            let span = Span::new(
                Pos::new((base + start) as u32),
                Pos::new((base + end) as u32),
            );
            return Some(call.file.file_span(span));
        }
        from = end;
    }
    None
}

fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let before = &src[..offset.min(src.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn source_span(span: &FileSpan) -> SourceSpan {
    let begin = span.span.begin().get() as usize;
    let end = span.span.end().get() as usize;
    SourceSpan::new(begin.into(), end.saturating_sub(begin))
}

fn named_source(span: &FileSpan) -> NamedSource<String> {
    NamedSource::new(span.filename(), span.file.source().to_owned()).with_language("python")
}

/// The `miette::Diagnostic` view of a [`Diagnostic`]: one source per report, so labels in
/// other files become related advice entries.
#[derive(Debug)]
struct Rendered {
    code: Code,
    severity: Severity,
    message: String,
    help: String,
    source: Option<NamedSource<String>>,
    labels: Vec<LabeledSpan>,
    related: Vec<Rendered>,
}

impl From<&Diagnostic> for Rendered {
    fn from(d: &Diagnostic) -> Self {
        let mut labels = Vec::new();
        let mut related = Vec::new();
        let mut source = None;
        if let Some(p) = &d.primary {
            source = Some(named_source(&p.span));
            labels.push(LabeledSpan::new_primary_with_span(
                Some(p.message.clone()),
                source_span(&p.span),
            ));
            for s in &d.secondary {
                if s.span.filename() == p.span.filename() {
                    labels.push(LabeledSpan::new_with_span(
                        Some(s.message.clone()),
                        source_span(&s.span),
                    ));
                } else {
                    related.push(Rendered::advice(s));
                }
            }
        } else if let Some(p) = &d.plain {
            source = Some(NamedSource::new(&p.file, p.source.to_string()));
            labels.push(LabeledSpan::new_primary_with_span(
                Some(p.message.clone()),
                SourceSpan::new(p.offset.into(), p.len),
            ));
        } else {
            related.extend(d.secondary.iter().map(Rendered::advice));
        }
        related.extend(d.notes.iter().map(Rendered::advice));
        Rendered {
            code: d.code,
            severity: d.severity,
            message: d.message.clone(),
            help: d.help.clone(),
            source,
            labels,
            related,
        }
    }
}

impl Rendered {
    fn advice(l: &Label) -> Rendered {
        Rendered {
            code: Code::Eval,
            severity: Severity::Advice,
            message: format!("{} ({})", l.message, span_location(&l.span)),
            help: String::new(),
            source: Some(named_source(&l.span)),
            labels: vec![LabeledSpan::new_with_span(None, source_span(&l.span))],
            related: Vec::new(),
        }
    }
}

impl fmt::Display for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rendered {}

impl miette::Diagnostic for Rendered {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (self.severity != Severity::Advice)
            .then(|| Box::new(self.code.as_str()) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
            Severity::Advice => miette::Severity::Advice,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.help.is_empty()).then(|| Box::new(&self.help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        (!self.labels.is_empty())
            .then(|| Box::new(self.labels.iter().cloned()) as Box<dyn Iterator<Item = LabeledSpan>>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        (!self.related.is_empty()).then(|| {
            Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic))
                as Box<dyn Iterator<Item = _>>
        })
    }
}

/// Sorts diagnostics by file and position so output is stable, errors first within a line.
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| {
        let (file, pos) = d
            .primary
            .as_ref()
            .map(|p| (p.span.filename().to_owned(), p.span.span.begin().get()))
            .unwrap_or_default();
        (file, pos, d.severity != Severity::Error, d.code)
    });
}

/// Renders a diagnostic for the terminal (or a golden file when `color` is false).
pub fn render(d: &Diagnostic, color: bool, width: usize) -> String {
    use miette::{GraphicalReportHandler, GraphicalTheme};
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_links(false);
    let mut out = String::new();
    let rendered = Rendered::from(d);
    if handler.render_report(&mut out, &rendered).is_err() {
        out = format!("{d}\n");
    }
    out
}
