//! `fmt()`: the one way to interpolate secrets and deferred values (spec §3). Plain
//! arguments give a plain `str`; a secret makes the result a `Secret`, a deferred value a
//! `Ref[str]`, and in both cases the pieces are kept, never the secret's value.
//! Placeholders take Python's format specs (`{:>8}`, `{:02d}`) through the patched
//! starlark's `format_spec`, the same code as `str.format`.

use starlark::values::string::format_spec::{format_str, format_value};
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

/// `{x:spec}` or `{x!r}` of a plain value (a handle is its natural value), into `out`.
fn spec_text(value: Value, spec: &str, repr: bool, out: &mut String) -> anyhow::Result<()> {
    let opaque = if value.downcast_ref::<Secret>().is_some() {
        Some("a secret")
    } else if value.downcast_ref::<Ref>().is_some() {
        Some("a deferred value")
    } else {
        None
    };
    if let Some(what) = opaque {
        let form = if repr {
            "`!r`".to_owned()
        } else {
            format!("the spec `:{spec}`")
        };
        return Err(CodedError::new(
            Code::Arg,
            format!("{form} cannot apply to {what}: its text is only known at apply time"),
        )
        .help("format it plainly with `{}` and put specs on the other arguments: `fmt(\"{:>8} {}\", name, pw)`")
        .into());
    }
    if let Some(h) = value.downcast_ref::<Handle>() {
        let text = if repr {
            serde_json::Value::String(h.natural.clone()).to_string()
        } else {
            h.natural.clone()
        };
        return Ok(format_str(&text, spec, out)?);
    }
    if repr {
        Ok(format_str(&value.to_repr(), spec, out)?)
    } else {
        Ok(format_value(value, spec, out)?)
    }
}

pub enum Formatted {
    Plain(String),
    Secret(Secret),
    Deferred(Ref),
}

/// Formats `{}`, `{0}` and `{name}` placeholders, each with an optional `!r`/`!s`
/// conversion and `:spec` (Python's format-spec mini-language, as in `str.format`:
/// `{:>8}`, `{:02d}`, `{name:.3f}`); `{{` and `}}` are literal braces. A spec or `!r`
/// applies to plain values only: a secret's or a deferred value's text is not known
/// at evaluation.
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
                let mut field = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some('{') => {
                            return Err(CodedError::new(
                                Code::Arg,
                                format!("nested `{{` in a field of format string {fmt_str:?}"),
                            )
                            .help(
                                "a spec cannot take its width from a field; pad with the methods instead: `fmt(\"{}\", x).rjust(w)`",
                            )
                            .into());
                        }
                        Some(c) => field.push(c),
                        None => {
                            return fail(
                                Code::Arg,
                                format!("unclosed `{{` in format string {fmt_str:?}"),
                            );
                        }
                    }
                }
                let (key, spec) = match field.split_once(':') {
                    Some((k, s)) => (k, s),
                    None => (field.as_str(), ""),
                };
                let (key, repr) = match key.split_once('!') {
                    None => (key, false),
                    Some((k, "r")) => (k, true),
                    Some((k, "s")) => (k, false),
                    Some((_, other)) => {
                        return Err(CodedError::new(
                            Code::Arg,
                            format!("unknown conversion `!{other}` in format string {fmt_str:?}"),
                        )
                        .help("a conversion is `!r` (repr) or `!s` (str): `{0!r}`, `{name!s:>8}`")
                        .into());
                    }
                };
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
                if !spec.is_empty() || repr {
                    spec_text(value, spec, repr, &mut lit)?;
                    continue;
                }
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

#[cfg(test)]
mod tests {
    use starlark::environment::Module;
    use starlark::eval::Evaluator;
    use starlark::syntax::AstModule;

    /// Evaluates one expression with the playbook globals; its string value, or the
    /// error's message.
    fn eval(src: &str) -> Result<String, String> {
        let ast = AstModule::parse("t.star", src.to_owned(), &crate::eval::dialect())
            .map_err(|e| e.to_string())?;
        Module::with_temp_heap(|module| {
            let mut eval = Evaluator::new(&module);
            let v = eval
                .eval_module(ast, crate::eval::globals())
                .map_err(|e| e.to_string())?;
            v.unpack_str()
                .map(str::to_owned)
                .ok_or_else(|| format!("not a string: {}", v.to_repr()))
        })
    }

