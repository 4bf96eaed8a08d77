//! A position index of CUE source text: where the label of every field is, by path, and
//! the file's `package` clause and `import`s. libcue reports the path of an error but not
//! its position, so diagnostics look the offending field up here. This only finds
//! positions; what the source means is decided by CUE itself.

use std::collections::HashMap;
use std::ops::Range;

/// One `import` spec.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// `import p "path"` gives `p`.
    pub alias: Option<String>,
    pub path: String,
    /// The spec in the file (alias and path).
    pub span: Range<usize>,
}

/// Positions found in one file.
#[derive(Debug, Default)]
pub struct Index {
    pub package: Option<(String, Range<usize>)>,
    pub imports: Vec<Import>,
    /// The `package` clause and `import` declarations, blanked before evaluation (imports
    /// of froyo's schema packages are bound by the front end, builtin ones are hoisted).
    pub preamble: Vec<Range<usize>>,
    /// Field path → its first label's byte range.
    fields: HashMap<Vec<String>, Range<usize>>,
    /// Every identifier token, for errors that name one (`reference "x" not found`).
    idents: Vec<(String, Range<usize>)>,
}

impl Index {
    /// The label of the field at exactly `path`.
    pub fn field(&self, path: &[String]) -> Option<Range<usize>> {
        self.fields.get(path).cloned()
    }

    /// The label of the field at `path`, else of its nearest ancestor that is in the file,
    /// with how many path elements matched.
    pub fn nearest(&self, path: &[String]) -> Option<(usize, Range<usize>)> {
        (1..=path.len())
            .rev()
            .find_map(|n| self.fields.get(&path[..n]).map(|r| (n, r.clone())))
    }

    /// The first identifier `name` in the file.
    pub fn ident(&self, name: &str) -> Option<Range<usize>> {
        self.idents
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
    }
}

/// Indexes `src`. Never fails: text it does not understand is skipped.
pub fn index(src: &str) -> Index {
    let tokens = lex(src);
    let mut p = Parser {
        src,
        t: tokens,
        i: 0,
        idx: Index::default(),
    };
    for t in &p.t {
        if t.kind == Tok::Ident {
            p.idx
                .idents
                .push((src[t.span.clone()].to_owned(), t.span.clone()));
        }
    }
    p.struct_body(&[], false);
    p.idx
}

/// Splits a CUE error path (`resources."/etc/motd".config.mode`, `a.b[0]`, `a.#B.c`) into
/// its labels, unquoting quoted ones.
pub fn split_path(path: &str) -> Vec<String> {
    let b = path.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'.' => i += 1,
            b'"' => {
                let end = string_end(b, i);
                let lit = &path[i..end.min(path.len())];
                out.push(unquote(lit));
                i = end;
            }
            b'[' => {
                let end = path[i..].find(']').map_or(path.len(), |e| i + e + 1);
                out.push(path[i + 1..end.saturating_sub(1).max(i + 1)].to_owned());
                i = end;
            }
            _ => {
                let end = path[i..].find(['.', '[']).map_or(path.len(), |e| i + e);
                out.push(path[i..end].to_owned());
                i = end;
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
    Str,
    Lit,
    Op,
    Colon,
    Question,
    Bang,
    Eq,
    Comma,
    Newline,
    Ellipsis,
    LBrace,
    RBrace,
    LBrack,
    RBrack,
    LParen,
    RParen,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Tok,
    span: Range<usize>,
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'#'
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c == b'#'
}

/// The end of the string literal starting at `i` (`"…"`, `'…'`, `"""…"""`, `#"…"#`), with
/// interpolations `\(…)` skipped as a whole.
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start;
    let mut hashes = 0;
    while i < b.len() && b[i] == b'#' {
        hashes += 1;
        i += 1;
    }
    if i >= b.len() {
        return b.len();
    }
    let q = b[i];
    let triple = b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q;
    i += if triple { 3 } else { 1 };
    let closes = |j: usize| -> bool {
        let n = if triple { 3 } else { 1 };
        j + n + hashes <= b.len()
            && b[j..j + n].iter().all(|&c| c == q)
            && b[j + n..j + n + hashes].iter().all(|&c| c == b'#')
    };
    while i < b.len() {
        if closes(i) {
            return i + if triple { 3 } else { 1 } + hashes;
        }
        if b[i] == b'\\' && b[i + 1..].iter().take(hashes).all(|&c| c == b'#') {
            let j = i + 1 + hashes;
            if j < b.len() && b[j] == b'(' {
                i = interpolation_end(b, j);
                continue;
            }
            i = j + 1;
            continue;
        }
        if b[i] == b'\n' && !triple {
            return i;
        }
        i += 1;
    }
    b.len()
}

