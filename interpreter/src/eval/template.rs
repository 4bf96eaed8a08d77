//! `template()` and `asset()`: files next to the calling `.star` file, read hermetically
//! (inside the project root only) and rendered with MiniJinja in strict-undefined mode.

use std::sync::Arc;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value as Json;
use starlark::codemap::{CodeMap, FileSpan, Pos, Span};
use starlark::values::Value;

use super::builder::EvalContext;
use super::convert::{Collected, to_json};
use super::errors::CodedError;
use super::values::Content;
use crate::diag::Code;
use crate::util::sha256_hex;

/// Rendering a runaway template stops after this much work.
const TEMPLATE_FUEL: u64 = 50_000_000;

fn read(
    ctx: &EvalContext,
    span: &Option<FileSpan>,
    path: &str,
    what: &str,
) -> anyhow::Result<(String, Vec<u8>)> {
    let base = ctx.dir_of(span);
    let real = ctx
        .project
        .resolve_inside(&base, path)
        .map_err(|e| CodedError::new(Code::Path, format!("{what} {e}")))?;
    let bytes = std::fs::read(&real)
        .map_err(|e| CodedError::new(Code::Path, format!("{what} `{path}` cannot be read: {e}")))?;
    Ok((ctx.project.display_name(&real), bytes))
}

pub fn asset(ctx: &EvalContext, span: &Option<FileSpan>, path: &str) -> anyhow::Result<Content> {
    let (display, bytes) = read(ctx, span, path, "asset")?;
    let sha256 = sha256_hex(&bytes);
    // Binary files are not copied into the graph: apply reads them by path and checks the
    // sha256 recorded here.
    let text = String::from_utf8(bytes).ok();
    Ok(Content {
        source: "asset",
        path: display,
        sha256,
        text,
        deferred: None,
        sensitive: false,
        deps: Vec::new(),
    })
}

pub fn template(
    ctx: &EvalContext,
    span: &Option<FileSpan>,
    path: &str,
    vars: Option<Value>,
) -> anyhow::Result<Content> {
    let (display, bytes) = read(ctx, span, path, "template")?;
    let source = String::from_utf8(bytes)
        .map_err(|_| CodedError::new(Code::Template, format!("template `{path}` is not UTF-8")))?;
    let mut collected = Collected::default();
    let vars_json = match vars {
        Some(v) if !v.is_none() => to_json(ctx, v, "vars", &mut collected)?,
        _ => Json::Object(Default::default()),
    };
    if !vars_json.is_object() {
        return Err(CodedError::new(Code::Arg, "`vars` must be a dict").into());
    }
    let deferred = has_markers(&vars_json);
    // A template whose vars hold secrets or deferred values is rendered at apply time; render
    // it now with placeholders so undefined variables and syntax errors still surface.
    let render_vars = if deferred {
        placeholders(&vars_json)
    } else {
        vars_json.clone()
    };
    let text = render(&display, &source, &render_vars)?;
    let deps = collected.deps.into_iter().map(|(n, _)| n).collect();
    Ok(if deferred {
        Content {
            source: "template",
            path: display,
            sha256: sha256_hex(source.as_bytes()),
            text: None,
            deferred: Some((Arc::from(source.as_str()), vars_json)),
            sensitive: collected.sensitive,
            deps,
        }
    } else {
        Content {
            source: "template",
            path: display,
            sha256: sha256_hex(text.as_bytes()),
            text: Some(text),
            deferred: None,
            sensitive: collected.sensitive,
            deps,
        }
    })
}

/// Renders `source` with exactly `vars` visible.
pub fn render(display: &str, source: &str, vars: &Json) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(TEMPLATE_FUEL));
    super::ansible_filters::register(&mut env);
    let tmpl = env
        .template_from_named_str(display, source)
        .map_err(|e| template_error(display, source, &e))?;
    tmpl.render(to_template_value(vars))
        .map_err(|e| template_error(display, source, &e))
}

/// JSON → MiniJinja value, built by hand: serializing `serde_json::Value` directly goes
/// wrong when serde_json's `arbitrary_precision` is enabled in the dependency graph.
pub(crate) fn to_template_value(v: &Json) -> minijinja::Value {
    use minijinja::Value as V;
    match v {
        Json::Null => V::from(()),
        Json::Bool(b) => V::from(*b),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => V::from(i),
            (None, Some(f)) => V::from(f),
            (None, None) => V::from(n.to_string()),
        },
        Json::String(s) => V::from(s.as_str()),
        Json::Array(a) => V::from(a.iter().map(to_template_value).collect::<Vec<_>>()),
        Json::Object(m) => V::from_iter(m.iter().map(|(k, x)| (k.clone(), to_template_value(x)))),
    }
}

fn template_error(display: &str, source: &str, e: &minijinja::Error) -> anyhow::Error {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let mut err = CodedError::new(
        Code::Template,
        format!("template `{display}`: {}{detail}", e.kind()),
    );
    if let Some(line) = e.line() {
        err.message = format!("template `{display}` line {line}: {}{detail}", e.kind());
        let map = CodeMap::new(display.to_owned(), source.to_owned());
        let span = match e.range() {
            Some(r) => Span::new(Pos::new(r.start as u32), Pos::new(r.end as u32)),
            None => map
                .line_span_opt(line.saturating_sub(1))
                .unwrap_or(Span::new(Pos::new(0), Pos::new(0))),
        };
        err.related
            .push((map.file_span(span), "in the template".to_owned()));
    }
    err.into()
}

fn has_markers(v: &Json) -> bool {
    match v {
        Json::Object(m) => {
            m.keys().any(|k| k == "$secret" || k == "$ref") || m.values().any(has_markers)
        }
        Json::Array(a) => a.iter().any(has_markers),
        _ => false,
    }
}

fn placeholders(v: &Json) -> Json {
    match v {
        Json::Object(m) if m.contains_key("$secret") => Json::String("********".into()),
        Json::Object(m) if m.contains_key("$ref") => Json::String("(known after apply)".into()),
        Json::Object(m) => Json::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), placeholders(x)))
                .collect(),
        ),
        Json::Array(a) => Json::Array(a.iter().map(placeholders).collect()),
        other => other.clone(),
    }
}
