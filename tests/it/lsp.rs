//! `froyo lsp` driven over stdio with JSON-RPC, as an editor would: diagnostics,
//! completion, hover, definition, symbols and signature help (`tests/fixtures/lsp/`).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::fixtures;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `froyo lsp`, killed (by PID, through `Child`) when dropped.
pub struct Server {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Notifications received while waiting for something else.
    pub notifications: Vec<Value>,
    pub cache: tempfile::TempDir,
    /// The result of `initialize`.
    pub init: Value,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length:") {
            len = v.trim().parse::<usize>().ok();
        }
    }
    let mut buf = vec![0; len?];
    r.read_exact(&mut buf).ok()?;
    serde_json::from_slice(&buf).ok()
}

pub fn uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

impl Server {
    pub fn start() -> Server {
        let cache = tempfile::tempdir().expect("tempdir");
        let mut child = Command::new(env!("CARGO_BIN_EXE_froyo"))
            .arg("lsp")
            .current_dir(fixtures().join("lsp"))
            .env("XDG_CACHE_HOME", cache.path())
            .env("RUST_LOG", "froyo_lsp=warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start froyo lsp");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            while let Some(msg) = read_message(&mut stdout) {
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let mut s = Server {
            child,
            stdin,
            rx,
            next_id: 0,
            notifications: Vec::new(),
            cache,
            init: Value::Null,
        };
        let root = uri(&fixtures().join("lsp"));
        let init = s.request(
            "initialize",
            json!({"processId": null, "rootUri": root, "capabilities": {}}),
        );
        assert!(init["capabilities"].is_object(), "{init}");
        s.init = init;
        s.notify("initialized", json!({}));
        s
    }

    pub fn send(&mut self, msg: &Value) {
        let body = msg.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("write");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn recv(&mut self, deadline: Instant) -> Option<Value> {
        match self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            Ok(v) => Some(v),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => panic!("froyo lsp closed stdout"),
        }
    }

    /// Sends a request and returns its result (panics on an error response).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let msg = self
                .recv(deadline)
                .unwrap_or_else(|| panic!("no answer to {method}"));
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                assert!(msg.get("error").is_none(), "{method}: {msg}");
                return msg["result"].clone();
            }
            if msg.get("method").is_some() && msg.get("id").is_none() {
                self.notifications.push(msg);
            }
        }
    }

    /// The next `publishDiagnostics` for `uri` (seen before or arriving now).
    pub fn diagnostics(&mut self, uri: &str) -> Value {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(i) = self.notifications.iter().position(|n| {
                n["method"] == "textDocument/publishDiagnostics" && n["params"]["uri"] == uri
            }) {
                return self.notifications.remove(i)["params"].clone();
            }
            let msg = self
                .recv(deadline)
                .unwrap_or_else(|| panic!("no diagnostics for {uri}"));
            if msg.get("id").is_none() {
                self.notifications.push(msg);
            }
        }
    }

    pub fn open(&mut self, path: &Path, text: &str) -> String {
        let u = uri(path);
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": u, "languageId": "starlark", "version": 1, "text": text}}),
        );
        u
    }

    pub fn at(&mut self, method: &str, u: &str, line: u32, character: u32) -> Value {
        self.request(
            method,
            json!({"textDocument": {"uri": u}, "position": {"line": line, "character": character}}),
        )
    }

    /// `shutdown` + `exit`; the process must end by itself with status 0.
    pub fn shutdown(mut self) {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r, Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "froyo lsp exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "froyo lsp did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn fixture(name: &str) -> (PathBuf, String) {
    let path = fixtures().join("lsp").join(name);
    let text = std::fs::read_to_string(&path).expect("fixture");
    (path, text)
}

/// The UTF-16 column of the first `needle` on `line` of `text`.
fn col16(text: &str, line: usize, needle: &str) -> u32 {
    let l = text.lines().nth(line).expect("line");
    l[..l.find(needle).expect("needle")].encode_utf16().count() as u32
}

fn labels(items: &Value) -> Vec<String> {
    let items = items.get("items").unwrap_or(items);
    items
        .as_array()
        .unwrap_or_else(|| panic!("no completion items: {items}"))
        .iter()
        .map(|i| i["label"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn item<'a>(items: &'a Value, label: &str) -> &'a Value {
    let items = items.get("items").unwrap_or(items);
    items
        .as_array()
        .and_then(|a| a.iter().find(|i| i["label"] == label))
        .unwrap_or_else(|| panic!("no item `{label}` in {items}"))
}

#[test]
fn lsp_initialize_advertises_capabilities_and_shuts_down() {
    let s = Server::start();
    let caps = &s.init["capabilities"];
    for cap in [
        "completionProvider",
        "hoverProvider",
        "definitionProvider",
        "documentSymbolProvider",
        "signatureHelpProvider",
    ] {
        assert!(
            caps.get(cap).is_some_and(|c| !c.is_null()),
            "no {cap}: {caps}"
        );
    }
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["textDocumentSync"], 1, "full sync: {caps}");
    s.shutdown();
}

#[test]
fn lsp_schema_diagnostic_on_misspelled_field_has_utf16_range() {
    let mut s = Server::start();
    let (path, text) = fixture("misspelled.star");
    let u = s.open(&path, &text);
    let d = s.diagnostics(&u);
    let diags = d["diagnostics"].as_array().expect("array");
    let schema: Vec<&Value> = diags.iter().filter(|d| d["code"] == "E-SCHEMA").collect();
    assert_eq!(schema.len(), 1, "{d}");
    let range = &schema[0]["range"];
    assert_eq!(range["start"]["line"], 1, "{d}");
    // The line holds `é` and `🍦` before the field: UTF-16 columns, not bytes or chars.
    assert_eq!(range["start"]["character"], col16(&text, 1, "mdoe"), "{d}");
    assert!(
        schema[0]["message"].as_str().unwrap().contains("mdoe"),
        "{d}"
    );
    assert_eq!(schema[0]["severity"], 1);
    assert_eq!(d["version"], 1);

    // Fixing the typo clears it.
    let fixed = text.replace("mdoe", "mode");
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    let d = s.diagnostics(&u);
    assert_eq!(d["version"], 2);
    assert_eq!(d["diagnostics"], json!([]), "{d}");
    s.shutdown();
}

#[test]
fn lsp_parse_error_and_unsaved_text_are_reported() {
    let mut s = Server::start();
    let (path, _) = fixture("misspelled.star");
    let u = s.open(&path, "x = resource(\"linux.file::file\",\n");
    let d = s.diagnostics(&u);
    assert_eq!(d["diagnostics"][0]["code"], "E-PARSE", "{d}");
    s.shutdown();
}

#[test]
fn lsp_unknown_facts_are_not_errors_in_the_editor() {
    let mut s = Server::start();
    let (path, text) = fixture("facts.star");
    let u = s.open(&path, &text);
    let d = s.diagnostics(&u);
    assert_eq!(d["diagnostics"], json!([]), "{d}");
    s.shutdown();
}

#[test]
fn lsp_completes_resource_types_fields_and_wrapper_keywords() {
    let mut s = Server::start();
    let (path, text) = fixture("complete.star");
    let u = s.open(&path, &text);

    // Types inside `resource("…`.
    let line3 = text.lines().nth(3).unwrap();
    let in_type = line3.find("linux.f").unwrap() as u32 + 7;
    let r = s.at("textDocument/completion", &u, 3, in_type);
    assert!(labels(&r).contains(&"linux.file::file".to_owned()), "{r}");
    let edit = &item(&r, "linux.file::file")["textEdit"]["range"];
    assert_eq!(edit["start"]["character"], line3.find("linux.f").unwrap());

    // Fields of `linux.file::file` inside its `resource(...)`, minus `content`.
    let end = line3.rfind(')').unwrap() as u32;
    let r = s.at("textDocument/completion", &u, 3, end);
    let l = labels(&r);
    assert!(
        l.contains(&"mode".to_owned()) && l.contains(&"owner".to_owned()),
        "{r}"
    );
    assert!(!l.contains(&"content".to_owned()), "{l:?}");
    let state = item(&r, "state");
    assert!(
        state["detail"]
            .as_str()
            .unwrap()
            .contains("default \"file\""),
        "{state}"
    );
    assert_eq!(state["insertText"], "state = ");

    // The same fields inside the stdlib wrapper `file(...)`.
    let line4 = text.lines().nth(4).unwrap();
    let r = s.at(
        "textDocument/completion",
        &u,
        4,
        line4.rfind(')').unwrap() as u32,
    );
    let l = labels(&r);
    assert!(
        l.contains(&"mode".to_owned()) && l.contains(&"when".to_owned()),
        "{l:?}"
    );
    assert!(!l.contains(&"content".to_owned()), "{l:?}");

    // Stdlib symbols after `load("@stdlib//linux.star", `.
    let r = s.at("textDocument/completion", &u, 0, 29);
    let l = labels(&r);
    assert!(
        l.contains(&"service".to_owned()) && !l.contains(&"_name".to_owned()),
        "{l:?}"
    );

    // Built-ins at the top level come from starlark_lsp.
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": 2}, "contentChanges": [{"text": format!("{text}res")}]}),
    );
    let r = s.at(
        "textDocument/completion",
        &u,
        text.lines().count() as u32,
        3,
    );
    assert!(labels(&r).contains(&"resource".to_owned()), "{r}");
    s.shutdown();
}

