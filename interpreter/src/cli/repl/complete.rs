//! Tab completion and input continuation for `froyo repl`: built-ins, the session's
//! variables and their attributes, `host.facts.` paths, stdlib modules and symbols in
//! `load()`, resource types in `resource("`, target names and `:commands`.

use std::cell::RefCell;
use std::rc::Rc;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;

use crate::eval::FACT_TREE;
use crate::eval::repl::Session;
use crate::inventory::Inventory;
use crate::schema::Registry;

const COMMANDS: &[&str] = &[
    ":clear", ":doc", ":graph", ":help", ":json", ":load", ":on", ":paste", ":plan", ":quit",
];
const KEYWORDS: &[&str] = &[
    "and", "break", "continue", "def", "elif", "else", "for", "if", "in", "lambda", "load", "not",
    "or", "pass", "return", "True", "False", "None",
];
const INDENT: &str = "    ";
/// The attributes of a host value (`eval/values.rs`, `Target::dir_attr`).
const TARGET_ATTRS: &[&str] = &["address", "facts", "labels", "name", "vars"];

/// What completion knows; refreshed after every input.
#[derive(Default)]
struct Data {
    builtins: Vec<String>,
    /// Name, type and attributes of each global variable of the session.
    variables: Vec<(String, String, Vec<String>)>,
    types: Vec<String>,
    /// `@stdlib//NAME.star` → its public symbols.
    stdlib: Vec<(String, Vec<String>)>,
    targets: Vec<String>,
}

/// Shared between the loop (which updates it) and the line editor's helper.
#[derive(Clone, Default)]
pub struct World(Rc<RefCell<Data>>);

impl World {
    pub fn new(registry: &Registry, inventory: &Inventory) -> World {
        let builtins = crate::eval::repl::globals()
            .names()
            .map(|n| n.as_str().to_owned())
            .collect();
        let stdlib = crate::bundled::STDLIB
            .iter()
            .map(|(name, src)| (format!("@stdlib//{name}"), public_symbols(src)))
            .collect();
        World(Rc::new(RefCell::new(Data {
            builtins,
            variables: Vec::new(),
            types: registry.types().map(|t| t.name.clone()).collect(),
            stdlib,
            targets: inventory.targets.iter().map(|t| t.name.clone()).collect(),
        })))
    }

    pub fn update(&self, session: &Session<'_, '_>) {
        self.0.borrow_mut().variables = session.variables();
    }

    /// Candidates for the text before the cursor: where the replaced word starts, and the
    /// words.
    pub fn complete(&self, before: &str) -> (usize, Vec<String>) {
        let d = self.0.borrow();
        let (start, mut words) = complete_in(&d, before);
        words.sort();
        words.dedup();
        (start, words)
    }
}

/// Top-level `def NAME` and `NAME =` of a stdlib module, without `_private` ones.
fn public_symbols(src: &str) -> Vec<String> {
    src.lines()
        .filter_map(|l| {
            let name = if let Some(rest) = l.strip_prefix("def ") {
                rest.split('(').next()?
            } else {
                let (lhs, _) = l.split_once(" = ")?;
                lhs
            };
            let ok = !name.is_empty()
                && !name.starts_with('_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            ok.then(|| name.to_owned())
        })
        .collect()
}

fn starting<'a>(items: impl IntoIterator<Item = &'a str>, prefix: &str) -> Vec<String> {
    items
        .into_iter()
        .filter(|i| i.starts_with(prefix))
        .map(str::to_owned)
        .collect()
}

