//! The diagnostics thread: runs [`Analyzer::check`] on the latest text of each changed
//! document once the user pauses typing, and publishes the findings with UTF-16 ranges,
//! codes and related locations.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use lsp_server::{Message, Notification};
use lsp_types::{
    Diagnostic, DiagnosticRelatedInformation, DiagnosticSeverity, Location, NumberOrString,
    Position, PublishDiagnosticsParams, Range, Uri,
};
use starlark_lsp::server::LspUri;

use crate::position::range_of;
use crate::stdlib::Stdlib;
use crate::{Analyzer, Finding, Severity, Spot};

/// How long the text must stay unchanged before a check starts.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(150);

/// A document to check (`text: None` when it was closed: its diagnostics are cleared).
pub(crate) struct Job {
    pub uri: Uri,
    pub path: PathBuf,
    pub version: Option<i32>,
    pub text: Option<String>,
}

/// Starts the thread; it ends when every [`Sender`] of jobs is dropped.
pub(crate) fn spawn(
    analyzer: Arc<dyn Analyzer>,
    stdlib: Arc<Stdlib>,
    publish: impl Fn(Message) + Send + 'static,
) -> (Sender<Job>, std::thread::JoinHandle<()>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("froyo-lsp-diagnostics".into())
        .spawn(move || run(&rx, analyzer.as_ref(), &stdlib, &publish))
        .expect("spawning a thread");
    (tx, handle)
}

fn run(rx: &Receiver<Job>, analyzer: &dyn Analyzer, stdlib: &Stdlib, publish: &dyn Fn(Message)) {
    let mut pending: BTreeMap<String, (Job, Instant)> = BTreeMap::new();
    while let Ok(job) = rx.recv() {
        pending.insert(job.uri.as_str().to_owned(), (job, Instant::now()));
        let mut open = true;
        while open {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(job) => {
                    let since = pending
                        .remove(job.uri.as_str())
                        .map_or_else(Instant::now, |(_, t)| t);
                    pending.insert(job.uri.as_str().to_owned(), (job, since));
                }
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        for (_, (job, since)) in std::mem::take(&mut pending) {
            let diagnostics = match &job.text {
                Some(text) => {
                    let started = Instant::now();
                    // A bug in the checker must not end diagnostics for the session.
                    let findings = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        analyzer.check(&job.path, text)
                    }))
                    .unwrap_or_else(|_| {
                        tracing::error!(uri = job.uri.as_str(), "the check panicked");
                        Vec::new()
                    });
                    tracing::debug!(
                        uri = job.uri.as_str(),
                        findings = findings.len(),
                        check_ms = started.elapsed().as_millis() as u64,
                        since_change_ms = since.elapsed().as_millis() as u64,
                        "checked"
                    );
                    findings
                        .iter()
                        .map(|f| to_lsp(f, &job.path, stdlib))
                        .collect()
                }
                None => Vec::new(),
            };
            let params = PublishDiagnosticsParams {
                uri: job.uri,
                diagnostics,
                version: job.version,
            };
            publish(Message::Notification(Notification::new(
                "textDocument/publishDiagnostics".into(),
                params,
            )));
        }
        if !open {
            return;
        }
    }
}

/// The `file://` URI of a path.
pub(crate) fn uri_of(path: &Path) -> Option<Uri> {
    Uri::try_from(LspUri::File(path.to_owned())).ok()
}

fn spot_range(spot: &Spot) -> Range {
    range_of(
        spot.span.file.source(),
        spot.span.span.begin().get() as usize,
        spot.span.span.end().get() as usize,
    )
}

fn spot_path(spot: &Spot, stdlib: &Stdlib) -> PathBuf {
    stdlib
        .path_of(&spot.file)
        .unwrap_or_else(|| PathBuf::from(&spot.file))
}

/// One finding as an LSP diagnostic of the document `path`. A finding whose primary
/// location is in another file is shown at the top of this one, with that location as
/// related information.
pub(crate) fn to_lsp(f: &Finding, path: &Path, stdlib: &Stdlib) -> Diagnostic {
    let mut related = Vec::new();
    let mut range = Range::new(Position::new(0, 0), Position::new(0, 0));
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    if let Some(p) = &f.primary {
        if spot_path(p, stdlib) == path {
            range = spot_range(p);
        } else if let Some(uri) = uri_of(&spot_path(p, stdlib)) {
            related.push(DiagnosticRelatedInformation {
                location: Location::new(uri, spot_range(p)),
                message: if p.message.is_empty() {
                    f.message.clone()
                } else {
                    p.message.clone()
                },
            });
        }
    }
    for s in &f.related {
        if let Some(uri) = uri_of(&spot_path(s, stdlib)) {
            related.push(DiagnosticRelatedInformation {
                location: Location::new(uri, spot_range(s)),
                message: s.message.clone(),
            });
        }
    }
    let mut message = f.message.clone();
    if let Some(p) = &f.primary
        && !p.message.is_empty()
        && !f.message.contains(&p.message)
    {
        message.push_str(&format!(": {}", p.message));
    }
    if !f.help.is_empty() {
        message.push_str(&format!("\nhelp: {}", f.help));
    }
    Diagnostic {
        range,
        severity: Some(match f.severity {
            Severity::Error => DiagnosticSeverity::ERROR,
            Severity::Warning => DiagnosticSeverity::WARNING,
            Severity::Hint => DiagnosticSeverity::HINT,
        }),
        code: Some(NumberOrString::String(f.code.clone())),
        source: Some("froyo".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Diagnostic::default()
    }
}
