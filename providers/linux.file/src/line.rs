//! `linux.file::line`: one line in a text file, kept present (replacing the last line
//! that matches `regexp`, or inserted after/before a matching line, or at the end) or
//! absent. The rules are Ansible's `lineinfile` (ansible-core 2.19, `present()` and
//! `absent()`), ported line for line, so a converted playbook edits files exactly as
//! the original did; `tests/lineinfile_table.json` holds Ansible's own results.
//!
//! Pure: `edit` maps the current content to the new one; `plan` writes the result like a
//! `linux.file::file` with that content (conditional on the sha256 read at plan time).

use froyo_provider_sdk::{ProviderError, Result};
use regex_lite::Regex;
use serde::{Deserialize, Serialize};

/// `#Line`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineConfig {
    pub name: String,
    pub path: String,
    pub line: Option<String>,
    pub regexp: Option<String>,
    #[serde(default)]
    pub state: LineState,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub backrefs: bool,
    #[serde(default)]
    pub firstmatch: bool,
    pub validate: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineState {
    #[default]
    Present,
    Absent,
}

fn regex(what: &str, pattern: &str) -> Result<Regex> {
    Regex::new(pattern).map_err(|e| {
        ProviderError::permanent(format!(
            "`{what}` `{pattern}` is not a supported regular expression: {e}"
        ))
    })
}

/// Python's `match.expand` template (`\1`, `\g<1>`, `\g<name>`) as regex-lite's (`${1}`).
fn replacement(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            out.push_str("$$");
        } else if c == '\\' && i + 1 < chars.len() {
            let n = chars[i + 1];
            if n.is_ascii_digit() {
                let mut j = i + 1;
                let mut num = String::new();
                while j < chars.len() && chars[j].is_ascii_digit() && num.len() < 2 {
                    num.push(chars[j]);
                    j += 1;
                }
                out.push_str(&format!("${{{num}}}"));
                i = j;
                continue;
            }
            if n == 'g'
                && chars.get(i + 2) == Some(&'<')
                && let Some(end) = chars[i + 3..].iter().position(|&x| x == '>')
            {
                let name: String = chars[i + 3..i + 3 + end].iter().collect();
                out.push_str(&format!("${{{name}}}"));
                i += 4 + end;
                continue;
            }
            let esc = match n {
                'n' => Some('\n'),
                't' => Some('\t'),
                '\\' => Some('\\'),
                _ => None,
            };
            match esc {
                Some(e) => out.push(e),
                None => {
                    out.push('\\');
                    out.push(n);
                }
            }
            i += 2;
            continue;
        } else {
            out.push(c);
        }
        i += 1;
    }
    out
}

/// Splits like Python's `readlines()`: each line keeps its `\n`.
fn lines(content: &str) -> Vec<String> {
    content.split_inclusive('\n').map(str::to_owned).collect()
}

fn bare(l: &str) -> &str {
    l.trim_end_matches(['\r', '\n'])
}

/// The new content for `current` (`None`: the file does not exist); `None` back when the
/// file must not exist either (absent, or missing without `create`).
pub fn edit(current: Option<&str>, c: &LineConfig) -> Result<Option<String>> {
    match c.state {
        LineState::Absent => {
            let Some(text) = current else { return Ok(None) };
            let re = c
                .regexp
                .as_deref()
                .map(|r| regex("regexp", r))
                .transpose()?;
            if re.is_none() && c.line.is_none() {
                return Err(ProviderError::permanent(
                    "state \"absent\" needs `line` or `regexp`",
                ));
            }
            let line = c.line.as_deref().unwrap_or_default();
            let kept: Vec<String> = lines(text)
                .into_iter()
                .filter(|l| match &re {
                    Some(re) => !re.is_match(bare(l)),
                    None => bare(l) != line,
                })
                .collect();
            Ok(Some(kept.concat()))
        }
        LineState::Present => {
            let Some(line) = c.line.as_deref() else {
                return Err(ProviderError::permanent("state \"present\" needs `line`"));
            };
            if c.backrefs && c.regexp.is_none() {
                return Err(ProviderError::permanent("`backrefs` needs `regexp`"));
            }
            let mut b_lines = match current {
                Some(t) => lines(t),
                None if c.create => Vec::new(),
                None => {
                    return Err(ProviderError::permanent(format!(
                        "{} does not exist (create = True makes it)",
                        c.path
                    )));
                }
            };
            Ok(Some(present(&mut b_lines, c, line)?))
        }
    }
}

