//! The agent's one error enum: every failure a user sees (a bad plan or recipe, a
//! dependency that cannot be met, an artifact that fails verification, a component that
//! never becomes healthy, the journal, the API) is one of these, with a stable code
//! (`docs/diagnostics.md`), the file and line where one applies, and a hint.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum AgentError {
    /// A plan or recipe that does not parse, has a key Keystone's format does not
    /// define, or a value out of range.
    #[error("{}:{line}:{column}: {message}", file.display())]
    #[diagnostic(code("E-AGENT-FORMAT"), help("{help}"))]
    Format {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
        help: String,
    },

    /// A recipe uses a part of Keystone's format this agent does not implement.
    #[error("{}:{line}:{column}: {message}", file.display())]
    #[diagnostic(code("E-AGENT-UNSUPPORTED"), help("{help}"))]
    Unsupported {
        file: PathBuf,
        line: usize,
        column: usize,
        message: String,
        help: String,
    },

    /// Dependencies that cannot be satisfied: a missing component, a version outside
    /// the constraint, a cycle, a duplicate name.
    #[error("{message}")]
    #[diagnostic(code("E-AGENT-DEPS"), help("{help}"))]
    Deps { message: String, help: String },

    /// An artifact that cannot be fetched or fails verification (nothing was changed).
    #[error("artifact `{uri}` of {component}: {message}")]
    #[diagnostic(code("E-AGENT-ARTIFACT"), help("{help}"))]
    Artifact {
        component: String,
        uri: String,
        message: String,
        help: String,
    },

    /// An install script that failed.
    #[error("install of {component} failed: {message}")]
    #[diagnostic(
        code("E-AGENT-INSTALL"),
        help(
            "the script runs once per version with `sh -c` in {work_dir}; fix it and apply again"
        )
    )]
    Install {
        component: String,
        work_dir: String,
        message: String,
    },

    /// A component that did not start or did not become healthy in time.
    #[error("{component}: {message}")]
    #[diagnostic(
        code("E-AGENT-START"),
        help("its output is in the agent's logs/<component>.log under the data dir")
    )]
    Start { component: String, message: String },

    /// The journal (SQLite under the data dir) failed.
    #[error("journal `{}`: {message}", path.display())]
    #[diagnostic(
        code("E-AGENT-STATE"),
        help("the journal is state.db in the data dir; check the disk and its permissions")
    )]
    State { path: PathBuf, message: String },

    /// Another apply is in flight.
    #[error("{0}")]
    #[diagnostic(
        code("E-AGENT-BUSY"),
        help("only one apply runs at a time; wait for it to finish, then retry")
    )]
    Busy(String),

    /// The API named something that does not exist.
    #[error("{0}")]
    #[diagnostic(
        code("E-AGENT-NOT-FOUND"),
        help("`froyo agent components` lists what the agent runs")
    )]
    NotFound(String),

    /// The agent's API cannot be reached or answered an error.
    #[error("agent at {url}: {message}")]
    #[diagnostic(code("E-AGENT-API"), help("{help}"))]
    Api {
        url: String,
        message: String,
        help: String,
    },

    /// A file or directory the agent needs cannot be read or written.
    #[error("`{}`: {source}", path.display())]
    #[diagnostic(
        code("E-AGENT-IO"),
        help("check that the path exists and that the agent may read and write it")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// Bad command-line or request arguments.
    #[error("{0}")]
    #[diagnostic(code("E-AGENT-USAGE"), help("see `froyo agent --help`"))]
    Usage(String),
}

impl AgentError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        AgentError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The stable code (`E-AGENT-…`).
    pub fn code(&self) -> String {
        miette::Diagnostic::code(self)
            .map(|c| c.to_string())
            .unwrap_or_default()
    }

    /// The hint, if any.
    pub fn hint(&self) -> Option<String> {
        miette::Diagnostic::help(self).map(|h| h.to_string())
    }

    /// The HTTP status the API answers this error with.
    pub fn http_status(&self) -> u16 {
        match self {
            AgentError::Format { .. }
            | AgentError::Unsupported { .. }
            | AgentError::Deps { .. }
            | AgentError::Usage(_) => 400,
            AgentError::NotFound(_) => 404,
            AgentError::Busy(_) => 409,
            AgentError::Artifact { .. } | AgentError::Install { .. } | AgentError::Start { .. } => {
                422
            }
            _ => 500,
        }
    }

    /// The JSON the API answers with: `{"error": {"code", "message", "hint"}}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "code": self.code(),
            "message": self.to_string(),
            "hint": self.hint(),
        }})
    }

    /// `error[CODE]: message` and `help: …`, the CLI's rendering (plain text: the agent
    /// links no terminal renderer).
    pub fn render(&self) -> String {
        let mut out = format!("error[{}]: {self}\n", self.code());
        if let Some(h) = self.hint() {
            out.push_str(&format!("  help: {h}\n"));
        }
        out
    }
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;
