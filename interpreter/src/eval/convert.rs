//! Starlark values → resource config JSON.
//!
//! Handles become their natural value and an implicit edge; secrets, contents and refs
//! become `$secret` / `$content` / `$ref` markers (never a secret's value); a string that
//! holds a rendered secret or deferred value (`str(secret)`, `"%s" % ref`, f-strings) is
//! refused, since it could only be a mistake.

use serde_json::{Map, Value as Json};
use starlark::values::dict::DictRef;
use starlark::values::list::ListRef;
use starlark::values::structs::StructRef;
use starlark::values::tuple::TupleRef;
use starlark::values::{Value, ValueLike};

use super::builder::EvalContext;
use super::errors::{CodedError, fail};
use super::values::{Content, Handle, NodeId, Ref, Secret};
use crate::diag::Code;

/// What converting one config produced besides the JSON.
#[derive(Debug, Default)]
pub struct Collected {
    /// Producer nodes and the config path that referenced them.
    pub deps: Vec<(NodeId, String)>,
    pub sensitive: bool,
}

/// Converts `v` found at `path` (for messages and edge provenance).
pub fn to_json(
    ctx: &EvalContext,
    v: Value,
    path: &str,
    out: &mut Collected,
) -> anyhow::Result<Json> {
    if v.is_none() {
        return Ok(Json::Null);
    }
    if let Some(b) = v.unpack_bool() {
        return Ok(Json::Bool(b));
    }
    if let Some(s) = v.unpack_str() {
        check_plain_string(s, path)?;
        return Ok(Json::String(s.to_owned()));
    }
    if v.get_type() == "int" {
        return match v.unpack_i32() {
            Some(i) => Ok(Json::from(i)),
            None => v.to_json_value().map_err(|_| {
                CodedError::new(Code::Arg, format!("`{path}`: integer out of range")).into()
            }),
        };
    }
    if v.get_type() == "float" {
        return v.to_json_value();
    }
    if let Some(h) = v.downcast_ref::<Handle>() {
        if let Some(node) = h.node {
            let node = ctx.resolve(node, &h.id)?;
            out.deps.push((node, path.to_owned()));
        }
        return Ok(Json::String(h.natural.clone()));
    }
    if let Some(s) = v.downcast_ref::<Secret>() {
        out.sensitive = true;
        return Ok(s.to_json());
    }
    if let Some(c) = v.downcast_ref::<Content>() {
        out.sensitive |= c.sensitive;
        for &d in &c.deps {
            out.deps
                .push((ctx.resolve(d, "a template variable")?, path.to_owned()));
        }
        return Ok(c.to_json());
    }
    if let Some(r) = v.downcast_ref::<Ref>() {
        for d in r.deps() {
            out.deps.push((ctx.resolve(d, &r.desc)?, path.to_owned()));
        }
        return Ok(r.to_json());
    }
    if let Some(list) = ListRef::from_value(v) {
        return list
            .iter()
            .enumerate()
            .map(|(i, x)| to_json(ctx, x, &format!("{path}[{i}]"), out))
            .collect();
    }
    if let Some(t) = TupleRef::from_value(v) {
        return t
            .iter()
            .enumerate()
            .map(|(i, x)| to_json(ctx, x, &format!("{path}[{i}]"), out))
            .collect();
    }
    if let Some(d) = DictRef::from_value(v) {
        let mut m = Map::new();
        for (k, x) in d.iter() {
            let Some(k) = k.unpack_str() else {
                return fail(
                    Code::Arg,
                    format!(
                        "`{path}`: dictionary keys must be strings, got `{}`",
                        k.get_type()
                    ),
                );
            };
            m.insert(k.to_owned(), to_json(ctx, x, &format!("{path}.{k}"), out)?);
        }
        return Ok(Json::Object(m));
    }
    if let Some(s) = StructRef::from_value(v) {
        let mut m = Map::new();
        for (k, x) in s.iter() {
            let k = k.as_str();
            m.insert(k.to_owned(), to_json(ctx, x, &format!("{path}.{k}"), out)?);
        }
        return Ok(Json::Object(m));
    }
    fail(
        Code::Arg,
        format!(
            "`{path}`: a value of type `{}` cannot be part of a resource's config",
            v.get_type()
        ),
    )
}

