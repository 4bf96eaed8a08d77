//! YAML as Ansible reads it. Ansible loads YAML with PyYAML, which resolves plain scalars
//! by YAML 1.1 rules (`yes`/`no`/`on`/`off` are booleans, `0644` is the octal 420, `1:30`
//! is 90, `1e3` is a string); no Rust YAML crate does that (research note §5), so this
//! module builds nodes from `saphyr-parser` events and resolves plain scalars with
//! PyYAML's own implicit-resolver patterns. Every node keeps its line for `file.yml:LINE`
//! references in the generated code and in `E-IMPORT` placeholders.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle, Tag};

use crate::error::ImportError;

/// One YAML node with the position it starts at (line 1-based, column 0-based).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    pub col: usize,
}

/// A resolved YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Pairs in document order; a repeated key keeps its last value, as in PyYAML.
    Map(Vec<(Node, Node)>),
    /// `!vault` (an Ansible Vault ciphertext), `!unsafe` (a string never templated) and
    /// any other local tag, with the scalar it was put on.
    Tagged(String, Box<Node>),
}

impl Node {
    fn new(value: Value, line: usize, col: usize) -> Self {
        Node { value, line, col }
    }

    /// The string, for a plain or quoted string scalar (and `!unsafe` strings).
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            Value::Tagged(t, n) if t == "unsafe" => n.as_str(),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The value of `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .rev()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The scalar as Ansible would print it in a string (`True`, `420`, `None`), for
    /// module arguments given as scalars of the wrong type.
    pub fn scalar_text(&self) -> Option<String> {
        Some(match &self.value {
            Value::Null => "None".into(),
            Value::Bool(b) => if *b { "True" } else { "False" }.into(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => python_float(*f),
            Value::Str(s) => s.clone(),
            Value::Tagged(_, n) => return n.scalar_text(),
            _ => return None,
        })
    }

    /// The node as JSON (tags dropped, keys as their text), for tests and the report.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| (k.scalar_text().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
            Value::Tagged(_, n) => n.to_json(),
        }
    }
}

/// Python's `repr` of a float (enough for YAML values: `1.5`, `10.0`, `inf`, `nan`).
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf" } else { "-inf" }.into()
    } else if f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

// PyYAML 6's implicit resolvers (yaml/resolver.py, `Resolver.add_implicit_resolver`),
// anchored as PyYAML matches them (`regexp.match` on the whole scalar, the patterns end in
// `$`).
static BOOL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")
        .expect("bool pattern")
});
static FLOAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
    )
    .expect("float pattern")
});
static INT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
    )
    .expect("int pattern")
});
static NULL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:~|null|Null|NULL|)$").expect("null pattern"));

/// Resolves a plain (unquoted, untagged) scalar as PyYAML's `SafeLoader` does. Timestamps
/// stay strings (Ansible passes them on as text in every place that matters here).
pub fn resolve_plain(s: &str) -> Value {
    if NULL.is_match(s) {
        return Value::Null;
    }
    if BOOL.is_match(s) {
        return Value::Bool(matches!(
            s,
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
        ));
    }
    if INT.is_match(s) {
        if let Some(i) = construct_int(s) {
            return Value::Int(i);
        }
        // Past i64: PyYAML has big ints; keep the text rather than a wrong number.
        return Value::Str(s.to_owned());
    }
    if FLOAT.is_match(s) {
        return Value::Float(construct_float(s));
    }
    Value::Str(s.to_owned())
}

/// PyYAML's `construct_yaml_int`.
fn construct_int(s: &str) -> Option<i64> {
    let t = s.replace('_', "");
    let (sign, t) = match t.as_bytes().first() {
        Some(b'-') => (-1i64, &t[1..]),
        Some(b'+') => (1, &t[1..]),
        _ => (1, &t[..]),
    };
    let magnitude = if t == "0" {
        0
    } else if let Some(b) = t.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if let Some(h) = t.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(o) = t.strip_prefix('0') {
        i64::from_str_radix(o, 8).ok()?
    } else if t.contains(':') {
        let mut value = 0i64;
        for part in t.split(':') {
            value = value
                .checked_mul(60)?
                .checked_add(part.parse::<i64>().ok()?)?;
        }
        value
    } else {
        t.parse::<i64>().ok()?
    };
    magnitude.checked_mul(sign)
}

/// PyYAML's `construct_yaml_float`.
fn construct_float(s: &str) -> f64 {
    let t = s.replace('_', "").to_lowercase();
    let (sign, t) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, &t[..]),
    };
    if t == ".inf" {
        return sign * f64::INFINITY;
    }
    if t == ".nan" {
        return f64::NAN;
    }
    if t.contains(':') {
        let mut value = 0.0;
        for part in t.split(':') {
            value = value * 60.0 + part.parse::<f64>().unwrap_or(0.0);
        }
        return sign * value;
    }
    // Rust's parser accepts the forms the pattern lets through ("1.", ".5", "1.5e+3").
    sign * t.parse::<f64>().unwrap_or(0.0)
}

/// A scalar with an explicit tag: the YAML core tags as PyYAML constructs them, Ansible's
/// `!vault` and `!unsafe`, anything else kept as a tagged string.
fn resolve_tagged(tag: &Tag, text: &str, line: usize, col: usize) -> Value {
    let core = tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:";
    let inner = || Box::new(Node::new(Value::Str(text.to_owned()), line, col));
    if core {
        return match tag.suffix.as_str() {
            "str" => Value::Str(text.to_owned()),
            "int" => construct_int(text).map_or_else(|| Value::Str(text.to_owned()), Value::Int),
            "float" => Value::Float(construct_float(text)),
            "bool" => match resolve_plain(text) {
                b @ Value::Bool(_) => b,
                _ => Value::Str(text.to_owned()),
            },
            "null" => Value::Null,
            other => Value::Tagged(other.to_owned(), inner()),
        };
    }
    if tag.handle == "!" && tag.suffix.is_empty() {
        // The non-specific tag `! x`: a string.
        return Value::Str(text.to_owned());
    }
    Value::Tagged(tag.suffix.clone(), inner())
}

enum Frame {
    Seq {
        anchor: usize,
        items: Vec<Node>,
        line: usize,
        col: usize,
    },
    Map {
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        key_is_merge: bool,
        /// `<<:` values, merged under the mapping's own keys at its end (PyYAML's
        /// `flatten_mapping`).
        merges: Vec<Node>,
        line: usize,
        col: usize,
    },
}

/// Aliases may copy at most this much in all (a node counts 1, a scalar also its bytes):
/// each alias is a deep copy here, so a YAML bomb (anchors whose lists repeat the
/// previous anchor) would otherwise double the memory at every level.
pub const MAX_ALIAS_COPY: usize = 1_000_000;

/// Collections nest at most this deep (dropping and converting a tree recurse).
pub const MAX_DEPTH: usize = 256;

/// What an alias of `node` copies, as [`MAX_ALIAS_COPY`] counts it.
fn weight(node: &Node) -> usize {
    match &node.value {
        Value::Str(s) => 1 + s.len(),
        Value::Seq(items) => 1 + items.iter().map(weight).sum::<usize>(),
        Value::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| weight(k) + weight(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Parses the first document of `source` (`file` names it in errors). An empty file is
/// `Null`.
pub fn parse(source: &str, file: &str) -> Result<Node, ImportError> {
    let mut parser = Parser::new_from_str(source);
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut root: Option<Node> = None;
    let mut copied = 0usize;
    let err = |line: usize, col: usize, message: String| ImportError::Yaml {
        file: file.to_owned(),
        line,
        col: col + 1,
        message,
    };
    loop {
        let (event, span) = match parser.next_event() {
            None => break,
            Some(Ok(x)) => x,
            Some(Err(e)) => {
                return Err(err(
                    e.marker().line(),
                    e.marker().col(),
                    e.info().to_owned(),
                ));
            }
        };
        let (line, col) = (span.start.line(), span.start.col());
        let done: Option<(Node, bool)> = match event {
            Event::StreamStart | Event::Nothing | Event::DocumentStart(_) => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() || matches!(event, Event::StreamEnd) {
                    break;
                }
                None
            }
            Event::Alias(id) => match anchors.get(&id) {
                Some(n) => {
                    copied = copied.saturating_add(weight(n));
                    if copied > MAX_ALIAS_COPY {
                        return Err(err(
                            line,
                            col,
                            format!(
                                "the aliases up to here copy more than {MAX_ALIAS_COPY} nodes and bytes (a YAML bomb?)"
                            ),
                        ));
                    }
                    Some((n.clone(), false))
                }
                None => return Err(err(line, col, "an alias to an unknown anchor".into())),
            },
            Event::Scalar(text, style, anchor, tag) => {
                let value = match (&tag, style) {
                    (Some(t), _) => resolve_tagged(t, &text, line, col),
                    (None, ScalarStyle::Plain) => resolve_plain(&text),
                    (None, _) => Value::Str(text.to_string()),
                };
                let merge = tag.is_none() && style == ScalarStyle::Plain && text == "<<";
                let node = Node::new(value, line, col);
                if anchor != 0 {
                    anchors.insert(anchor, node.clone());
                }
                Some((node, merge))
            }
            Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                return Err(err(
                    line,
                    col,
                    format!("lists and mappings nest deeper than {MAX_DEPTH} levels"),
                ));
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    anchor,
                    items: Vec::new(),
                    line,
                    col,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    key_is_merge: false,
                    merges: Vec::new(),
                    line,
                    col,
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    anchor,
                    items,
                    line,
                    col,
                }) => {
                    let node = Node::new(Value::Seq(items), line, col);
                    if anchor != 0 {
                        anchors.insert(anchor, node.clone());
                    }
                    Some((node, false))
                }
                _ => return Err(err(line, col, "unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    anchor,
                    mut entries,
                    merges,
                    line,
                    col,
                    ..
                }) => {
                    for m in merges {
                        let sources: Vec<Node> = match m.value {
                            Value::Map(_) => vec![m],
                            Value::Seq(items) => items,
                            _ => {
                                return Err(err(
                                    m.line,
                                    m.col,
                                    "a `<<` merge key needs a mapping or a list of mappings".into(),
                                ));
                            }
                        };
                        for src in sources {
                            let Value::Map(pairs) = src.value else {
                                return Err(err(
                                    src.line,
                                    src.col,
                                    "a `<<` merge key needs a mapping or a list of mappings".into(),
                                ));
                            };
                            for (k, v) in pairs {
                                if !entries.iter().any(|(e, _)| e.value == k.value) {
                                    entries.push((k, v));
                                }
                            }
                        }
                    }
                    let node = Node::new(Value::Map(entries), line, col);
                    if anchor != 0 {
                        anchors.insert(anchor, node.clone());
                    }
                    Some((node, false))
                }
                _ => return Err(err(line, col, "unbalanced mapping".into())),
            },
        };
        let Some((node, is_merge)) = done else {
            continue;
        };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                key,
                key_is_merge,
                merges,
                ..
            }) => match key.take() {
                None => {
                    *key_is_merge = is_merge;
                    *key = Some(node);
                }
                Some(k) => {
                    if *key_is_merge {
                        merges.push(node);
                    } else if let Some(slot) = entries.iter_mut().find(|(e, _)| e.value == k.value)
                    {
                        slot.1 = node;
                    } else {
                        entries.push((k, node));
                    }
                    *key_is_merge = false;
                }
            },
        }
    }
    Ok(root.unwrap_or(Node::new(Value::Null, 1, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seen while writing the `ansible_yaml` fuzz target (each alias is a deep copy; its
    /// corpus keeps `regress-bomb.yml`): nine levels of ten aliases would copy 10⁹ nodes.
    #[test]
    fn a_yaml_bomb_is_refused_before_it_takes_the_memory() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let p = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let e = parse(&doc, "bomb.yml").unwrap_err().to_string();
        assert!(e.contains("YAML bomb"), "{e}");
        // A few aliases, as playbooks use them, still parse.
        let ok = parse(
            "base: &b {user: root}\nweb: {<<: *b, port: 80}\ndb: *b\n",
            "ok.yml",
        )
        .unwrap();
        assert_eq!(
            ok.get("db").unwrap().get("user").unwrap().as_str(),
            Some("root")
        );
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused() {
        // Block nesting reaches our limit; saphyr-parser refuses deep flow nesting itself.
        let mut block = String::new();
        for i in 0..=MAX_DEPTH {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        block.push_str(&format!("{}x: 1\n", " ".repeat(MAX_DEPTH + 1)));
        let e = parse(&block, "deep.yml").unwrap_err().to_string();
        assert!(e.contains("deeper than"), "{e}");
        let flow = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(parse(&flow, "flow.yml").is_err());
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&fine, "fine.yml").is_ok());
    }

    #[test]
    fn scalars_resolve_like_ansible() {
        let table: serde_json::Value =
            serde_json::from_str(include_str!("../tests/ansible/yaml_table.json")).unwrap();
        let rows = table["scalars"].as_array().unwrap();
        assert!(rows.len() > 50);
        for row in rows {
            let text = row["yaml"].as_str().unwrap();
            let want_type = row["type"].as_str().unwrap();
            let want = row["value"].as_str().unwrap();
            let doc = format!("k: {text}\n");
            let parsed = parse(&doc, "t.yml");
            if want_type == "error" {
                assert!(parsed.is_err(), "{text:?} must not parse: {parsed:?}");
                continue;
            }
            let got = parsed.unwrap().get("k").unwrap().value.clone();
            let (t, r) = match &got {
                Value::Null => ("none", "None".to_owned()),
                Value::Bool(b) => ("bool", if *b { "True" } else { "False" }.to_owned()),
                Value::Int(i) => ("int", i.to_string()),
                Value::Float(f) => ("float", python_float(*f)),
                Value::Str(s) => ("str", s.clone()),
                other => panic!("{text:?}: {other:?}"),
            };
            let want_type = if want_type == "date" {
                "str"
            } else {
                want_type
            };
            assert_eq!((t, r.as_str()), (want_type, want), "{text:?}");
        }
        match parse("k: .nan\n", "t.yml").unwrap().get("k").unwrap().value {
            Value::Float(f) => assert!(f.is_nan()),
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nodes_keep_lines_tags_anchors_and_merges() {
        let src = "---\n- name: a\n  file:\n    path: /x\n    mode: 0644\n- &base\n  name: b\n  when: yes\n- <<: *base\n  name: c\n- secret: !vault |\n    $ANSIBLE_VAULT;1.1;AES256\n    6162\n  raw: !unsafe '{{ not templated }}'\n";
        let doc = parse(src, "t.yml").unwrap();
        let plays = doc.as_seq().unwrap();
        assert_eq!(plays[0].line, 2);
        let file = plays[0].get("file").unwrap();
        assert_eq!(file.get("path").unwrap().line, 4);
        assert_eq!(file.get("mode").unwrap().value, Value::Int(420));
        assert_eq!(plays[2].get("name").unwrap().as_str(), Some("c"));
        assert_eq!(plays[2].get("when").unwrap().value, Value::Bool(true));
        match &plays[3].get("secret").unwrap().value {
            Value::Tagged(t, n) => {
                assert_eq!(t, "vault");
                assert!(n.as_str().unwrap().starts_with("$ANSIBLE_VAULT"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plays[3].get("raw").unwrap().as_str(),
            Some("{{ not templated }}")
        );
    }

    #[test]
    fn syntax_errors_name_file_and_line() {
        let e = parse("a: [1, 2\nb: 3\n", "tasks/main.yml").unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with("tasks/main.yml:"), "{text}");
    }

    #[test]
    fn empty_file_is_null() {
        assert!(parse("", "x.yml").unwrap().is_null());
        assert!(parse("---\n", "x.yml").unwrap().is_null());
    }
}
