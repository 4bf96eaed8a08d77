//! Ansible's free-form `k=v` module arguments (`apt: name=nginx state=present`,
//! `command: /usr/bin/foo creates=/tmp/done`), split as `ansible.parsing.splitter.parse_kv`
//! does: whitespace separates words except inside quotes and Jinja2 blocks, a word with an
//! unescaped `=` after its first character is an option, everything else is free-form text
//! (`_raw_params`). Values stay strings, as in Ansible (the module's argument types convert
//! them later; the converter does the same per argument).

/// Options in the order given; `_raw_params` (when there is free-form text) comes last.
pub type Options = Vec<(String, String)>;

/// The options `command`/`shell`-like modules take from a free-form line (`check_raw`);
/// every other `k=v` word stays part of the command.
const RAW_OPTIONS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
];

/// One word and whether a newline (rather than spaces) came before it.
struct Word {
    text: String,
    after_newline: bool,
}

/// Splits `args` into words: whitespace outside quotes and `{{ }}`/`{% %}`/`{# #}`.
fn split_args(args: &str) -> Vec<Word> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut newline_before = false;
    let mut pending_newline = false;
    let chars: Vec<char> = args.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if quote.is_none() && depth == 0 && c.is_whitespace() {
            if !cur.is_empty() {
                words.push(Word {
                    text: std::mem::take(&mut cur),
                    after_newline: newline_before,
                });
                newline_before = false;
            }
            if c == '\n' {
                pending_newline = true;
            }
            i += 1;
            continue;
        }
        if cur.is_empty() {
            newline_before = pending_newline && !words.is_empty();
            pending_newline = false;
        }
        match (c, next) {
            ('{', Some('{' | '%' | '#')) => {
                depth += 1;
                cur.push(c);
                cur.push(next.unwrap_or_default());
                i += 2;
                continue;
            }
            ('}' | '%' | '#', Some('}')) if depth > 0 => {
                depth -= 1;
                cur.push(c);
                cur.push('}');
                i += 2;
                continue;
            }
            ('\\', Some(n)) => {
                cur.push(c);
                cur.push(n);
                i += 2;
                continue;
            }
            ('"' | '\'', _) if depth == 0 => match quote {
                None => quote = Some(c),
                Some(q) if q == c => quote = None,
                _ => {}
            },
            _ => {}
        }
        cur.push(c);
        i += 1;
    }
    if !cur.is_empty() {
        words.push(Word {
            text: cur,
            after_newline: newline_before,
        });
    }
    words
}

/// Removes one pair of matching outer quotes (Ansible's `unquote`).
pub fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

/// The first `=` not preceded by a backslash, looking from the second character on.
fn unescaped_eq(text: &str) -> Option<usize> {
    text.char_indices()
        .skip(1)
        .find(|&(i, c)| c == '=' && !text[..i].ends_with('\\'))
        .map(|(i, _)| i)
}

/// Ansible's `parse_kv(args, check_raw)`.
pub fn parse_kv(args: &str, check_raw: bool) -> Options {
    let mut options: Options = Vec::new();
    let mut raw: Vec<&Word> = Vec::new();
    let words = split_args(args);
    for w in &words {
        match unescaped_eq(&w.text) {
            Some(pos) => {
                let k = w.text[..pos].trim();
                let v = w.text[pos + 1..].trim();
                if check_raw && !RAW_OPTIONS.contains(&k) {
                    raw.push(w);
                } else {
                    let v = unquote(v).to_owned();
                    match options.iter_mut().find(|(ok, _)| ok == k) {
                        Some(slot) => slot.1 = v,
                        None => options.push((k.to_owned(), v)),
                    }
                }
            }
            // Free-form text (a word with only escaped `=` loses the escapes below).
            None => raw.push(w),
        }
    }
    if !raw.is_empty() {
        let mut text = String::new();
        for (n, w) in raw.iter().enumerate() {
            if n > 0 {
                text.push(if w.after_newline { '\n' } else { ' ' });
            }
            if unescaped_eq(&w.text).is_none() {
                text.push_str(&w.text.replace("\\=", "="));
            } else {
                text.push_str(&w.text);
            }
        }
        options.push(("_raw_params".to_owned(), text));
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against Ansible's own `parse_kv`: `tests/ansible/kv_table.json` was recorded by
    /// `tests/ansible/kv_table.py` (ansible-core 2.19.14).
    #[test]
    fn splits_like_ansible() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../tests/ansible/kv_table.json")).unwrap();
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() >= 15);
        for case in cases {
            let args = case["args"].as_str().unwrap();
            let check_raw = case["check_raw"].as_bool().unwrap();
            let want: Vec<(String, String)> = case["result"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect();
            let mut got = parse_kv(args, check_raw);
            let mut want = want;
            got.sort();
            want.sort();
            assert_eq!(got, want, "{args:?} (check_raw {check_raw})");
        }
    }

    #[test]
    fn multi_line_commands_keep_their_lines() {
        let got = parse_kv("set -e\necho a\necho b creates=/x", true);
        assert_eq!(
            got,
            vec![
                ("creates".to_owned(), "/x".to_owned()),
                (
                    "_raw_params".to_owned(),
                    "set -e\necho a\necho b".to_owned()
                )
            ]
        );
    }
}