/// Refuses strings that carry a rendered secret or deferred value.
pub fn check_plain_string(s: &str, path: &str) -> anyhow::Result<()> {
    if s.contains("<secret ") {
        return Err(CodedError::new(Code::SecretStr, format!("`{path}` holds a secret that was turned into plain text"))
            .help("`str()`, `%` and f-strings only see `<secret …>`; build the string with `fmt(\"…{}…\", secret(…))`")
            .into());
    }
    if s.contains("<deferred ") {
        return Err(CodedError::new(Code::Deferred, format!("`{path}` holds a deferred value that was turned into text"))
            .help("values known only at apply time can be interpolated with `fmt()` or passed as they are")
            .into());
    }
    Ok(())
}

/// Replaces markers with plain values CUE can check: a secret or deferred string with a
/// placeholder string, content with its text. Returns `None` for a value CUE cannot see yet.
pub fn cue_view(v: &Json) -> Option<Json> {
    match v {
        Json::Object(m) if m.len() == 1 && m.contains_key("$secret") => {
            Some(Json::String("********".into()))
        }
        Json::Object(m) if m.len() == 1 && m.contains_key("$ref") => None,
        Json::Object(m) if m.len() == 1 && m.contains_key("$content") => Some(
            m["$content"]
                .get("text")
                .cloned()
                .unwrap_or_else(|| Json::String(String::new())),
        ),
        Json::Object(m) => Some(Json::Object(
            m.iter()
                .filter_map(|(k, x)| cue_view(x).map(|x| (k.clone(), x)))
                .collect(),
        )),
        Json::Array(a) => Some(Json::Array(
            a.iter()
                .map(|x| cue_view(x).unwrap_or(Json::String(String::new())))
                .collect(),
        )),
        other => Some(other.clone()),
    }
}

/// [`cue_view`] of a whole config.
pub fn cue_view_map(config: &Map<String, Json>) -> Json {
    Json::Object(
        config
            .iter()
            .filter_map(|(k, x)| cue_view(x).map(|x| (k.clone(), x)))
            .collect(),
    )
}

/// Puts the markers of `original` back into CUE's output (which has defaults filled in).
pub fn merge_markers(original: &Json, validated: Json) -> Json {
    match (original, validated) {
        (Json::Object(o), _)
            if o.len() == 1 && o.keys().next().is_some_and(|k| k.starts_with('$')) =>
        {
            original.clone()
        }
        (Json::Object(o), Json::Object(mut v)) => {
            for (k, ov) in o {
                let nv = v.remove(k).unwrap_or(Json::Null);
                v.insert(k.clone(), merge_markers(ov, nv));
            }
            Json::Object(v)
        }
        (Json::Array(o), Json::Array(v)) if o.len() == v.len() => {
            Json::Array(o.iter().zip(v).map(|(a, b)| merge_markers(a, b)).collect())
        }
        (_, v) => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markers_round_trip_through_cue_view() {
        let original = json!({"path": "/x", "content": {"$secret": "env://A"}, "env": {"K": {"$ref": {"changed": "x"}}, "L": "1"}});
        let view = cue_view(&original).unwrap();
        assert_eq!(
            view,
            json!({"path": "/x", "content": "********", "env": {"L": "1"}})
        );
        let validated =
            json!({"path": "/x", "content": "********", "env": {"L": "1"}, "state": "file"});
        let merged = merge_markers(&original, validated);
        assert_eq!(merged["content"], json!({"$secret": "env://A"}));
        assert_eq!(merged["env"]["K"], json!({"$ref": {"changed": "x"}}));
        assert_eq!(merged["state"], "file");
    }

    #[test]
    fn rendered_secrets_in_strings_are_refused() {
        assert!(check_plain_string("password=<secret env://X>", "content").is_err());
        assert!(check_plain_string("ok", "content").is_ok());
    }
}
