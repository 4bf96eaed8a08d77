//! The crate's error type: failures that stop a command before any analysis can report
//! diagnostics (unreadable files, malformed `inventory.toml`/`froyo.toml`, libcue failing).
//! Findings in playbooks are [`crate::diag::Diagnostic`]s, not errors.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{NamedSource, SourceSpan};

use crate::diag::{Code, Diagnostic, PlainLocation};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum Error {
    #[error("cannot read `{}`: {source}", path.display())]
    #[diagnostic(code("E-PATH"), help("check that the path exists and is readable"))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("`{}`: {message}", path.display())]
    #[diagnostic(code("E-INVENTORY"), help("see docs/inventory.md for the format"))]
    Inventory { path: PathBuf, message: String },

    #[error(transparent)]
    #[diagnostic(transparent)]
    Toml(Box<TomlError>),

    #[error("CUE failed: {0}")]
    #[diagnostic(
        code(froyo::cue),
        help("this is a bug in a bundled schema or in libcue; please report it")
    )]
    Cue(String),

    #[error("{0}")]
    #[diagnostic(code("E-ARG"), help("see `froyo --help`"))]
    Usage(String),

    /// A policy that does not load or evaluate (a Rego error, bad `[policy]` settings).
    #[error("policy `{}`: {message}", path.display())]
    #[diagnostic(
        code("E-POLICY"),
        help(
            "fix the Rego module or the [policy] settings; `froyo policy test` runs the policies' tests"
        )
    )]
    Policy { path: PathBuf, message: String },

    /// The state database failed.
    #[error("state `{}`: {message}", path.display())]
    #[diagnostic(
        code("E-STATE"),
        help("the state lives in .froyo/state.db; `froyo restore FILE` brings back a backup")
    )]
    State { path: PathBuf, message: String },

    /// The state server (`[state] url`, `FROYO_STATE_URL`) is unreachable, the URL is
    /// malformed, or a query failed. `url` never shows a password.
    #[error("state `{url}`: {message}")]
    #[diagnostic(code("E-STATE"), help("{help}"))]
    StateServer {
        url: String,
        message: String,
        help: String,
    },

    /// A worker's write for a host that a later delivery of the same work item claimed
    /// (`apply --queue`): the stale worker stops and leaves the host to its successor.
    #[error(
        "attempt {attempt} at target `{target}` of run #{run} was superseded by attempt {latest}: its write is refused"
    )]
    #[diagnostic(
        code("E-FENCED"),
        help(
            "this worker missed its heartbeat for longer than the queue's ack_wait, so the item went to another worker; nothing to do, or raise [queue] ack_wait"
        )
    )]
    Fenced {
        target: String,
        run: i64,
        attempt: i64,
        latest: i64,
    },

    /// The work queue (`apply --queue`, `froyo worker`, `froyo dev up`) cannot be used.
    #[error("{message}")]
    #[diagnostic(code("E-QUEUE"), help("{help}"))]
    Queue { message: String, help: String },

    /// Another process holds the project's writer lock.
    #[error("the project is locked by {holder}")]
    #[diagnostic(
        code("E-LOCKED"),
        help(
            "wait for the other run to finish; a lock whose process died is taken over automatically"
        )
    )]
    Locked { holder: String },

    /// Onboarding or its rollback failed; `message` says what was (and was not) changed.
    #[error("onboarding `{target}`: {message}")]
    #[diagnostic(code("E-ONBOARD"), help("{help}"))]
    Onboard {
        target: String,
        message: String,
        help: String,
    },

    /// `froyo graph --format svg|png` without a working Graphviz `dot`.
    #[error("drawing the graph as {format} needs Graphviz: {message}")]
    #[diagnostic(
        code("E-GRAPHVIZ"),
        help(
            "install the `graphviz` package (Debian and Ubuntu: `apt-get install graphviz`), or print DOT with `--format dot` and draw it elsewhere"
        )
    )]
    Graphviz { format: String, message: String },

    /// An extra provider named in `froyo.toml` that cannot be used.
    #[error("provider `{}`: {message}", path.display())]
    #[diagnostic(code("E-PROVIDER"), help("{help}"))]
    Provider {
        path: PathBuf,
        message: String,
        help: String,
    },
}

/// A TOML file (`inventory.toml`, `froyo.toml`) that does not parse or has unknown keys.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("`{file}`: {message}")]
#[diagnostic(code("E-INVENTORY"), help("fix the TOML at the marked position"))]
pub struct TomlError {
    file: String,
    message: String,
    #[source_code]
    src: NamedSource<String>,
    #[label("here")]
    span: Option<SourceSpan>,
}

impl Error {
    pub fn toml(path: &Path, text: &str, err: &toml::de::Error) -> Error {
        Error::Toml(Box::new(TomlError {
            file: path.display().to_string(),
            message: err.message().to_owned(),
            src: NamedSource::new(path.display().to_string(), text.to_owned()),
            span: err
                .span()
                .map(|r| SourceSpan::new(r.start.into(), r.end - r.start)),
        }))
    }

    /// The same failure as a [`Diagnostic`], for `--json` output.
    pub fn to_diagnostic(&self) -> Diagnostic {
        match self {
            Error::Toml(t) => {
                let TomlError {
                    file,
                    message,
                    src,
                    span,
                } = &**t;
                let mut d = Diagnostic::new(Code::Inventory, message.clone());
                if let Some(span) = span {
                    d.plain = Some(PlainLocation {
                        file: file.clone(),
                        source: Arc::from(src.inner().as_str()),
                        offset: span.offset(),
                        len: span.len(),
                        message: "here".into(),
                    });
                }
                d
            }
            Error::Inventory { .. } => Diagnostic::new(Code::Inventory, self.to_string()),
            Error::Io { .. } => Diagnostic::new(Code::Path, self.to_string()),
            Error::Cue(_) => Diagnostic::new(Code::Eval, self.to_string()),
            Error::Usage(_) => Diagnostic::new(Code::Arg, self.to_string()),
            Error::State { .. } => Diagnostic::new(Code::State, self.to_string()),
            Error::StateServer { help, .. } => {
                Diagnostic::new(Code::State, self.to_string()).help(help.clone())
            }
            Error::Policy { .. } => Diagnostic::new(Code::Policy, self.to_string()),
            Error::Locked { .. } => Diagnostic::new(Code::Locked, self.to_string()),
            Error::Fenced { .. } => Diagnostic::new(Code::Fenced, self.to_string()),
            Error::Queue { help, .. } => {
                Diagnostic::new(Code::Queue, self.to_string()).help(help.clone())
            }
            Error::Graphviz { .. } => Diagnostic::new(Code::Graphviz, self.to_string()),
            Error::Provider { help, .. } => {
                Diagnostic::new(Code::Provider, self.to_string()).help(help.clone())
            }
            Error::Onboard { help, .. } => {
                Diagnostic::new(Code::Onboard, self.to_string()).help(help.clone())
            }
        }
    }
}
