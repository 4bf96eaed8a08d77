//! `fmt()`: the one way to interpolate secrets and deferred values (spec §3). Plain
//! arguments give a plain `str`; a secret makes the result a `Secret`, a deferred value a
//! `Ref[str]`, and in both cases the pieces are kept, never the secret's value.

use starlark::values::{Value, ValueLike};

use super::errors::{CodedError, fail};
use super::values::{Handle, Part, Ref, RefKind, Secret};
use crate::diag::Code;

/// One argument turned into parts.
fn parts_of(v: Value) -> Vec<Part> {
    if let Some(s) = v.downcast_ref::<Secret>() {
        return s.parts.clone();
    }
    if let Some(r) = v.downcast_ref::<Ref>() {
        return match &r.kind {
            RefKind::Fmt(parts) => parts.clone(),
            RefKind::Changed(_) => vec![Part::Deferred(r.desc.clone())],
        };
    }
    if let Some(h) = v.downcast_ref::<Handle>() {
        return vec![Part::Lit(h.natural.clone())];
    }
    match v.unpack_str() {
        Some(s) => vec![Part::Lit(s.to_owned())],
        None => vec![Part::Lit(v.to_str())],
    }
}

pub enum Formatted {
    Plain(String),
    Secret(Secret),
    Deferred(Ref),
}

/// Formats `{}`, `{0}` and `{name}` placeholders; `{{` and `}}` are literal braces.
pub fn format<'v>(
    fmt_str: &str,
    args: &[Value<'v>],
    kwargs: &[(String, Value<'v>)],
) -> anyhow::Result<Formatted> {
    let mut parts: Vec<Part> = Vec::new();
    let mut lit = String::new();
    let mut auto = 0usize;
    let mut chars = fmt_str.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let mut key = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => key.push(c),
                        None => {
                            return fail(
                                Code::Arg,
                                format!("unclosed `{{` in format string {fmt_str:?}"),
                            );
                        }
                    }
                }
                let key = key.trim();
                let value = if key.is_empty() {
                    auto += 1;
                    args.get(auto - 1).copied().ok_or_else(|| {
                        CodedError::new(
                            Code::Arg,
                            format!(
                                "format string {fmt_str:?} has more `{{}}` than arguments ({})",
                                args.len()
                            ),
                        )
                    })?
                } else if let Ok(i) = key.parse::<usize>() {
                    args.get(i).copied().ok_or_else(|| {
                        CodedError::new(
                            Code::Arg,
                            format!("format string {fmt_str:?}: no argument {i}"),
                        )
                    })?
                } else {
                    kwargs
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| *v)
                        .ok_or_else(|| {
                            CodedError::new(
                                Code::Arg,
                                format!("format string {fmt_str:?}: no keyword argument `{key}`"),
                            )
                        })?
                };
                for p in parts_of(value) {
                    match p {
                        Part::Lit(s) => lit.push_str(&s),
                        other => {
                            if !lit.is_empty() {
                                parts.push(Part::Lit(std::mem::take(&mut lit)));
                            }
                            parts.push(other);
                        }
                    }
                }
            }
            '}' => {
                return fail(
                    Code::Arg,
                    format!("single `}}` in format string {fmt_str:?}; write `}}}}` for a brace"),
                );
            }
            c => lit.push(c),
        }
    }
    if parts.is_empty() {
        return Ok(Formatted::Plain(lit));
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    if parts.iter().any(|p| matches!(p, Part::Secret(_))) {
        return Ok(Formatted::Secret(Secret { parts }));
    }
    let desc = format!("fmt({fmt_str:?})");
    Ok(Formatted::Deferred(Ref {
        kind: RefKind::Fmt(parts),
        desc,
        origin: None,
    }))
}
