//! A tolerant scanner for the text before the cursor: which call the cursor is in, which
//! argument, and whether it is inside a string. The AST cannot answer this while the
//! user is typing (the code rarely parses then), so completion, hover and signature help
//! use this instead.

/// The call the cursor is directly inside of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Call {
    /// The callee as written, e.g. `resource` or `linux.file` (dotted chains kept).
    pub callee: String,
    /// Byte offset of the callee's first character.
    pub callee_start: usize,
    /// 0-based index of the argument the cursor is in.
    pub arg: usize,
    /// The first argument when it is a string literal.
    pub first_str: Option<String>,
    /// Keyword arguments already written (before the cursor).
    pub kwargs: Vec<String>,
    /// The cursor is after `name =` in the current argument.
    pub in_value: bool,
    /// Tokens of the current argument before the cursor's word.
    pub tokens_before: usize,
}

/// Where the cursor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    /// Inside a string literal that starts at byte `start` (after the quote).
    Str {
        call: Option<Call>,
        start: usize,
        value: String,
    },
    /// In code; `word` is the identifier being typed, starting at byte `start`.
    Code {
        call: Option<Call>,
        start: usize,
        word: String,
    },
}

struct Frame {
    call: Option<Call>,
    kind: u8,
    tokens: usize,
    last_ident: Option<String>,
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Scans `text[..cursor]` (a byte offset on a char boundary).
pub(crate) fn scan(text: &str, cursor: usize) -> Cursor {
    let b = &text.as_bytes()[..cursor.min(text.len())];
    let mut stack: Vec<Frame> = Vec::new();
    // The last token at the current level: an identifier chain, for `callee(`.
    let mut chain: Option<(String, usize)> = None;
    let mut after_dot = false;
    let mut i = 0;
    let bump = |stack: &mut Vec<Frame>| {
        if let Some(f) = stack.last_mut() {
            f.tokens += 1;
        }
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let triple = b.len() >= i + 3 && b[i + 1] == c && b[i + 2] == c;
                let q = if triple { 3 } else { 1 };
                let start = i + q;
                let mut j = start;
                let mut end = None;
                while j < b.len() {
                    if b[j] == b'\\' {
                        j += 2;
                        continue;
                    }
                    if !triple && b[j] == b'\n' {
                        end = Some((j, j));
                        break;
                    }
                    if b[j] == c
                        && (!triple || (b.len() >= j + 3 && b[j + 1] == c && b[j + 2] == c))
                    {
                        end = Some((j, j + q));
                        break;
                    }
                    j += 1;
                }
                match end {
                    None => {
                        return Cursor::Str {
                            call: stack.last().and_then(|f| f.call.clone()),
                            start,
                            value: text[start..b.len()].to_owned(),
                        };
                    }
                    Some((close, next)) => {
                        if let Some(f) = stack.last_mut()
                            && let Some(call) = f.call.as_mut()
                            && call.arg == 0
                            && f.tokens == 0
                        {
                            call.first_str = Some(text[start..close].to_owned());
                        }
                        bump(&mut stack);
                        chain = None;
                        after_dot = false;
                        i = next;
                        continue;
                    }
                }
            }
            b'(' | b'[' | b'{' => {
                bump(&mut stack);
                let call =
                    (c == b'(')
                        .then(|| chain.take())
                        .flatten()
                        .map(|(callee, callee_start)| Call {
                            callee,
                            callee_start,
                            arg: 0,
                            first_str: None,
                            kwargs: Vec::new(),
                            in_value: false,
                            tokens_before: 0,
                        });
                stack.push(Frame {
                    call,
                    kind: c,
                    tokens: 0,
                    last_ident: None,
                });
                chain = None;
                after_dot = false;
            }
            b')' | b']' | b'}' => {
                stack.pop();
                chain = None;
                after_dot = false;
            }
            b',' => {
                if let Some(f) = stack.last_mut() {
                    f.tokens = 0;
                    f.last_ident = None;
                    if let Some(call) = f.call.as_mut() {
                        call.arg += 1;
                        call.in_value = false;
                    }
                }
                chain = None;
                after_dot = false;
            }
            b'=' if b.get(i + 1) == Some(&b'=') => {
                bump(&mut stack);
                i += 2;
                chain = None;
                continue;
            }
            b'=' => {
                if let Some(f) = stack.last_mut()
                    && f.kind == b'('
                    && f.tokens == 1
                    && let Some(name) = f.last_ident.take()
                    && let Some(call) = f.call.as_mut()
                {
                    call.kwargs.push(name);
                    call.in_value = true;
                }
                bump(&mut stack);
                chain = None;
            }
            b'.' => {
                after_dot = chain.is_some();
                if let Some((s, _)) = chain.as_mut() {
                    s.push('.');
                }
            }
            c if is_ident(c) => {
                let start = i;
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
                let word = &text[start..i];
                if after_dot && let Some((s, _)) = chain.as_mut() {
                    s.push_str(word);
                } else {
                    bump(&mut stack);
                    chain = Some((word.to_owned(), start));
                    if let Some(f) = stack.last_mut() {
                        f.last_ident = Some(word.to_owned());
                    }
                }
                after_dot = false;
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            _ => {
                bump(&mut stack);
                chain = None;
                after_dot = false;
            }
        }
        i += 1;
    }
    let start = b.iter().rposition(|c| !is_ident(*c)).map_or(0, |p| p + 1);
    let word = text[start..b.len()].to_owned();
    let call = stack.last().and_then(|f| {
        let mut call = f.call.clone()?;
        call.tokens_before = f.tokens - usize::from(!word.is_empty());
        Some(call)
    });
    Cursor::Code { call, start, word }
}

