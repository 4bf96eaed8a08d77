//! The requests the proxy answers itself, because only OpenFroyo knows the answer:
//! resource types and their schema fields, stdlib symbols, signatures of built-ins and
//! wrappers, document symbols, and hover on types and fields.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use lsp_types::{
    CompletionItem, CompletionItemKind, CompletionTextEdit, DocumentSymbol, Documentation, Hover,
    HoverContents, MarkupContent, MarkupKind, ParameterInformation, ParameterLabel, SignatureHelp,
    SignatureInformation, SymbolKind, TextEdit,
};
use starlark::docs::{DocItem, DocMember, DocModule};

use crate::position::range_of;
use crate::scan::{self, Call, Cursor, Def};
use crate::stdlib::Stdlib;
use crate::{Analyzer, FieldInfo, ResourceTypeInfo};

/// The keywords every resource takes besides its schema's fields.
const META: &[(&str, &str)] = &[
    (
        "when",
        "Apply only when this condition holds (a bool or a deferred value)",
    ),
    ("tags", "Tags for `--tags` selection"),
    (
        "become",
        "Run as another user (`True` for root, or a user name)",
    ),
    (
        "sensitive",
        "Hide the values of this resource in plans and logs",
    ),
    ("retry", "A `retry(...)` policy"),
    ("timeout", "A time limit such as \"30s\""),
    ("desc", "A description shown in plans"),
];

/// What the answers are computed from.
pub(crate) struct Knowledge {
    pub analyzer: Arc<dyn Analyzer>,
    pub stdlib: Arc<Stdlib>,
    pub builtins: DocModule,
    /// `@stdlib//NAME` → its top-level `def`s.
    pub stdlib_defs: HashMap<String, Vec<Def>>,
}

/// The answer to a completion request.
pub(crate) enum Completion {
    /// The proxy's items are the whole answer.
    Only(Vec<CompletionItem>),
    /// The server's answer with these items in front, without items labelled as in the
    /// second list (keywords already given).
    Before(Vec<CompletionItem>, Vec<String>),
    /// Nothing to add.
    Forward,
}

fn markdown(value: String) -> Documentation {
    Documentation::MarkupContent(MarkupContent {
        kind: MarkupKind::Markdown,
        value,
    })
}

fn field_detail(f: &FieldInfo) -> String {
    let mut d = f.cue_type.clone();
    if let Some(default) = &f.default {
        d.push_str(&format!(" (default {default})"));
    } else if f.required {
        d.push_str(" (required)");
    }
    d
}

fn type_markdown(t: &ResourceTypeInfo) -> String {
    let mut out = format!("**{}**\n\n{}\n", t.name, t.doc);
    if !t.fields.is_empty() {
        out.push_str("\n| field | type | default |\n|---|---|---|\n");
        for f in &t.fields {
            out.push_str(&format!(
                "| `{}` | `{}` | {} |\n",
                f.name,
                f.cue_type.replace('|', "\\|"),
                f.default
                    .as_deref()
                    .map(|d| format!("`{}`", d.replace('|', "\\|")))
                    .unwrap_or_else(|| if f.required {
                        "required".into()
                    } else {
                        String::new()
                    })
            ));
        }
    }
    out
}

fn field_markdown(t: &str, f: &FieldInfo) -> String {
    format!(
        "**{}** `{}` — field of `{t}`\n\n{}\n",
        f.name,
        field_detail(f),
        f.doc
    )
}

impl Knowledge {
    pub fn new(analyzer: Arc<dyn Analyzer>, stdlib: Arc<Stdlib>) -> Knowledge {
        let stdlib_defs = stdlib
            .modules
            .iter()
            .map(|(name, src)| (format!("@stdlib//{name}"), scan::defs(src)))
            .collect();
        Knowledge {
            builtins: analyzer.builtins(),
            analyzer,
            stdlib,
            stdlib_defs,
        }
    }

    /// The stdlib `def` a name of this document refers to through `load()`.
    fn wrapper(&self, text: &str, local: &str) -> Option<(String, &Def)> {
        scan::loads(text)
            .into_iter()
            .find(|(_, l, _)| l == local)
            .and_then(|(module, _, symbol)| {
                let def = self
                    .stdlib_defs
                    .get(&module)?
                    .iter()
                    .find(|d| d.name == symbol)?;
                Some((module, def))
            })
    }

