//! `linux.file::block`: a block of lines between two marker lines in a text file, kept
//! present (replaced in place, or inserted after/before a matching line, or at the end)
//! or absent. The rules are Ansible's `blockinfile` (ansible-core 2.19, `main()`), ported
//! line for line; `tests/blockinfile_table.json` holds Ansible's own results.

use froyo_provider_sdk::{ProviderError, Result};
use regex_lite::Regex;
use serde::{Deserialize, Serialize};

use crate::line::LineState;

fn default_marker() -> String {
    "# {mark} ANSIBLE MANAGED BLOCK".into()
}

fn default_begin() -> String {
    "BEGIN".into()
}

fn default_end() -> String {
    "END".into()
}

/// `#Block`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    pub name: String,
    pub path: String,
    #[serde(default)]
    pub block: String,
    #[serde(default = "default_marker")]
    pub marker: String,
    #[serde(default = "default_begin")]
    pub marker_begin: String,
    #[serde(default = "default_end")]
    pub marker_end: String,
    #[serde(default)]
    pub state: LineState,
    pub insertafter: Option<String>,
    pub insertbefore: Option<String>,
    #[serde(default)]
    pub create: bool,
    #[serde(default)]
    pub append_newline: bool,
    #[serde(default)]
    pub prepend_newline: bool,
    pub validate: Option<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<String>,
}

/// The new content for `current` (`None`: no file); `None` back when there must be no
/// file either (absent and missing).
pub fn edit(current: Option<&str>, c: &BlockConfig) -> Result<Option<String>> {
    let present = c.state == LineState::Present;
    let mut lines: Vec<String> = match current {
        Some(t) => t.split_inclusive('\n').map(str::to_owned).collect(),
        None if c.create && !present => return Ok(None),
        None if c.create => Vec::new(),
        None => {
            return Err(ProviderError::permanent(format!(
                "{} does not exist (create = True makes it)",
                c.path
            )));
        }
    };
    let sep = "\n";
    let mut insertafter = c.insertafter.as_deref();
    let insertbefore = c.insertbefore.as_deref();
    if insertbefore.is_none() && insertafter.is_none() {
        insertafter = Some("EOF");
    }
    let insertre = match (insertafter, insertbefore) {
        (Some(a), _) if a != "EOF" => Some(a),
        (None, Some(b)) if b != "BOF" => Some(b),
        _ => None,
    }
    .map(|p| {
        Regex::new(p).map_err(|e| {
            ProviderError::permanent(format!("`{p}` is not a supported regular expression: {e}"))
        })
    })
    .transpose()?;
    let marker0 = format!("{}{sep}", c.marker.replace("{mark}", &c.marker_begin));
    let marker1 = format!("{}{sep}", c.marker.replace("{mark}", &c.marker_end));
    let blocklines: Vec<String> = if present && !c.block.is_empty() {
        let mut block = c.block.clone();
        if !block.ends_with(sep) {
            block.push_str(sep);
        }
        std::iter::once(marker0.clone())
            .chain(block.split_inclusive('\n').map(str::to_owned))
            .chain(std::iter::once(marker1.clone()))
            .collect()
    } else {
        Vec::new()
    };
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut at = match (n0, n1) {
        (Some(a), Some(b)) if a < b => {
            lines.drain(a..=b);
            a
        }
        (Some(a), Some(b)) => {
            lines.drain(b..=a);
            b
        }
        _ => match &insertre {
            Some(re) => {
                let mut found = None;
                for (i, l) in lines.iter().enumerate() {
                    if re.is_match(l.trim_end_matches(['\r', '\n'])) {
                        found = Some(i);
                    }
                }
                match found {
                    None => lines.len(),
                    Some(i) if insertafter.is_some() => i + 1,
                    Some(i) => i,
                }
            }
            None if insertbefore.is_some() => 0,
            None => lines.len(),
        },
    };
    if at > 0 && !lines[at - 1].ends_with(sep) {
        lines[at - 1].push_str(sep);
    }
    if c.prepend_newline && present && at != 0 && lines[at - 1] != sep {
        lines.insert(at, sep.to_owned());
        at += 1;
    }
    let count = blocklines.len();
    lines.splice(at..at, blocklines);
    if c.append_newline && present {
        let after = at + count;
        if after < lines.len() && lines[after] != sep {
            lines.insert(after, sep.to_owned());
        }
    }
    Ok(Some(lines.concat()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ansible's own results: `tests/blockinfile_table.json` was recorded by
    /// `tests/blockinfile_table.py` (ansible-core 2.19's `blockinfile` module).
    #[test]
    fn edits_like_ansible() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../tests/blockinfile_table.json")).unwrap();
        let cases = table["cases"].as_array().unwrap();
        assert!(cases.len() >= 10);
        for case in cases {
            let mut args = case["args"].clone();
            args["name"] = "t".into();
            args["path"] = "/t".into();
            let c: BlockConfig = serde_json::from_value(args).unwrap();
            let got = edit(case["before"].as_str(), &c);
            match case["after"].as_str() {
                Some(want) => assert_eq!(
                    got.unwrap_or_else(|e| panic!("{case}: {e}")).as_deref(),
                    Some(want),
                    "{case}"
                ),
                None if case["failed"] == true => assert!(got.is_err(), "{case}: {got:?}"),
                None => assert_eq!(got.unwrap(), None, "{case}"),
            }
        }
    }
}