/// `load()` statements of a document: `(module, local name, exported symbol)`.
pub(crate) fn loads(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices("load(") {
        if i > 0 && is_ident(text.as_bytes()[i - 1]) {
            continue;
        }
        let body = &text[i + 5..];
        let end = body.find(')').unwrap_or(body.len());
        let mut module = None;
        for arg in body[..end].split(',') {
            let arg = arg.trim();
            let (local, quoted) = match arg.split_once('=') {
                Some((l, q)) => (Some(l.trim()), q.trim()),
                None => (None, arg),
            };
            let Some(s) = unquote(quoted) else { continue };
            match &module {
                None => module = Some(s.to_owned()),
                Some(m) => out.push((m.clone(), local.unwrap_or(s).to_owned(), s.to_owned())),
            }
        }
    }
    out
}

fn unquote(s: &str) -> Option<&str> {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return Some(inner);
        }
    }
    None
}

/// Top-level `def`s of a Starlark source with the resource type each one declares
/// (the first `resource("TYPE"` or `handler("TYPE"` in its body), and its line.
pub(crate) fn defs(source: &str) -> Vec<Def> {
    let mut out: Vec<Def> = Vec::new();
    // Inside a `def` whose signature has not ended yet / inside its body.
    let (mut in_sig, mut in_body) = (false, false);
    for (line_no, line) in source.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("def ") {
            let name: String = rest
                .bytes()
                .take_while(|c| is_ident(*c))
                .map(char::from)
                .collect();
            out.push(Def {
                name,
                line: line_no as u32,
                signature: String::new(),
                resource_type: None,
                body: String::new(),
            });
            in_sig = !line.trim_end().ends_with(':');
            in_body = !in_sig;
        } else if in_sig {
            in_sig = !line.trim_end().ends_with(':');
            in_body = !in_sig;
        } else if in_body && let Some(d) = out.last_mut() {
            if line.starts_with(' ') || line.starts_with('\t') || line.trim().is_empty() {
                d.body.push_str(line);
                d.body.push('\n');
            } else {
                in_body = false;
            }
        }
    }
    // Signatures may span lines: take everything from `def` to the `:` closing them.
    let lines: Vec<&str> = source.lines().collect();
    for d in &mut out {
        let mut sig = String::new();
        for l in &lines[d.line as usize..] {
            sig.push_str(l.trim());
            if l.trim_end().ends_with(':') {
                break;
            }
            sig.push(' ');
        }
        d.signature = sig
            .trim_start_matches("def ")
            .trim_end_matches(':')
            .replace("( ", "(")
            .replace(", )", ")");
        for marker in ["resource(", "handler("] {
            if let Some(p) = d.body.find(marker) {
                let after = d.body[p + marker.len()..].trim_start();
                if let Some(q) = after.strip_prefix('"')
                    && let Some(end) = q.find('"')
                {
                    d.resource_type = Some(q[..end].to_owned());
                    break;
                }
            }
        }
    }
    out
}

