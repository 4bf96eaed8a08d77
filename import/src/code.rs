//! Writing Starlark the way a person would: indented blocks, calls that wrap one argument
//! per line when they get long, readable identifiers made from Ansible names.

use crate::expr::str_lit;

/// Lines of Starlark being built, with the current indentation.
#[derive(Debug, Default)]
pub struct Writer {
    pub lines: Vec<String>,
    indent: usize,
}

impl Writer {
    pub fn line(&mut self, text: impl AsRef<str>) {
        let text = text.as_ref();
        if text.is_empty() {
            self.lines.push(String::new());
        } else {
            for l in text.split('\n') {
                self.lines
                    .push(format!("{}{l}", "    ".repeat(self.indent)));
            }
        }
    }

    /// A blank line, unless the last line is blank or opens a block.
    pub fn gap(&mut self) {
        if let Some(last) = self.lines.last()
            && !last.is_empty()
            && !last.trim_end().ends_with(':')
        {
            self.lines.push(String::new());
        }
    }

    pub fn comment(&mut self, text: &str) {
        for l in text.lines() {
            self.line(format!("# {l}").trim_end());
        }
    }

    pub fn open(&mut self, header: impl AsRef<str>) {
        self.line(header);
        self.indent += 1;
    }

    pub fn close(&mut self) {
        self.indent = self.indent.saturating_sub(1);
    }

    pub fn depth(&self) -> usize {
        self.indent
    }

    /// Adds `pass` when the block just opened got no statement.
    pub fn close_block(&mut self, opened_at: usize) {
        if self.lines.len() == opened_at {
            self.line("pass");
        }
        self.close();
    }

    pub fn finish(mut self) -> String {
        while self.lines.last().is_some_and(|l| l.is_empty()) {
            self.lines.pop();
        }
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}

/// A function call: positional arguments, then keyword arguments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Call {
    pub func: String,
    pub args: Vec<String>,
    pub kwargs: Vec<(String, String)>,
}

impl Call {
    pub fn new(func: impl Into<String>) -> Self {
        Call {
            func: func.into(),
            ..Default::default()
        }
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn kw(&mut self, k: &str, v: impl Into<String>) {
        let v = v.into();
        match self.kwargs.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v,
            None => self.kwargs.push((k.to_owned(), v)),
        }
    }

    /// The call on one line, or one argument per line past `width` columns.
    pub fn render(&self, indent: usize, width: usize) -> String {
        let parts: Vec<String> = self
            .args
            .iter()
            .cloned()
            .chain(self.kwargs.iter().map(|(k, v)| format!("{k} = {v}")))
            .collect();
        let one = format!("{}({})", self.func, parts.join(", "));
        if indent * 4 + one.len() <= width && !one.contains('\n') {
            return one;
        }
        let mut s = format!("{}(\n", self.func);
        for p in parts {
            s.push_str("    ");
            s.push_str(&p);
            s.push_str(",\n");
        }
        s.push(')');
        s
    }
}

const KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "load", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
    "True", "False", "None",
];

/// A Starlark identifier from free text: `restart ssh` → `restart_ssh`.
pub fn ident(text: &str) -> String {
    let mut s = String::new();
    let mut last_us = true;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
            last_us = false;
        } else if !last_us {
            s.push('_');
            last_us = true;
        }
    }
    while s.ends_with('_') {
        s.pop();
    }
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    if KEYWORDS.contains(&s.as_str()) {
        s.push('_');
    }
    s
}

/// A Starlark list literal of already-rendered items.
pub fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

pub fn lit(s: &str) -> String {
    str_lit(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idents_and_calls() {
        assert_eq!(ident("restart ssh"), "restart_ssh");
        assert_eq!(ident("Reload systemd!"), "reload_systemd");
        assert_eq!(ident("2fa"), "_2fa");
        assert_eq!(ident("pass"), "pass_");
        let mut c = Call::new("package").arg("\"nginx\"");
        c.kw("state", "\"latest\"");
        assert_eq!(c.render(1, 100), "package(\"nginx\", state = \"latest\")");
        let long = c.render(1, 20);
        assert_eq!(long, "package(\n    \"nginx\",\n    state = \"latest\",\n)");
    }
}