    /// `tests/fixtures/format/python_table.json` holds CPython's results for each
    /// expression (written by `python_table.py` next to it); `%`, `str.format`, `fmt()`
    /// and the padding methods must give the same strings.
    #[test]
    fn specs_format_as_python_does() {
        let doc: serde_json::Value = serde_json::from_str(include_str!(
            "../../../tests/fixtures/format/python_table.json"
        ))
        .unwrap();
        let rows = doc["rows"].as_array().unwrap();
        assert!(rows.len() > 200, "the table lost its rows");
        let mut wrong = Vec::new();
        for row in rows {
            let expected = row["expected"].as_str().unwrap();
            for key in ["expr", "fmt"] {
                let Some(expr) = row[key].as_str() else {
                    continue;
                };
                match eval(expr) {
                    Ok(got) if got == expected => {}
                    got => wrong.push(format!(
                        "{expr}\n    Python: {expected:?}\n    froyo:  {got:?}"
                    )),
                }
            }
        }
        assert!(
            wrong.is_empty(),
            "{} results differ from Python:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    /// What the dialect does where Python differs (docs/language.md).
    #[test]
    fn dialect_differences_are_what_the_docs_say() {
        // A bool is text under every spec; numeric types refuse it.
        assert_eq!(eval(r#""{:>6}".format(True)"#).unwrap(), "  True");
        assert!(
            eval(r#""%d" % True"#)
                .unwrap_err()
                .contains("not supported on type `bool`")
        );
        // Other values are their str() under the string rules (Python raises).
        assert_eq!(eval(r#""{:>6}|".format(None)"#).unwrap(), "  None|");
        assert_eq!(eval(r#""{:<8}|".format([1, 2])"#).unwrap(), "[1, 2]  |");
        // Starlark's repr quotes with `"`.
        assert_eq!(eval(r#""%r" % "a""#).unwrap(), "\"a\"");
        assert_eq!(eval(r#"fmt("{!r:>5}", "a")"#).unwrap(), "  \"a\"");
    }

    #[test]
    fn unsupported_specs_name_the_supported_form() {
        for (src, message) in [
            (r#""%q" % 1"#, "Unsupported format character: 'q'"),
            (r#""%5" % 1"#, "Incomplete format"),
            (
                r#""{:Q}".format(1)"#,
                "Unknown format code 'Q' for object of type 'int'",
            ),
            (
                r#""{:d}".format("x")"#,
                "Unknown format code 'd' for object of type 'string'",
            ),
            (r#""{:>>>8}".format(1)"#, "Invalid format specifier '>>>8'"),
            (
                r#""{:.}".format(1.5)"#,
                "Format specifier missing precision",
            ),
            (
                r#""{:.2d}".format(1)"#,
                "Precision not allowed in integer format specifier",
            ),
            (
                r#""{:+}".format("x")"#,
                "Sign not allowed in string format specifier",
            ),
            (r#""{:,x}".format(1)"#, "Cannot specify ',' with 'x'"),
            (r#""{!r:>8}".format(1)"#, "not supported"),
            (r#""{:>{w}}".format(1, w = 3)"#, "Nested fields"),
            (r#""{0.real}".format(1)"#, "Invalid character '.'"),
            (r#"fmt("{:Q}", 1)"#, "Unknown format code 'Q'"),
            (r#"fmt("{!x}", 1)"#, "unknown conversion `!x`"),
            (r#""7".rjust(3, "00")"#, "exactly one character"),
        ] {
            let err = eval(src).expect_err(src);
            assert!(err.contains(message), "{src}: {err}");
        }
    }

    #[test]
    fn an_f_string_spec_is_e_parse_with_the_forms_that_take_one() {
        let Err(err) = AstModule::parse(
            "t.star",
            "i = 3\nx = f\"web-{i:02d}\"\n".to_owned(),
            &crate::eval::dialect(),
        ) else {
            panic!("f-strings take no spec");
        };
        let d = crate::eval::errors::from_starlark(&err);
        assert_eq!(d.code, crate::diag::Code::Parse);
        assert!(d.help.contains("\"web-{:02d}\".format(i)"), "{}", d.help);
        assert!(d.help.contains("\"web-%02d\" % i"), "{}", d.help);
    }

    #[test]
    fn a_spec_on_a_secret_or_deferred_value_is_refused() {
        use super::{Formatted, format};
        use crate::eval::values::{Part, Ref, RefKind, Secret};
        Module::with_temp_heap(|module| {
            let heap = module.heap();
            let secret = heap.alloc(Secret {
                parts: vec![Part::Secret("env://PW".into())],
            });
            let deferred = heap.alloc(Ref {
                kind: RefKind::Fmt(vec![Part::Deferred("x.changed".into())]),
                desc: "x.changed".into(),
                origin: None,
            });
            // Plain `{}` keeps the secret a secret, with the spec on the other argument.
            match format("{:>4}:{}", &[heap.alloc(7), secret], &[]).unwrap() {
                Formatted::Secret(s) => {
                    assert_eq!(s.parts[0], Part::Lit("   7:".into()));
                    assert_eq!(s.parts[1], Part::Secret("env://PW".into()));
                }
                _ => panic!("not a secret"),
            }
            for (v, what) in [(secret, "a secret"), (deferred, "a deferred value")] {
                for f in ["{:>8}", "{!r}"] {
                    let err = format(f, &[v], &[]).err().expect(f).to_string();
                    assert!(err.contains(what), "{f}: {err}");
                }
            }
        });
    }
}