fn present(b_lines: &mut Vec<String>, c: &LineConfig, line: &str) -> Result<String> {
    let re = c
        .regexp
        .as_deref()
        .map(|r| regex("regexp", r))
        .transpose()?;
    let insertafter = c.insertafter.as_deref();
    let insertbefore = c.insertbefore.as_deref();
    let bre_ins = match (insertafter, insertbefore) {
        (Some(a), _) if a != "BOF" && a != "EOF" => Some(regex("insertafter", a)?),
        (None, Some(b)) if b != "BOF" => Some(regex("insertbefore", b)?),
        _ => None,
    };
    let mut index = [-1i64, -1i64];
    let mut matched: Option<String> = None;
    let mut exact_line_match = false;
    if let Some(re) = &re {
        for (n, l) in b_lines.iter().enumerate() {
            if re.is_match(bare(l)) {
                index[0] = n as i64;
                matched = Some(re.captures(bare(l)).map_or_else(String::new, |caps| {
                    let mut s = String::new();
                    caps.expand(&replacement(line), &mut s);
                    s
                }));
                if c.firstmatch {
                    break;
                }
            }
        }
    }
    if matched.is_none() {
        for (n, l) in b_lines.iter().enumerate() {
            if bare(l) == line {
                index[0] = n as i64;
                exact_line_match = true;
            } else if let Some(ins) = &bre_ins
                && ins.is_match(bare(l))
            {
                if insertafter.is_some() {
                    index[1] = n as i64 + 1;
                    if c.firstmatch {
                        break;
                    }
                }
                if insertbefore.is_some() {
                    index[1] = n as i64;
                    if c.firstmatch {
                        break;
                    }
                }
            }
        }
    }
    let sep = "\n";
    let with_sep = |s: &str| format!("{s}{sep}");
    if index[0] != -1 {
        let mut new_line = match (&matched, c.backrefs) {
            (Some(expanded), true) => expanded.clone(),
            _ => line.to_owned(),
        };
        if !new_line.ends_with(sep) {
            new_line.push_str(sep);
        }
        // Without a regexp match, index[0] is an exact match: nothing to replace.
        let _ = exact_line_match;
        if b_lines[index[0] as usize] != new_line {
            b_lines[index[0] as usize] = new_line;
        }
    } else if c.backrefs {
        // No match to expand the backreferences from: nothing changes (as Ansible).
    } else if insertbefore == Some("BOF") || insertafter == Some("BOF") {
        b_lines.insert(0, with_sep(line));
    } else if insertafter == Some("EOF") || index[1] == -1 {
        if b_lines.last().is_some_and(|l| !l.ends_with(['\n', '\r'])) {
            b_lines.push(sep.to_owned());
        }
        b_lines.push(with_sep(line));
    } else if insertafter.is_some() && index[1] != -1 {
        let at = index[1] as usize;
        if b_lines.len() == at {
            if bare(&b_lines[at - 1]) != line {
                b_lines.push(with_sep(line));
            }
        } else if bare(&b_lines[at]) != line {
            b_lines.insert(at, with_sep(line));
        }
    } else {
        b_lines.insert(index[1] as usize, with_sep(line));
    }
    Ok(b_lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> LineConfig {
        let mut v = v;
        v["name"] = "t".into();
        v["path"] = "/t".into();
        serde_json::from_value(v).unwrap()
    }

    /// Ansible's own results: `tests/lineinfile_table.json` was recorded by
    /// `tests/lineinfile_table.py`, which runs ansible-core 2.19's `lineinfile` module
    /// (`ansible localhost -c local -m lineinfile`) on each case.
    #[test]
    fn edits_like_ansible() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../tests/lineinfile_table.json")).unwrap();
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() >= 15);
        for case in cases {
            let before = case["before"].as_str();
            let c = config(case["args"].clone());
            let got = edit(before, &c);
            match case["after"].as_str() {
                Some(want) => {
                    let got = got.unwrap_or_else(|e| panic!("{case}: {e}"));
                    assert_eq!(got.as_deref(), Some(want), "{case}");
                }
                None if case["failed"] == true => assert!(got.is_err(), "{case}: {got:?}"),
                None => assert_eq!(got.unwrap(), None, "{case}"),
            }
        }
    }

    #[test]
    fn python_backreferences() {
        assert_eq!(replacement(r"\1 = \g<2> $x"), "${1} = ${2} $$x");
    }
}
