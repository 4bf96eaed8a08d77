//! Errors raised inside evaluation and their conversion to [`Diagnostic`]s.
//!
//! Built-ins fail with a [`CodedError`] so the stable code survives the trip through
//! `starlark::Error`; a refused format spec is `E-ARG` with the supported form as its
//! hint; everything else Starlark raises becomes `E-EVAL` (or `E-PARSE`).
//! The primary location is the first frame outside `@stdlib//` (spec §9).

use std::fmt;

use starlark::ErrorKind;
use starlark::codemap::FileSpan;
use starlark::eval::CallStack;
use starlark::values::string::format_spec::FormatSpecError;

use super::values::take_fact_error;
use crate::diag::{Code, Diagnostic};

/// A built-in's error carrying its diagnostic code and hint.
#[derive(Debug, Clone)]
pub struct CodedError {
    pub code: Code,
    pub message: String,
    pub help: Option<String>,
    /// Extra labelled locations (e.g. the first declaration for `E-DUP-ID`).
    pub related: Vec<(FileSpan, String)>,
    /// Where the problem really is when that is not the call (a `.cue` line read by
    /// `cue_values()`); the call becomes a note.
    pub primary: Option<Box<(FileSpan, String)>>,
}

impl CodedError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        CodedError {
            code,
            message: message.into(),
            help: None,
            related: Vec::new(),
            primary: None,
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for CodedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodedError {}

/// Shorthand for a failing built-in.
pub fn fail<T>(code: Code, message: impl Into<String>) -> anyhow::Result<T> {
    Err(CodedError::new(code, message).into())
}

pub fn is_stdlib(span: &FileSpan) -> bool {
    span.filename().starts_with("@stdlib//")
}

/// The user-facing location of a call: the innermost location outside `@stdlib//`, and the
/// remaining frames (innermost first) as call-stack notes.
pub fn user_location(
    innermost: Option<FileSpan>,
    stack: &CallStack,
) -> (Option<FileSpan>, Vec<(FileSpan, String)>) {
    // Frame i's location is where frame i was called from (in frame i-1's function).
    let mut locs: Vec<(FileSpan, String)> = Vec::new();
    if let Some(s) = innermost {
        let name = stack
            .frames
            .last()
            .map(|f| f.name.clone())
            .unwrap_or_default();
        locs.push((s, name));
    }
    for (i, frame) in stack.frames.iter().enumerate().rev() {
        if let Some(loc) = &frame.location {
            let caller = if i == 0 {
                String::new()
            } else {
                stack.frames[i - 1].name.clone()
            };
            if locs.last().is_none_or(|(l, _)| l != loc) {
                locs.push((loc.clone(), caller));
            }
        }
    }
    let primary = locs.iter().position(|(l, _)| !is_stdlib(l));
    match primary {
        Some(i) => {
            let p = locs[i].0.clone();
            // Frames inside the stdlib are the wrappers' plumbing: not worth a note.
            let notes = locs
                .into_iter()
                .enumerate()
                .filter(|(j, (l, _))| *j > i && !is_stdlib(l))
                .map(|(_, (l, f))| {
                    (
                        l,
                        if f.is_empty() || f == "<module>" {
                            "called from here".to_owned()
                        } else {
                            format!("in call to `{f}`")
                        },
                    )
                })
                .collect();
            (Some(p), notes)
        }
        None => (locs.first().map(|l| l.0.clone()), Vec::new()),
    }
}

/// Converts a Starlark error (from parsing, evaluation or a built-in) to a diagnostic.
pub fn from_starlark(err: &starlark::Error) -> Diagnostic {
    let coded = match err.kind() {
        ErrorKind::Native(e)
        | ErrorKind::Value(e)
        | ErrorKind::Other(e)
        | ErrorKind::Function(e) => e.downcast_ref::<CodedError>().cloned(),
        _ => None,
    };
    // A format spec or `%` conversion the (patched) starlark crate refuses: its hint shows
    // the supported form.
    let spec = match err.kind() {
        ErrorKind::Native(e)
        | ErrorKind::Value(e)
        | ErrorKind::Other(e)
        | ErrorKind::Function(e) => e.downcast_ref::<FormatSpecError>().cloned(),
        _ => None,
    };
    let coded = coded.or(spec.map(|e| CodedError::new(Code::Arg, e.message).help(e.hint)));
    let message = err.without_diagnostic().to_string();
    let elsewhere = coded.as_ref().and_then(|c| c.primary.clone()).map(|b| *b);
    let (code, message, help, related) = match (coded, err.kind()) {
        (Some(c), _) => (c.code, c.message, c.help, c.related),
        // `f"{i:02d}"`: the dialect's f-strings take no format spec.
        (None, ErrorKind::Parser(_))
            if message.contains("unexpected symbol ':', expected f-string expression end") =>
        {
            (
                Code::Parse,
                message,
                Some("f-strings take no format spec here; write `\"web-{:02d}\".format(i)`, `fmt(\"web-{:02d}\", i)` or `\"web-%02d\" % i`".to_owned()),
                Vec::new(),
            )
        }
        (None, ErrorKind::Parser(_)) => (Code::Parse, message, None, Vec::new()),
        (None, _) if message.contains("Object of type `facts`") => match take_fact_error() {
            Some((code, msg, hint)) => (code, msg, Some(hint), Vec::new()),
            None => (Code::FactUnknown, message, None, Vec::new()),
        },
        (None, ErrorKind::Fail(_)) => (
            Code::Eval,
            message,
            Some("the playbook called `fail()`".to_owned()),
            Vec::new(),
        ),
        (None, _) => (Code::Eval, message, None, Vec::new()),
    };
    let (primary, notes) = user_location(err.span().cloned(), err.call_stack());
    let label = match code {
        Code::Parse => "here",
        Code::Deferred => "deferred value used here",
        Code::SecretStr => "secret used as text here",
        _ => "error here",
    };
    let mut d = Diagnostic::new(code, message.trim_end_matches('.').to_owned());
    d = match elsewhere {
        Some((span, l)) => {
            let d = d.at(span, l);
            match primary {
                Some(call) => d.note(call, "read from here"),
                None => d,
            }
        }
        None => d.at_opt(primary, label),
    };
    for (span, label) in related {
        d = d.also(span, label);
    }
    for (span, label) in notes {
        d = d.note(span, label);
    }
    if let Some(h) = help {
        d = d.help(h);
    }
    d
}