    /// The resource type a call declares (`resource("T", …)` or a stdlib wrapper) and,
    /// for wrappers, the wrapper.
    fn call_type<'a>(&'a self, text: &str, call: &Call) -> Option<(String, Option<&'a Def>)> {
        match call.callee.as_str() {
            "resource" | "handler" => call.first_str.clone().map(|t| (t, None)),
            other => {
                let (_, def) = self.wrapper(text, other)?;
                Some((def.resource_type.clone()?, Some(def)))
            }
        }
    }

    fn find_type(&self, path: &Path, name: &str) -> Option<ResourceTypeInfo> {
        self.analyzer
            .resource_types(path)
            .into_iter()
            .find(|t| t.name == name)
    }

    pub fn completion(&self, path: &Path, text: &str, offset: usize) -> Completion {
        match scan::scan(text, offset) {
            Cursor::Str {
                call: Some(call),
                start,
                value,
            } => {
                let range = range_of(text, start, offset);
                let edit = |label: &str| {
                    Some(CompletionTextEdit::Edit(TextEdit::new(
                        range,
                        label.to_owned(),
                    )))
                };
                if matches!(call.callee.as_str(), "resource" | "handler") && call.arg == 0 {
                    let items = self
                        .analyzer
                        .resource_types(path)
                        .into_iter()
                        .map(|t| CompletionItem {
                            label: t.name.clone(),
                            kind: Some(CompletionItemKind::CLASS),
                            detail: Some(t.summary.clone()),
                            documentation: Some(markdown(type_markdown(&t))),
                            text_edit: edit(&t.name),
                            ..CompletionItem::default()
                        })
                        .collect();
                    return Completion::Only(items);
                }
                if call.callee == "load" && call.arg == 0 {
                    let items = self
                        .stdlib
                        .modules
                        .iter()
                        .map(|(name, _)| format!("@stdlib//{name}"))
                        .filter(|p| p.starts_with(&value) || value.is_empty())
                        .map(|p| CompletionItem {
                            text_edit: edit(&p),
                            label: p,
                            kind: Some(CompletionItemKind::FILE),
                            ..CompletionItem::default()
                        })
                        .collect();
                    return Completion::Only(items);
                }
                if call.callee == "load"
                    && call.arg > 0
                    && let Some(defs) = call
                        .first_str
                        .as_ref()
                        .and_then(|m| self.stdlib_defs.get(m))
                {
                    let items = defs
                        .iter()
                        .filter(|d| !d.name.starts_with('_'))
                        .map(|d| CompletionItem {
                            label: d.name.clone(),
                            kind: Some(CompletionItemKind::FUNCTION),
                            detail: Some(d.signature.clone()),
                            documentation: d.docstring().map(markdown),
                            text_edit: edit(&d.name),
                            ..CompletionItem::default()
                        })
                        .collect();
                    return Completion::Only(items);
                }
                Completion::Forward
            }
            Cursor::Code {
                call: Some(call), ..
            } if !call.in_value && call.tokens_before == 0 => {
                if call.callee == "load"
                    && call.arg > 0
                    && let Some(defs) = call
                        .first_str
                        .as_ref()
                        .and_then(|m| self.stdlib_defs.get(m))
                {
                    let items = defs
                        .iter()
                        .filter(|d| !d.name.starts_with('_'))
                        .map(|d| CompletionItem {
                            label: format!("\"{}\"", d.name),
                            kind: Some(CompletionItemKind::FUNCTION),
                            detail: Some(d.signature.clone()),
                            documentation: d.docstring().map(markdown),
                            ..CompletionItem::default()
                        })
                        .collect();
                    return Completion::Only(items);
                }
                let Some((ty, wrapper)) = self.call_type(text, &call) else {
                    return Completion::Forward;
                };
                if wrapper.is_none() && call.arg == 0 {
                    return Completion::Forward;
                }
                let mut items = Vec::new();
                let mut seen: Vec<String> = call.kwargs.clone();
                if let Some(t) = self.find_type(path, &ty) {
                    for f in &t.fields {
                        if seen.contains(&f.name) {
                            continue;
                        }
                        seen.push(f.name.clone());
                        items.push(CompletionItem {
                            label: f.name.clone(),
                            kind: Some(CompletionItemKind::FIELD),
                            detail: Some(field_detail(f)),
                            documentation: Some(markdown(field_markdown(&t.name, f))),
                            insert_text: Some(format!("{} = ", f.name)),
                            sort_text: Some(format!("0_{}", f.name)),
                            ..CompletionItem::default()
                        });
                    }
                }
                if let Some(def) = wrapper {
                    for p in def.params() {
                        if seen.contains(&p) {
                            continue;
                        }
                        seen.push(p.clone());
                        items.push(CompletionItem {
                            insert_text: Some(format!("{p} = ")),
                            sort_text: Some(format!("0_{p}")),
                            kind: Some(CompletionItemKind::PROPERTY),
                            detail: Some(format!("keyword of {}", def.name)),
                            label: p,
                            ..CompletionItem::default()
                        });
                    }
                }
                for (name, doc) in META {
                    if seen.iter().any(|s| s == name) {
                        continue;
                    }
                    items.push(CompletionItem {
                        label: (*name).into(),
                        kind: Some(CompletionItemKind::PROPERTY),
                        detail: Some((*doc).into()),
                        insert_text: Some(format!("{name} = ")),
                        sort_text: Some(format!("1_{name}")),
                        ..CompletionItem::default()
                    });
                }
                let mut hide = call.kwargs;
                if wrapper.is_some() {
                    // The server offers a wrapper's `**kwargs` as a keyword; it is not one.
                    hide.push("kwargs".into());
                }
                Completion::Before(items, hide)
            }
            _ => Completion::Forward,
        }
    }

    /// Hover on a resource type string or a field keyword; `None` leaves it to the server.
    pub fn hover(&self, path: &Path, text: &str, offset: usize) -> Option<Hover> {
        let bytes = text.as_bytes();
        // Inside a string: the whole literal.
        if let Cursor::Str { start, .. } = scan::scan(text, offset) {
            let quote = bytes.get(start.checked_sub(1)?)?;
            let end =
                start + text[start..].find(|c: char| c as u32 == u32::from(*quote) || c == '\n')?;
            let t = self.find_type(path, &text[start..end])?;
            return Some(Hover {
                contents: HoverContents::Markup(MarkupContent {
                    kind: MarkupKind::Markdown,
                    value: type_markdown(&t),
                }),
                range: Some(range_of(text, start, end)),
            });
        }
        let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        let mut end = offset;
        while end < bytes.len() && is_ident(bytes[end]) {
            end += 1;
        }
        let Cursor::Code {
            call: Some(call),
            start,
            word,
        } = scan::scan(text, end)
        else {
            return None;
        };
        if word.is_empty()
            || !text[end..].trim_start().starts_with('=')
            || text[end..].trim_start().starts_with("==")
        {
            return None;
        }
        let (ty, _) = self.call_type(text, &call)?;
        let t = self.find_type(path, &ty)?;
        let f = t.fields.iter().find(|f| f.name == word)?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: field_markdown(&t.name, f),
            }),
            range: Some(range_of(text, start, end)),
        })
    }

    /// Signature help for built-ins and stdlib wrappers.
    pub fn signature_help(&self, text: &str, offset: usize) -> Option<SignatureHelp> {
        let call = match scan::scan(text, offset) {
            Cursor::Str { call, .. } | Cursor::Code { call, .. } => call?,
        };
        let (label, doc) = if let Some(item) = self.builtins.members.get(&call.callee) {
            let code = item.render_as_code(&call.callee);
            let sig = code
                .split_once(":\n")
                .map_or(code.as_str(), |(s, _)| s)
                .trim_start_matches("def ")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace("( ", "(")
                .replace(", )", ")");
            let doc = match item {
                DocItem::Member(DocMember::Function(f)) => f.docs.as_ref().map(|d| {
                    let mut s = d.summary.clone();
                    if let Some(details) = &d.details {
                        s.push_str("\n\n");
                        s.push_str(details);
                    }
                    s
                }),
                _ => None,
            };
            (sig, doc)
        } else {
            let (_, def) = self.wrapper(text, &call.callee)?;
            (def.signature.clone(), def.docstring())
        };
        let params = split_params(&label);
        let active = call
            .in_value
            .then(|| call.kwargs.last())
            .flatten()
            .and_then(|k| {
                params.iter().position(|p| {
                    p.trim_start_matches('*')
                        .split(['=', ':'])
                        .next()
                        .map(str::trim)
                        == Some(k.as_str())
                })
            })
            .unwrap_or(call.arg.min(params.len().saturating_sub(1)));
        Some(SignatureHelp {
            signatures: vec![SignatureInformation {
                documentation: doc.map(markdown),
                parameters: Some(
                    params
                        .iter()
                        .map(|p| ParameterInformation {
                            label: ParameterLabel::Simple(p.clone()),
                            documentation: None,
                        })
                        .collect(),
                ),
                active_parameter: Some(active as u32),
                label,
            }],
            active_signature: Some(0),
            active_parameter: Some(active as u32),
        })
    }
}

