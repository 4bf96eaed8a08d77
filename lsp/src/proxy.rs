//! The proxy between the editor and `starlark_lsp`'s server (which runs on a thread over
//! an in-memory connection). It keeps each open document's text, answers what only
//! OpenFroyo knows ([`crate::features`]), splices schema fields into the server's
//! completions, drops the server's (empty) diagnostics in favour of the debounced
//! [`crate::diagnostics`] thread, and converts positions: the editor speaks UTF-16,
//! the server reads byte columns and answers in `char` columns.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use lsp_server::{Connection, Message, Notification, RequestId, Response};
use lsp_types::{CompletionItem, CompletionResponse, Position, Uri};
use serde_json::{Value, json};
use starlark_lsp::server::LspUri;

use crate::context::Context;
use crate::diagnostics::{self, Job};
use crate::features::{self, Completion, Knowledge};
use crate::position::{chars_to_utf16, line_text, offset_of};
use crate::stdlib::Stdlib;
use crate::{Analyzer, Error};

/// An open document.
struct Doc {
    path: Option<PathBuf>,
    text: String,
}

/// What to do with the server's response to a forwarded request.
enum Pending {
    Initialize,
    /// Convert positions back to UTF-16; for completions, put these items first.
    Answer {
        uri: String,
        extra: Vec<CompletionItem>,
        /// Labels of the server's items to drop (keywords already given).
        hide: Vec<String>,
    },
}

#[derive(Default)]
struct Shared {
    docs: HashMap<String, Doc>,
    pending: HashMap<RequestId, Pending>,
}

type SharedState = Arc<Mutex<Shared>>;

fn lock(s: &SharedState) -> std::sync::MutexGuard<'_, Shared> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

fn file_path(uri: &str) -> Option<PathBuf> {
    let uri: Uri = uri.parse().ok()?;
    match LspUri::try_from(uri).ok()? {
        LspUri::File(p) => Some(p),
        _ => None,
    }
}

