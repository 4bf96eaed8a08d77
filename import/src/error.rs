//! The one error enum of the importer: what stops `froyo import ansible` before it can write
//! a project (unreadable input, YAML that does not parse, a source that is neither a
//! playbook nor a role). Everything *convertible but not converted* is not an error: it
//! becomes an `unconverted()` placeholder in the output (`E-IMPORT` at `froyo check`).

use std::path::PathBuf;

/// An input the importer cannot read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImportError {
    /// A file or directory could not be read or written.
    #[error("{}: {source}", path.display())]
    #[diagnostic(
        code("E-IMPORT-INPUT"),
        help("check that the path exists and is readable (and the --out directory writable)")
    )]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A YAML file does not parse.
    #[error("{file}:{line}:{col}: {message}")]
    #[diagnostic(
        code("E-IMPORT-INPUT"),
        help(
            "the file must be YAML that Ansible itself can load; fix it and run the import again"
        )
    )]
    Yaml {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// The source has a shape the importer does not know (not a play list, not a role).
    #[error("{0}")]
    #[diagnostic(
        code("E-IMPORT-INPUT"),
        help("give a playbook (a YAML list of plays) or a role directory (with tasks/main.yml)")
    )]
    Shape(String),
}

impl ImportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ImportError::Io {
            path: path.into(),
            source,
        }
    }
}