fn complete_in(d: &Data, before: &str) -> (usize, Vec<String>) {
    // Tab at the start of a line indents (also a tab in pasted code), as in Python.
    if before.trim().is_empty() {
        return (before.len(), vec![INDENT.to_owned()]);
    }
    let trimmed = before.trim_start();
    if trimmed.starts_with(':') {
        return complete_command(d, before);
    }
    if let Some((quote_at, inside)) = open_string(before) {
        return (
            quote_at + 1,
            complete_string(d, &before[..quote_at], inside),
        );
    }
    // The dotted word before the cursor: `h.facts.o`, `prin`, `.na` after `host("x")`.
    let word_start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let word = &before[word_start..];
    let Some((path, partial)) = word.rsplit_once('.') else {
        let mut names: Vec<&str> = d.builtins.iter().map(String::as_str).collect();
        names.extend(d.variables.iter().map(|(n, _, _)| n.as_str()));
        names.extend(KEYWORDS);
        return (word_start, starting(names, word));
    };
    let start = before.len() - partial.len();
    let segments: Vec<&str> = path.split('.').collect();
    // `….facts.` and `….facts.os.`
    if let Some(i) = segments.iter().rposition(|s| *s == "facts") {
        let under = &segments[i + 1..];
        let words = match under {
            [] => starting(FACT_TREE.iter().map(|(ns, _)| *ns), partial),
            [ns] => FACT_TREE
                .iter()
                .find(|(n, _)| n == ns)
                .map(|(_, f)| starting(f.iter().copied(), partial))
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        return (start, words);
    }
    match segments.as_slice() {
        // `host("web-01").` or `hosts()[0].`
        [""] if before[..word_start].ends_with(')') || before[..word_start].ends_with(']') => {
            (start, starting(TARGET_ATTRS.iter().copied(), partial))
        }
        [var] => {
            let attrs = d
                .variables
                .iter()
                .find(|(n, _, _)| n == var)
                .map(|(_, _, a)| starting(a.iter().map(String::as_str), partial))
                .unwrap_or_default();
            (start, attrs)
        }
        _ => (start, Vec::new()),
    }
}

fn complete_command(d: &Data, before: &str) -> (usize, Vec<String>) {
    let trimmed = before.trim_start();
    let lead = before.len() - trimmed.len();
    match trimmed.split_once(' ') {
        None => (lead, starting(COMMANDS.iter().copied(), trimmed)),
        Some((cmd, arg)) => {
            let start = before.len() - arg.len();
            let words = match cmd {
                ":on" => starting(d.targets.iter().map(String::as_str), arg),
                ":doc" => {
                    let mut names: Vec<&str> = d.builtins.iter().map(String::as_str).collect();
                    names.extend(d.types.iter().map(String::as_str));
                    starting(names, arg)
                }
                _ => Vec::new(),
            };
            (start, words)
        }
    }
}

/// Inside a string literal (`"…` or `'…` not closed before the cursor): where its quote
/// is and the text typed so far.
fn open_string(before: &str) -> Option<(usize, &str)> {
    let mut open: Option<(usize, char)> = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match open {
            Some(_) if escaped => escaped = false,
            Some(_) if c == '\\' => escaped = true,
            Some((_, q)) if c == q => open = None,
            Some(_) => {}
            None if c == '#' => return None,
            None if c == '"' || c == '\'' => open = Some((i, c)),
            None => {}
        }
    }
    open.map(|(i, _)| (i, &before[i + 1..]))
}

/// What goes in a string, by the call it is an argument of.
fn complete_string(d: &Data, head: &str, inside: &str) -> Vec<String> {
    let head = head.trim_end();
    let call_of_first_arg = |name: &str| {
        head.strip_suffix('(').map(str::trim_end).is_some_and(|h| {
            h.ends_with(name)
                && !h[..h.len() - name.len()]
                    .ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        })
    };
    if call_of_first_arg("resource") {
        return starting(d.types.iter().map(String::as_str), inside);
    }
    if call_of_first_arg("host") {
        return starting(d.targets.iter().map(String::as_str), inside);
    }
    if call_of_first_arg("facts") {
        return starting(crate::facts::KNOWN.iter().copied(), inside);
    }
    if call_of_first_arg("load") {
        return starting(d.stdlib.iter().map(|(m, _)| m.as_str()), inside);
    }
    // `load("@stdlib//linux.star", "fi`: the module's symbols.
    if let Some(load) = head.rfind("load(") {
        let args = &head[load + 5..];
        if let Some(module) = args
            .split(',')
            .next()
            .map(|m| m.trim().trim_matches(|c| c == '"' || c == '\''))
            && let Some((_, symbols)) = d.stdlib.iter().find(|(m, _)| m == module)
            && !args.contains(')')
        {
            return starting(symbols.iter().map(String::as_str), inside);
        }
    }
    Vec::new()
}