/// Runs the proxy on `client` until the client sends `exit` or goes away.
pub(crate) fn run(client: Connection, analyzer: Arc<dyn Analyzer>) -> Result<(), Error> {
    let stdlib = Arc::new(Stdlib::materialize(&analyzer.version(), analyzer.stdlib())?);
    tracing::info!(stdlib = %stdlib.dir.display(), "froyo-lsp starting");
    let knowledge = Knowledge::new(analyzer.clone(), stdlib.clone());
    let ctx = Context {
        analyzer: analyzer.clone(),
        stdlib: stdlib.clone(),
        builtins: knowledge.builtins.clone(),
        dialect: analyzer.dialect(),
    };
    let (server_side, proxy_side) = Connection::memory();
    let server = std::thread::Builder::new()
        .name("froyo-lsp-starlark".into())
        .spawn(move || starlark_lsp::server::server_with_connection(server_side, ctx))
        .map_err(|e| Error::Protocol(format!("cannot start the server thread: {e}")))?;
    let shared: SharedState = Arc::default();

    let forwarder = {
        let shared = shared.clone();
        let to_client = client.sender.clone();
        let from_server = proxy_side.receiver;
        std::thread::Builder::new()
            .name("froyo-lsp-forward".into())
            .spawn(move || {
                for msg in from_server {
                    let msg = match msg {
                        Message::Notification(n)
                            if n.method == "textDocument/publishDiagnostics" =>
                        {
                            continue;
                        }
                        Message::Response(r) => Message::Response(from_server_response(&shared, r)),
                        other => other,
                    };
                    if to_client.send(msg).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| Error::Protocol(format!("cannot start a thread: {e}")))?
    };
    let (jobs, checker) = {
        let to_client = client.sender.clone();
        diagnostics::spawn(analyzer, stdlib, move |m| {
            let _ = to_client.send(m);
        })
    };

    let to_server = proxy_side.sender;
    let reply = |id: RequestId, result: Value| {
        let _ = client.sender.send(Message::Response(Response {
            id,
            result: Some(result),
            error: None,
        }));
    };
    for msg in &client.receiver {
        match msg {
            Message::Request(mut req) => {
                let uri = req
                    .params
                    .pointer("/textDocument/uri")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let pos: Option<Position> = req
                    .params
                    .get("position")
                    .and_then(|p| serde_json::from_value(p.clone()).ok());
                let answered = match (req.method.as_str(), &uri, pos) {
                    ("initialize", _, _) => {
                        lock(&shared)
                            .pending
                            .insert(req.id.clone(), Pending::Initialize);
                        None
                    }
                    ("textDocument/documentSymbol", Some(uri), _) => {
                        let s = lock(&shared);
                        let syms = s
                            .docs
                            .get(uri)
                            .map(|d| features::document_symbols(&d.text))
                            .unwrap_or_default();
                        Some(json!(syms))
                    }
                    (method, Some(uri), Some(pos)) => {
                        let s = lock(&shared);
                        let doc = s.docs.get(uri);
                        let path = doc.and_then(|d| d.path.clone()).unwrap_or_default();
                        let text = doc.map(|d| d.text.as_str()).unwrap_or_default();
                        let offset = offset_of(text, pos);
                        let mut extra = Vec::new();
                        let mut hide = Vec::new();
                        let answer = match method {
                            "textDocument/completion" => {
                                match knowledge.completion(&path, text, offset) {
                                    Completion::Only(items) => Some(json!(items)),
                                    Completion::Before(items, used) => {
                                        extra = items;
                                        hide = used;
                                        None
                                    }
                                    Completion::Forward => None,
                                }
                            }
                            "textDocument/hover" => {
                                knowledge.hover(&path, text, offset).map(|h| json!(h))
                            }
                            "textDocument/signatureHelp" => {
                                Some(json!(knowledge.signature_help(text, offset)))
                            }
                            _ => None,
                        };
                        if answer.is_none() {
                            // The server takes a byte column (and answers in chars).
                            let line_start = offset_of(text, Position::new(pos.line, 0));
                            req.params["position"]["character"] = json!(offset - line_start);
                        }
                        drop(s);
                        if answer.is_none() {
                            lock(&shared).pending.insert(
                                req.id.clone(),
                                Pending::Answer {
                                    uri: uri.clone(),
                                    extra,
                                    hide,
                                },
                            );
                        }
                        answer
                    }
                    _ => None,
                };
                match answered {
                    Some(result) => reply(req.id, result),
                    None => {
                        if to_server.send(Message::Request(req)).is_err() {
                            break;
                        }
                    }
                }
            }
            Message::Notification(n) => {
                let exit = n.method == "exit";
                track(&shared, &jobs, &n);
                if to_server.send(Message::Notification(n)).is_err() || exit {
                    break;
                }
            }
            Message::Response(r) => {
                if to_server.send(Message::Response(r)).is_err() {
                    break;
                }
            }
        }
    }
    drop(to_server);
    drop(jobs);
    let served = server
        .join()
        .map_err(|_| Error::Protocol("the Starlark server panicked".into()))?;
    let _ = forwarder.join();
    let _ = checker.join();
    served.map_err(|e| Error::Protocol(e.to_string()))
}

/// Keeps the documents' text and queues diagnostics for open and changed ones.
fn track(shared: &SharedState, jobs: &std::sync::mpsc::Sender<Job>, n: &Notification) {
    let p = &n.params;
    let uri = p
        .pointer("/textDocument/uri")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let version = p
        .pointer("/textDocument/version")
        .and_then(Value::as_i64)
        .map(|v| v as i32);
    let text = match n.method.as_str() {
        "textDocument/didOpen" => p.pointer("/textDocument/text").and_then(Value::as_str),
        "textDocument/didChange" => p
            .get("contentChanges")
            .and_then(Value::as_array)
            .and_then(|c| c.last())
            .and_then(|c| c.get("text"))
            .and_then(Value::as_str),
        "textDocument/didClose" => None,
        _ => return,
    };
    let Some(uri) = uri else { return };
    let path = file_path(&uri);
    let mut s = lock(shared);
    match text {
        Some(text) => {
            s.docs.insert(
                uri.clone(),
                Doc {
                    path: path.clone(),
                    text: text.to_owned(),
                },
            );
        }
        None => {
            s.docs.remove(&uri);
        }
    }
    drop(s);
    let (Some(path), Ok(parsed)) = (path, uri.parse::<Uri>()) else {
        return;
    };
    let _ = jobs.send(Job {
        uri: parsed,
        path,
        version,
        text: text.map(str::to_owned),
    });
}

/// The server's response, with the capabilities the proxy adds, completions spliced, and
/// positions converted back to UTF-16.
fn from_server_response(shared: &SharedState, mut r: Response) -> Response {
    let pending = lock(shared).pending.remove(&r.id);
    match (pending, r.result.as_mut()) {
        (Some(Pending::Initialize), Some(result)) => {
            let caps = &mut result["capabilities"];
            caps["documentSymbolProvider"] = json!(true);
            caps["signatureHelpProvider"] = json!({"triggerCharacters": ["(", ","]});
            caps["completionProvider"] = json!({"triggerCharacters": ["\"", "(", ",", "/", ":"]});
            caps["positionEncoding"] = json!("utf-16");
            result["serverInfo"] =
                json!({"name": "froyo-lsp", "version": env!("CARGO_PKG_VERSION")});
        }
        (Some(Pending::Answer { uri, extra, hide }), Some(result)) => {
            let s = lock(shared);
            let text_of = |u: &str| -> Option<String> {
                s.docs
                    .get(u)
                    .map(|d| d.text.clone())
                    .or_else(|| std::fs::read_to_string(file_path(u)?).ok())
            };
            let own = text_of(&uri).unwrap_or_default();
            fix_positions(result, &own, &text_of);
            drop(s);
            if !extra.is_empty() {
                let items =
                    match serde_json::from_value::<Option<CompletionResponse>>(result.take()) {
                        Ok(Some(CompletionResponse::Array(items))) => items,
                        Ok(Some(CompletionResponse::List(list))) => list.items,
                        _ => Vec::new(),
                    };
                let mut labels: Vec<String> = extra.iter().map(|i| i.label.clone()).collect();
                labels.extend(hide);
                let mut all = extra;
                all.extend(items.into_iter().filter(|i| {
                    let label = i.label.trim_end_matches('=').trim();
                    !labels.iter().any(|l| l == label)
                }));
                *result = json!(all);
            }
        }
        (Some(Pending::Answer { extra, .. }), None) if !extra.is_empty() && r.error.is_none() => {
            r.result = Some(json!(extra));
        }
        _ => {}
    }
    r
}

/// Converts every range in a server answer from `char` columns to UTF-16 columns, using the
/// text of the file each range belongs to (`uri`/`targetUri` next to it, else `own`).
fn fix_positions(v: &mut Value, own: &str, text_of: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::Array(items) => {
            for i in items {
                fix_positions(i, own, text_of);
            }
        }
        Value::Object(map) => {
            let target = map
                .get("uri")
                .or_else(|| map.get("targetUri"))
                .and_then(Value::as_str)
                .and_then(text_of);
            for (k, val) in map.iter_mut() {
                let text = match k.as_str() {
                    "range" | "targetRange" | "targetSelectionRange" => {
                        target.as_deref().unwrap_or(own)
                    }
                    "originSelectionRange" | "insert" | "replace" => own,
                    _ => {
                        fix_positions(val, own, text_of);
                        continue;
                    }
                };
                for end in ["start", "end"] {
                    if let (Some(line), Some(ch)) = (
                        val.pointer(&format!("/{end}/line")).and_then(Value::as_u64),
                        val.pointer(&format!("/{end}/character"))
                            .and_then(Value::as_u64),
                    ) {
                        val[end]["character"] =
                            json!(chars_to_utf16(line_text(text, line as u32), ch as u32));
                    }
                }
            }
        }
        _ => {}
    }
}