#[test]
fn lsp_hover_shows_type_field_and_builtin_docs() {
    let mut s = Server::start();
    let (path, text) = fixture("complete.star");
    let u = s.open(&path, &text);
    let line3 = text.lines().nth(3).unwrap();
    let h = s.at(
        "textDocument/hover",
        &u,
        3,
        line3.find("linux.file").unwrap() as u32 + 2,
    );
    let v = h["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        v.contains("linux.file::file") && v.contains("regular file"),
        "{h}"
    );
    let h = s.at(
        "textDocument/hover",
        &u,
        3,
        line3.find("content").unwrap() as u32 + 1,
    );
    let v = h["contents"]["value"].as_str().unwrap_or_default();
    assert!(
        v.contains("content") && v.contains("complete content"),
        "{h}"
    );
    let h = s.at(
        "textDocument/hover",
        &u,
        3,
        line3.find("resource").unwrap() as u32 + 1,
    );
    assert!(h.to_string().contains("resource"), "{h}");
    // A stdlib wrapper: its docstring, through `load()`.
    let h = s.at("textDocument/hover", &u, 4, 9);
    assert!(h.to_string().contains("A regular file"), "{h}");
    s.shutdown();
}

#[test]
fn lsp_definition_jumps_into_the_stdlib_cache() {
    let mut s = Server::start();
    let (path, text) = fixture("complete.star");
    let u = s.open(&path, &text);
    let r = s.at(
        "textDocument/definition",
        &u,
        2,
        col16(&text, 2, "package") + 1,
    );
    let loc = if r.is_array() {
        r[0].clone()
    } else {
        r.clone()
    };
    let target = loc["uri"]
        .as_str()
        .or(loc["targetUri"].as_str())
        .unwrap_or_else(|| panic!("no location: {r}"));
    let file = target.strip_prefix("file://").expect("a file URI");
    assert!(
        file.starts_with(s.cache.path().to_str().unwrap()),
        "{target}"
    );
    assert!(file.ends_with("/linux.star"), "{target}");
    let range = loc
        .get("range")
        .or(loc.get("targetSelectionRange"))
        .unwrap();
    let line = range["start"]["line"].as_u64().unwrap() as usize;
    let source = std::fs::read_to_string(file).expect("the cached stdlib file");
    assert!(
        source
            .lines()
            .nth(line)
            .unwrap()
            .starts_with("def package("),
        "{r}"
    );
    s.shutdown();
}