/// Whether an input is incomplete: an open bracket or string, a trailing backslash, or
/// a block (a line ending in `:`) not yet closed by a blank line.
pub fn needs_more(src: &str) -> bool {
    let mut depth: i32 = 0;
    let mut in_string: Option<&str> = None;
    let mut block = false;
    let mut last_line_blank = false;
    for line in src.split('\n') {
        let mut code_end = None;
        let mut i = 0;
        let bytes = line.as_bytes();
        while i < bytes.len() {
            let rest = &line[i..];
            if let Some(q) = in_string {
                if rest.starts_with('\\') {
                    i += 2;
                    continue;
                }
                if rest.starts_with(q) {
                    in_string = None;
                    i += q.len();
                    continue;
                }
                i += rest.chars().next().map_or(1, char::len_utf8);
                continue;
            }
            match bytes[i] {
                b'#' => break,
                b'"' | b'\'' => {
                    let q = if rest.starts_with("\"\"\"") {
                        "\"\"\""
                    } else if rest.starts_with("'''") {
                        "'''"
                    } else if bytes[i] == b'"' {
                        "\""
                    } else {
                        "'"
                    };
                    in_string = Some(q);
                    i += q.len();
                    continue;
                }
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ => {}
            }
            code_end = Some(i);
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
        // A one-line string that is not closed is a syntax error, not a continuation.
        if matches!(in_string, Some("\"") | Some("'")) {
            in_string = None;
        }
        let code = &line[..code_end.map_or(0, |e| e + 1)];
        if code.trim_end().ends_with(':') && depth <= 0 && in_string.is_none() {
            block = true;
        }
        last_line_blank = line.trim().is_empty();
    }
    in_string.is_some()
        || depth > 0
        || src.trim_end_matches(' ').ends_with('\\')
        || (block && !last_line_blank)
}

/// The line editor's helper: completion only (no hints, highlighting or validation).
pub struct Helper {
    world: World,
}

impl Helper {
    pub fn new(world: World) -> Helper {
        Helper { world }
    }
}

impl Completer for Helper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, words) = self.world.complete(&line[..pos]);
        Ok((
            start,
            words
                .into_iter()
                .map(|w| Pair {
                    display: w.clone(),
                    replacement: w,
                })
                .collect(),
        ))
    }
}

impl Hinter for Helper {
    type Hint = String;
}

impl Highlighter for Helper {}

impl Validator for Helper {}

impl rustyline::Helper for Helper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Data {
        Data {
            builtins: vec![
                "resource".into(),
                "require".into(),
                "host".into(),
                "print".into(),
            ],
            variables: vec![(
                "h".into(),
                "target".into(),
                TARGET_ATTRS.iter().map(|s| s.to_string()).collect(),
            )],
            types: vec!["linux.file::file".into(), "linux.pkg::package".into()],
            stdlib: vec![(
                "@stdlib//linux.star".into(),
                vec!["file".into(), "directory".into()],
            )],
            targets: vec!["local".into(), "web-01".into()],
        }
    }

    fn words(before: &str) -> (usize, Vec<String>) {
        let (s, mut w) = complete_in(&data(), before);
        w.sort();
        (s, w)
    }

    #[test]
    fn completes_by_context() {
        assert_eq!(
            words("re"),
            (
                0,
                vec!["require".into(), "resource".into(), "return".into()]
            )
        );
        assert_eq!(words("x = h.fa"), (6, vec!["facts".into()]));
        assert_eq!(
            words("h.facts."),
            (
                8,
                vec!["hw".into(), "net".into(), "os".into(), "pkg".into()]
            )
        );
        assert_eq!(
            words("host(\"local\").facts.os.b"),
            (23, vec!["basic".into()])
        );
        assert_eq!(words("host(\"local\").n"), (14, vec!["name".into()]));
        assert_eq!(
            words("resource(\"linux.f"),
            (10, vec!["linux.file::file".into()])
        );
        assert_eq!(words("host(\"w"), (6, vec!["web-01".into()]));
        assert_eq!(
            words("load(\"@std"),
            (6, vec!["@stdlib//linux.star".into()])
        );
        assert_eq!(
            words("load(\"@stdlib//linux.star\", \"d"),
            (29, vec!["directory".into()])
        );
        assert_eq!(words(":o"), (0, vec![":on".into()]));
        assert_eq!(words(":on we"), (4, vec!["web-01".into()]));
        assert_eq!(words("print(\"re"), (7, Vec::<String>::new()));
        assert_eq!(words(""), (0, vec!["    ".into()]));
        assert_eq!(words("    "), (4, vec!["    ".into()]));
        assert_eq!(words(":l"), (0, vec![":load".into()]));
    }

    #[test]
    fn continuation() {
        assert!(needs_more("def f(x):"));
        assert!(needs_more("def f(x):\n    return x"));
        assert!(!needs_more("def f(x):\n    return x\n"));
        assert!(needs_more("x = [1,"));
        assert!(!needs_more("x = [1,\n 2]"));
        assert!(!needs_more("x = \"a:\""));
        assert!(!needs_more("x = 1  # note:"));
        assert!(needs_more("s = \"\"\"a"));
        assert!(!needs_more("d = {\"a\": 1}"));
        assert!(!needs_more("x = \"(\""));
    }

    #[test]
    fn stdlib_symbols_are_public_defs_and_assignments() {
        let src = "def file(path):\n    pass\n_x = 1\nPORTS = [1]\ndef _helper():\n    pass\n";
        assert_eq!(public_symbols(src), ["file", "PORTS"]);
    }
}