/// A top-level function of a Starlark source.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub name: String,
    /// 0-based line of `def`.
    pub line: u32,
    /// `name(params) -> ret` as written.
    pub signature: String,
    pub resource_type: Option<String>,
    body: String,
}

impl Def {
    /// The docstring, dedented, if the body starts with one.
    pub fn docstring(&self) -> Option<String> {
        let body = self.body.trim_start();
        let body = body.strip_prefix("\"\"\"")?;
        let end = body.find("\"\"\"")?;
        let lines: Vec<&str> = body[..end].lines().collect();
        let indent = lines
            .iter()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.len() - l.trim_start().len())
            .min()
            .unwrap_or(0);
        Some(
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    if i == 0 {
                        l.trim()
                    } else {
                        l.get(indent..).unwrap_or(l.trim())
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .to_owned(),
        )
    }

    /// Parameter names (without `*`/`**` ones).
    pub fn params(&self) -> Vec<String> {
        let Some(open) = self.signature.find('(') else {
            return Vec::new();
        };
        let close = self.signature.rfind(')').unwrap_or(self.signature.len());
        self.signature[open + 1..close]
            .split(',')
            .map(|p| p.trim())
            .filter(|p| !p.is_empty() && !p.starts_with('*'))
            .map(|p| {
                p.split(['=', ':'])
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Cursor {
        let cursor = text.find('|').expect("a cursor mark");
        let text = text.replacen('|', "", 1);
        scan(&text, cursor)
    }

    #[test]
    fn type_string_of_resource() {
        let Cursor::Str { call, start, value } = at("x = 1\nr = resource(\"linux.fi|") else {
            panic!("not in a string")
        };
        let call = call.unwrap();
        assert_eq!((call.callee.as_str(), call.arg), ("resource", 0));
        assert_eq!((start, value.as_str()), (20, "linux.fi"));
    }

    #[test]
    fn fields_position_after_type_and_kwargs() {
        let Cursor::Code { call, word, .. } =
            at("resource(\"linux.file::file\", \"/etc/motd\", content = f(\"a, b\"), mo|")
        else {
            panic!("not in code")
        };
        let call = call.unwrap();
        assert_eq!(call.first_str.as_deref(), Some("linux.file::file"));
        assert_eq!(call.kwargs, ["content"]);
        assert_eq!((call.arg, call.in_value, call.tokens_before), (3, false, 0));
        assert_eq!(word, "mo");
    }

    #[test]
    fn value_position_and_nested_brackets_are_not_field_positions() {
        let Cursor::Code { call, .. } = at("resource(\"t\", \"n\", mode = |") else {
            panic!()
        };
        assert!(call.unwrap().in_value);
        let Cursor::Code { call, .. } = at("resource(\"t\", \"n\", tags = [|") else {
            panic!()
        };
        assert_eq!(call, None);
        let Cursor::Code { call, .. } = at("resource(\"t\", \"n\")\n|") else {
            panic!()
        };
        assert_eq!(call, None);
    }

    #[test]
    fn comments_and_triple_quotes_are_skipped() {
        let Cursor::Code { call, .. } = at("# resource(\"\n\"\"\"doc ( \"\"\"\nfile(\"/x\", |")
        else {
            panic!()
        };
        assert_eq!(call.unwrap().callee, "file");
    }

    #[test]
    fn loads_and_defs() {
        assert_eq!(
            loads("load(\"@stdlib//linux.star\", \"file\", pk = \"package\")\n"),
            [
                ("@stdlib//linux.star".into(), "file".into(), "file".into()),
                ("@stdlib//linux.star".into(), "pk".into(), "package".into())
            ]
        );
        let d = defs(
            "def file(path, *, mode = None,\n         **kwargs):\n    \"\"\"A file.\n\n    More.\n    \"\"\"\n    return resource(\"linux.file::file\", path)\n",
        );
        assert_eq!(d[0].name, "file");
        assert_eq!(d[0].resource_type.as_deref(), Some("linux.file::file"));
        assert_eq!(d[0].params(), ["path", "mode"]);
        assert_eq!(d[0].docstring().as_deref(), Some("A file.\n\nMore."));
    }
}