/// The parameters of `name(a, b = [1, 2], *, c) -> r`, split at top-level commas.
fn split_params(sig: &str) -> Vec<String> {
    let Some(open) = sig.find('(') else {
        return Vec::new();
    };
    let mut depth = 0i32;
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in sig[open + 1..].chars() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' if depth == 0 => break,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_owned());
    }
    out.retain(|p| !p.is_empty() && p != "*" && p != "/");
    out
}

/// The outline of a playbook: top-level functions and assignments, and every resource
/// declared with a literal type and name.
#[allow(deprecated)] // `DocumentSymbol::deprecated` must be set, though it is deprecated.
pub(crate) fn document_symbols(text: &str) -> Vec<DocumentSymbol> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end();
        let ident_len = body
            .bytes()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
            .count();
        let symbol =
            |name: String, kind, detail: Option<String>, sel: (usize, usize)| DocumentSymbol {
                name,
                detail,
                kind,
                tags: None,
                deprecated: None,
                range: range_of(text, offset, offset + body.len()),
                selection_range: range_of(text, offset + sel.0, offset + sel.1),
                children: None,
            };
        if let Some(rest) = body.strip_prefix("def ") {
            let n = rest
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
            if n > 0 {
                out.push(symbol(
                    rest[..n].to_owned(),
                    SymbolKind::FUNCTION,
                    None,
                    (4, 4 + n),
                ));
            }
        } else if ident_len > 0
            && body[ident_len..].trim_start().starts_with('=')
            && !body[ident_len..].trim_start().starts_with("==")
            && !matches!(&body[..ident_len], "load" | "if" | "for" | "return")
        {
            out.push(symbol(
                body[..ident_len].to_owned(),
                SymbolKind::VARIABLE,
                None,
                (0, ident_len),
            ));
        }
        // Resources declared on this line: `resource("TYPE", "NAME"`.
        for (i, _) in body.match_indices("resource(") {
            if i > 0 && body.as_bytes()[i - 1].is_ascii_alphanumeric() {
                continue;
            }
            let args: Vec<&str> = body[i + 9..].splitn(3, ',').collect();
            let lit = |s: &str| {
                let s = s.trim().trim_end_matches(')');
                s.strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .map(str::to_owned)
            };
            if let (Some(t), Some(n)) = (
                args.first().and_then(|a| lit(a)),
                args.get(1).and_then(|a| lit(a)),
            ) {
                out.push(symbol(
                    format!("{t} \"{n}\""),
                    SymbolKind::OBJECT,
                    Some(t),
                    (i, i + 8),
                ));
            }
        }
        offset += line.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_split_at_top_level_commas() {
        assert_eq!(
            split_params(
                "resource(type: str, name: str, /, *, tags: list[str] = [], **config) -> resource"
            ),
            ["type: str", "name: str", "tags: list[str] = []", "**config"]
        );
    }

    #[test]
    fn symbols_of_a_playbook() {
        let syms = document_symbols(
            "load(\"@stdlib//linux.star\", \"file\")\nport = 80\ndef web(host):\n    return resource(\"linux.file::file\", \"/etc/x\", mode = \"0644\")\n",
        );
        let names: Vec<(&str, SymbolKind)> =
            syms.iter().map(|s| (s.name.as_str(), s.kind)).collect();
        assert_eq!(
            names,
            [
                ("port", SymbolKind::VARIABLE),
                ("web", SymbolKind::FUNCTION),
                ("linux.file::file \"/etc/x\"", SymbolKind::OBJECT)
            ]
        );
    }
}