#[test]
fn lsp_document_symbols_and_signature_help() {
    let mut s = Server::start();
    let (path, text) = fixture("complete.star");
    let u = s.open(&path, &text);
    let r = s.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": u}}),
    );
    let names: Vec<&str> = r
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"nginx") && names.contains(&"motd"), "{r}");
    assert!(names.contains(&"linux.file::file \"/etc/motd\""), "{r}");

    let line3 = text.lines().nth(3).unwrap();
    let r = s.at(
        "textDocument/signatureHelp",
        &u,
        3,
        line3.find("\"/etc").unwrap() as u32,
    );
    let sig = &r["signatures"][0];
    assert!(
        sig["label"].as_str().unwrap().starts_with("resource("),
        "{r}"
    );
    assert_eq!(r["activeParameter"], 1, "{r}");
    let line4 = text.lines().nth(4).unwrap();
    let r = s.at(
        "textDocument/signatureHelp",
        &u,
        4,
        line4.find("\"x\"").unwrap() as u32,
    );
    assert!(
        r["signatures"][0]["label"]
            .as_str()
            .unwrap()
            .starts_with("file(path"),
        "{r}"
    );
    s.shutdown();
}

/// Neovim (Debian's `neovim`, 0.7 or later) as a real editor client: it must show the
/// `E-SCHEMA` diagnostic, complete `linux.file::file` fields and jump into the stdlib.
#[test]
fn lsp_neovim_shows_schema_error_completes_fields_and_jumps_into_stdlib() {
    let dir = fixtures().join("lsp");
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("nvim.json");
    let (_, text) = fixture("complete.star");
    let line3 = text.lines().nth(3).unwrap();
    let complete_at = format!("3:{}", line3.rfind(')').unwrap());
    let definition_at = format!("2:{}", col16(&text, 2, "package") + 1);
    // Stopped by PID on every path out of this test (its `froyo lsp` ends with its stdin).
    struct Guard(Child);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut nvim = Guard(
        Command::new("nvim")
            .args(["--headless", "--clean", "-u"])
            .arg(dir.join("nvim/init.lua"))
            .current_dir(&dir)
            .env("FROYO_BIN", env!("CARGO_BIN_EXE_froyo"))
            .env("FROYO_NVIM_OUT", &out)
            .env("FROYO_NVIM_ROOT", &dir)
            .env("FROYO_NVIM_ERR", dir.join("misspelled.star"))
            .env("FROYO_NVIM_COMPLETE", dir.join("complete.star"))
            .env("FROYO_NVIM_COMPLETE_AT", &complete_at)
            .env("FROYO_NVIM_DEFINITION_AT", &definition_at)
            // Neovim's own state, logs and the stdlib cache stay in the temporary directory.
            .env("XDG_CACHE_HOME", tmp.path())
            .env("XDG_STATE_HOME", tmp.path())
            .env("XDG_DATA_HOME", tmp.path())
            .env("XDG_CONFIG_HOME", tmp.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start nvim (Debian package `neovim`)"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if nvim.0.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "nvim did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let got: Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("nvim wrote its results"))
            .expect("JSON from nvim");
    assert_eq!(got["errors"], json!([]), "{got}");

    let (_, bad) = fixture("misspelled.star");
    let schema = got["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "E-SCHEMA")
        .unwrap_or_else(|| panic!("no E-SCHEMA diagnostic in Neovim: {got}"));
    assert_eq!(schema["lnum"], 1, "{got}");
    // Neovim turns the UTF-16 column into a byte column.
    assert_eq!(
        schema["col"],
        bad.lines().nth(1).unwrap().find("mdoe").unwrap(),
        "{got}"
    );

    let completion: Vec<&str> = got["completion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["label"].as_str().unwrap_or_default())
        .collect();
    for field in ["mode", "owner", "group", "state"] {
        assert!(
            completion.contains(&field),
            "no `{field}` in {completion:?}"
        );
    }
    assert!(!completion.contains(&"content"), "{completion:?}");

    let def = &got["definition"];
    let file = def["file"].as_str().unwrap_or_default();
    assert!(
        file.starts_with(tmp.path().to_str().unwrap()) && file.ends_with("/linux.star"),
        "{got}"
    );
    assert!(
        def["line"]
            .as_str()
            .unwrap_or_default()
            .starts_with("def package("),
        "{got}"
    );
}

#[test]
fn lsp_rapid_changes_are_debounced_into_one_check() {
    let mut s = Server::start();
    let (path, text) = fixture("misspelled.star");
    let u = s.open(&path, &text);
    assert_eq!(s.diagnostics(&u)["version"], 1);
    for v in 2..=5 {
        let t = if v % 2 == 0 {
            text.replace("mdoe", "mode")
        } else {
            text.clone()
        };
        s.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": u, "version": v}, "contentChanges": [{"text": t}]}),
        );
    }
    // Only the last text (version 5, the typo again) is checked and published.
    let d = s.diagnostics(&u);
    assert_eq!(d["version"], 5, "{d}");
    assert_eq!(d["diagnostics"][0]["code"], "E-SCHEMA", "{d}");
    // A request answered after the debounce window proves nothing else is queued.
    std::thread::sleep(Duration::from_millis(400));
    let _ = s.request(
        "textDocument/documentSymbol",
        json!({"textDocument": {"uri": u}}),
    );
    let more: Vec<&Value> = s
        .notifications
        .iter()
        .filter(|n| n["method"] == "textDocument/publishDiagnostics")
        .collect();
    assert!(more.is_empty(), "{more:?}");
    s.shutdown();
}

#[test]
fn lsp_duplicate_resource_points_at_the_first_declaration() {
    let mut s = Server::start();
    let (path, text) = fixture("dup.star");
    let u = s.open(&path, &text);
    let d = s.diagnostics(&u);
    let dup = &d["diagnostics"][0];
    assert_eq!(dup["code"], "E-DUP-ID", "{d}");
    assert_eq!(dup["range"]["start"]["line"], 3, "{d}");
    let related = &dup["relatedInformation"][0];
    assert_eq!(related["location"]["uri"], u, "{d}");
    assert_eq!(related["location"]["range"]["start"]["line"], 2, "{d}");
    assert_eq!(related["message"], "first declared here");
    s.shutdown();
}

#[test]
fn lsp_forwarded_positions_are_utf16_and_load_paths_resolve() {
    let mut s = Server::start();
    let (path, text) = fixture("complete.star");
    let u = s.open(&path, &text);
    // `nginx` after six `🍦` (each 2 UTF-16 units, 1 char, 4 bytes): the column must be
    // converted for the server, and its answer back.
    let r = s.at(
        "textDocument/definition",
        &u,
        5,
        col16(&text, 5, "nginx") + 1,
    );
    let loc = if r.is_array() {
        r[0].clone()
    } else {
        r.clone()
    };
    assert_eq!(loc["targetUri"], u, "{r}");
    assert_eq!(loc["targetRange"]["start"]["line"], 2, "{r}");
    let origin = &loc["originSelectionRange"]["start"];
    assert_eq!(origin["character"], col16(&text, 5, "nginx"), "{r}");
    let r = s.at(
        "textDocument/definition",
        &u,
        5,
        col16(&text, 5, "package") + 1,
    );
    assert!(r.to_string().contains("linux.star"), "{r}");
    // The load path string itself.
    let r = s.at("textDocument/definition", &u, 0, 12);
    assert!(r.to_string().contains("linux.star"), "{r}");
    s.shutdown();
}