/// The end of `(…)` starting at `i`, with nested strings skipped.
fn interpolation_end(b: &[u8], start: usize) -> usize {
    let mut depth = 0;
    let mut i = start;
    while i < b.len() {
        match b[i] {
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b'"' | b'\'' => {
                i = string_end(b, i);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn lex(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Token>, kind, start, end| {
        out.push(Token {
            kind,
            span: start..end,
        })
    };
    while i < b.len() {
        let c = b[i];
        let start = i;
        match c {
            b'\n' => {
                push(&mut out, Tok::Newline, i, i + 1);
                i += 1;
            }
            b' ' | b'\t' | b'\r' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' | b'\'' => {
                i = string_end(b, i);
                push(&mut out, Tok::Str, start, i);
            }
            b'#' if {
                let mut j = i;
                while j < b.len() && b[j] == b'#' {
                    j += 1;
                }
                j < b.len() && (b[j] == b'"' || b[j] == b'\'')
            } =>
            {
                i = string_end(b, i);
                push(&mut out, Tok::Str, start, i);
            }
            c if is_ident_start(c) => {
                while i < b.len() && is_ident_char(b[i]) {
                    i += 1;
                }
                push(&mut out, Tok::Ident, start, i);
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.')
                {
                    i += 1;
                }
                push(&mut out, Tok::Lit, start, i);
            }
            b'.' if b[i..].starts_with(b"...") => {
                i += 3;
                push(&mut out, Tok::Ellipsis, start, i);
            }
            _ => {
                let two = b.get(i + 1).copied();
                let (kind, len) = match (c, two) {
                    (b'!' | b'=' | b'<' | b'>', Some(b'=' | b'~')) => (Tok::Op, 2),
                    (b'{', _) => (Tok::LBrace, 1),
                    (b'}', _) => (Tok::RBrace, 1),
                    (b'[', _) => (Tok::LBrack, 1),
                    (b']', _) => (Tok::RBrack, 1),
                    (b'(', _) => (Tok::LParen, 1),
                    (b')', _) => (Tok::RParen, 1),
                    (b',', _) => (Tok::Comma, 1),
                    (b':', _) => (Tok::Colon, 1),
                    (b'?', _) => (Tok::Question, 1),
                    (b'!', _) => (Tok::Bang, 1),
                    (b'=', _) => (Tok::Eq, 1),
                    _ => {
                        // One character, whole (UTF-8 aware).
                        let len = src[i..].chars().next().map_or(1, char::len_utf8);
                        (Tok::Op, len)
                    }
                };
                i += len;
                push(&mut out, kind, start, i);
            }
        }
    }
    out
}

/// A label's text: identifiers as written, simple quoted strings unquoted.
fn unquote(lit: &str) -> String {
    if lit.starts_with('"') && !lit.starts_with("\"\"\"") && !lit.contains("\\(") {
        if let Ok(s) = serde_json::from_str::<String>(lit) {
            return s;
        }
        return lit.trim_matches('"').to_owned();
    }
    lit.to_owned()
}

struct Parser<'a> {
    src: &'a str,
    t: Vec<Token>,
    i: usize,
    idx: Index,
}

impl Parser<'_> {
    fn peek(&self) -> Option<Tok> {
        self.t.get(self.i).map(|t| t.kind)
    }

    fn peek_at(&self, n: usize) -> Option<Tok> {
        self.t.get(self.i + n).map(|t| t.kind)
    }

    fn text(&self, i: usize) -> &str {
        self.t.get(i).map_or("", |t| &self.src[t.span.clone()])
    }

    /// The keyword `kw` (and not a field of that name, `for: 1`).
    fn is_kw(&self, kw: &str) -> bool {
        self.peek() == Some(Tok::Ident)
            && self.text(self.i) == kw
            && !matches!(
                self.peek_at(1),
                Some(Tok::Colon | Tok::Question | Tok::Bang)
            )
    }

    fn record(&mut self, path: &[String], span: Range<usize>) {
        self.idx.fields.entry(path.to_vec()).or_insert(span);
    }

    /// Skips a bracketed group starting at the current opener.
    fn skip_group(&mut self) {
        let mut depth = 0usize;
        while let Some(k) = self.peek() {
            self.i += 1;
            match k {
                Tok::LBrace | Tok::LBrack | Tok::LParen => depth += 1,
                Tok::RBrace | Tok::RBrack | Tok::RParen => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return;
                    }
                }
                _ => {}
            }
        }
    }

    fn struct_body(&mut self, prefix: &[String], closed: bool) {
        while let Some(k) = self.peek() {
            match k {
                Tok::Newline | Tok::Comma => self.i += 1,
                Tok::RBrace => {
                    self.i += 1;
                    if closed {
                        return;
                    }
                }
                Tok::RBrack | Tok::RParen => self.i += 1,
                _ => {
                    let before = self.i;
                    self.decl(prefix, prefix.is_empty() && !closed);
                    if self.i == before {
                        self.i += 1;
                    }
                }
            }
        }
    }

    fn decl(&mut self, prefix: &[String], top: bool) {
        let start = self.t[self.i].span.start;
        if top && self.is_kw("package") && self.peek_at(1) == Some(Tok::Ident) {
            let name = self.text(self.i + 1).to_owned();
            let end = self.t[self.i + 1].span.end;
            self.idx.package = Some((name, start..end));
            self.idx.preamble.push(start..end);
            self.i += 2;
            return;
        }
        if top && self.is_kw("import") {
            self.import(start);
            return;
        }
        if self.is_kw("let") {
            self.value(prefix);
            return;
        }
        if self.is_kw("if") || self.is_kw("for") {
            while let Some(k) = self.peek() {
                match k {
                    Tok::LBrace => {
                        self.i += 1;
                        self.struct_body(prefix, true);
                        return;
                    }
                    Tok::LParen | Tok::LBrack => self.skip_group(),
                    Tok::Newline | Tok::Comma | Tok::RBrace => return,
                    _ => self.i += 1,
                }
            }
            return;
        }
        let mut path = prefix.to_vec();
        while let Some((label, span)) = self.label() {
            path.push(label);
            self.record(&path, span);
        }
        self.value(&path);
    }

    fn import(&mut self, start: usize) {
        self.i += 1;
        let mut end = self.t[self.i - 1].span.end;
        let mut alias = None;
        let grouped = self.peek() == Some(Tok::LParen);
        if grouped {
            self.i += 1;
        }
        while let Some(k) = self.peek() {
            match k {
                Tok::RParen if grouped => {
                    end = self.t[self.i].span.end;
                    self.i += 1;
                    break;
                }
                Tok::Ident => {
                    alias = Some((self.text(self.i).to_owned(), self.t[self.i].span.start));
                    self.i += 1;
                }
                Tok::Str => {
                    end = self.import_spec(alias.take());
                    self.i += 1;
                    if !grouped {
                        break;
                    }
                }
                Tok::Newline | Tok::Comma if grouped => self.i += 1,
                _ if grouped => self.i += 1,
                _ => break,
            }
        }
        self.idx.preamble.push(start..end);
    }

    /// Records the import spec whose path is the current token; returns its end.
    fn import_spec(&mut self, alias: Option<(String, usize)>) -> usize {
        let t = self.t[self.i].clone();
        let from = alias.as_ref().map_or(t.span.start, |a| a.1);
        self.idx.imports.push(Import {
            alias: alias.map(|a| a.0),
            path: unquote(&self.src[t.span.clone()]),
            span: from..t.span.end,
        });
        t.span.end
    }

    /// A label followed by `:` (consumed with it), or nothing (and nothing consumed).
    fn label(&mut self) -> Option<(String, Range<usize>)> {
        let save = self.i;
        if self.peek() == Some(Tok::Ident) && self.peek_at(1) == Some(Tok::Eq) {
            self.i += 2;
        }
        let Some(t) = self.t.get(self.i).cloned() else {
            self.i = save;
            return None;
        };
        let text = match t.kind {
            Tok::Ident => {
                self.i += 1;
                self.src[t.span.clone()].to_owned()
            }
            Tok::Str => {
                self.i += 1;
                unquote(&self.src[t.span.clone()])
            }
            Tok::LBrack | Tok::LParen => {
                self.skip_group();
                "[]".to_owned()
            }
            _ => {
                self.i = save;
                return None;
            }
        };
        if matches!(self.peek(), Some(Tok::Question | Tok::Bang)) {
            self.i += 1;
        }
        if self.peek() == Some(Tok::Colon) {
            self.i += 1;
            Some((text, t.span))
        } else {
            self.i = save;
            None
        }
    }

    /// An expression, up to the end of its declaration.
    fn value(&mut self, path: &[String]) {
        let mut prev: Option<Tok> = None;
        while let Some(k) = self.peek() {
            match k {
                Tok::Comma | Tok::RBrace | Tok::RBrack | Tok::RParen => return,
                Tok::Newline => {
                    if matches!(
                        prev,
                        Some(
                            Tok::Ident
                                | Tok::Str
                                | Tok::Lit
                                | Tok::RBrace
                                | Tok::RBrack
                                | Tok::RParen
                                | Tok::Ellipsis
                        )
                    ) {
                        return;
                    }
                    self.i += 1;
                }
                Tok::LBrace => {
                    self.i += 1;
                    self.struct_body(path, true);
                    prev = Some(Tok::RBrace);
                }
                Tok::LBrack => {
                    self.i += 1;
                    self.list(path);
                    prev = Some(Tok::RBrack);
                }
                Tok::LParen => {
                    self.skip_group();
                    prev = Some(Tok::RParen);
                }
                _ => {
                    prev = Some(k);
                    self.i += 1;
                }
            }
        }
    }

    fn list(&mut self, path: &[String]) {
        let mut n = 0usize;
        while let Some(k) = self.peek() {
            match k {
                Tok::RBrack => {
                    self.i += 1;
                    return;
                }
                Tok::Newline | Tok::Comma => self.i += 1,
                Tok::RBrace | Tok::RParen => self.i += 1,
                _ => {
                    let mut p = path.to_vec();
                    p.push(n.to_string());
                    let span = self.t[self.i].span.clone();
                    self.record(&p, span);
                    let before = self.i;
                    self.value(&p);
                    if self.i == before {
                        self.i += 1;
                    }
                    n += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        split_path(s)
    }

    fn at<'a>(src: &'a str, idx: &Index, path: &str) -> &'a str {
        let r = idx
            .field(&p(path))
            .unwrap_or_else(|| panic!("{path} not found"));
        &src[r]
    }

    #[test]
    fn finds_fields_imports_and_the_package() {
        let src = r#"package site

import (
    "strings"
    pkg "froyo.dev/linux/pkg"
)

// The workspace.
workspace: {
    name: "web"
    providers: [{name: "linux.pkg", version: ">=1.0.0"}]
}
resources: nginx: {
    type: "linux.pkg::package"
    config: pkg.#Package & {
        name: strings.ToLower("NGINX")
        state: "presnt"
    }
    target: labels: {env: "prod", role: "web"}
    require: ["site", "other"]
}
resources: "/etc/motd": {type: "linux.file::file", config: {content: "a \(x) b"}}
if true {
    extra: a: 1
}
"#;
        let idx = index(src);
        assert_eq!(idx.package.as_ref().map(|p| p.0.as_str()), Some("site"));
        assert_eq!(
            idx.imports
                .iter()
                .map(|i| (i.alias.clone(), i.path.clone()))
                .collect::<Vec<_>>(),
            [
                (None, "strings".to_owned()),
                (Some("pkg".into()), "froyo.dev/linux/pkg".into())
            ]
        );
        assert_eq!(idx.preamble.len(), 2);
        assert_eq!(at(src, &idx, "resources.nginx.config.state"), "state");
        assert_eq!(at(src, &idx, "resources.nginx.config.name"), "name");
        assert_eq!(at(src, &idx, "resources.nginx.target.labels.role"), "role");
        assert_eq!(at(src, &idx, "resources.nginx.require.1"), "\"other\"");
        assert_eq!(at(src, &idx, "workspace.providers.0.version"), "version");
        assert_eq!(
            at(src, &idx, "resources.\"/etc/motd\".config.content"),
            "content"
        );
        assert_eq!(at(src, &idx, "extra.a"), "a");
        let line = |r: Range<usize>| src[..r.start].matches('\n').count() + 1;
        assert_eq!(
            idx.nearest(&p("resources.nginx.config.state.x"))
                .map(|(n, r)| (n, line(r))),
            Some((4, 17))
        );
        assert!(idx.ident("strings").is_some());
    }

    /// Text cut anywhere (what an editor sends while typing) is indexed without a panic.
    #[test]
    fn every_prefix_of_a_file_is_indexed() {
        let src = "package x\nimport (\n\tp \"froyo.dev/linux/pkg\"\n)\n// é ü\na: #\"raw \\#(x) \"# + \"\"\"\n\tmulti \\(y) ü\n\t\"\"\"\nb: [for k, v in a {\"\\(k)\": v}]\nc?: {d!: 1, [string]: _|_, (e): 2, ...}\nlet z = 1\n";
        for (i, _) in src.char_indices() {
            let idx = index(&src[..i]);
            let _ = idx.nearest(&p("c.d"));
        }
        let idx = index(src);
        assert!(idx.field(&p("c.d")).is_some());
        assert!(idx.field(&p("b")).is_some());
        assert_eq!(idx.imports.len(), 1);
    }

    #[test]
    fn splits_error_paths() {
        assert_eq!(
            p("resources.\"/etc/x\".config.mode"),
            ["resources", "/etc/x", "config", "mode"]
        );
        assert_eq!(p("a.#B.c[0]"), ["a", "#B", "c", "0"]);
    }
}
