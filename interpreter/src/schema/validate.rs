//! Validation of resource configs with real CUE (libcue through `cue-rs`).
//!
//! Each type's schema is compiled once as `<schema.cue>\n[string]: #Def`, so a whole batch
//! of configs (`{"r0": {...}, "r1": {...}}`) is unified and exported in one libcue call.
//! CUE reports one error per call; when a batch fails, the failing config is taken out and
//! checked alone, field by field, so every bad field of every resource is reported.
//! libcue is used from one thread only (the `Validator` is not `Send`).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use cue_rs::{Ctx, Value};
use serde_json::{Map, Value as Json};

use super::ResourceType;

/// Configs per CUE call: large enough to amortise the call, small enough that CUE's cost
/// stays linear (one object of 100k fields is quadratic; 500 was measured as the sweet spot).
const BATCH: usize = 500;

/// libcue's runtime interns every label and string it sees for the life of a context, so a
/// long validation starts a fresh context (and recompiles the schemas, ~0.5 ms) this often.
const RECYCLE_AFTER: usize = 20;

/// A schema violation in one field of one config.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Dotted path inside the config (`mode`, `env.PATH`); empty when the config as a whole is wrong.
    pub field: String,
    /// CUE's message, without the path prefix.
    pub message: String,
}

/// Compiled schemas and the libcue context.
pub struct Validator {
    ctx: Ctx,
    compiled: HashMap<String, Value>,
    /// CUE calls made with the current context (see `RECYCLE_AFTER`).
    calls: usize,
    /// Each type's field defaults, as CUE evaluates the schema's `*default` literals.
    defaults: HashMap<String, Map<String, Json>>,
    /// Always export through CUE, even for plain schemas (tests compare both paths).
    pub export_always: bool,
    /// libcue handles must stay on the thread that made them.
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for Validator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Validator")
            .field("compiled", &self.compiled.len())
            .finish()
    }
}

impl Validator {
    pub fn new() -> Result<Self, String> {
        Ok(Validator {
            ctx: Ctx::new().map_err(|e| e.to_string())?,
            compiled: HashMap::new(),
            calls: 0,
            defaults: HashMap::new(),
            export_always: false,
            _not_send: PhantomData,
        })
    }

    fn schema(&mut self, ty: &ResourceType) -> Result<&Value, String> {
        if !self.compiled.contains_key(&ty.name) {
            let src = format!("{}\n[string]: {}\n", ty.schema_source, ty.definition);
            let v = Value::compile_string(&self.ctx, &src)
                .map_err(|e| format!("schema of `{}` does not compile: {e}", ty.name))?;
            self.compiled.insert(ty.name.clone(), v);
        }
        Ok(&self.compiled[&ty.name])
    }

    /// The defaults of `ty`'s fields, each `*literal` evaluated by CUE once.
    fn defaults(&mut self, ty: &ResourceType) -> Result<&Map<String, Json>, String> {
        if !self.defaults.contains_key(&ty.name) {
            let mut m = Map::new();
            for f in &ty.doc.fields {
                let Some(text) = &f.default else { continue };
                let v = Value::compile_string(&self.ctx, &format!("v: {text}"))
                    .and_then(|v| v.to_json_bytes())
                    .map_err(|e| {
                        format!("default of `{}.{}` does not evaluate: {e}", ty.name, f.name)
                    })?;
                let mut parsed: Map<String, Json> =
                    serde_json::from_slice(&v).map_err(|e| e.to_string())?;
                m.insert(f.name.clone(), parsed.remove("v").unwrap_or(Json::Null));
            }
            self.defaults.insert(ty.name.clone(), m);
        }
        Ok(&self.defaults[&ty.name])
    }

    /// Validates configs of one type. Returns, per input, the config with defaults filled in
    /// or every field error found.
    pub fn validate(
        &mut self,
        ty: &Arc<ResourceType>,
        configs: &[Json],
    ) -> Result<Vec<Result<Json, Vec<FieldError>>>, String> {
        let mut out: Vec<Option<Result<Json, Vec<FieldError>>>> = vec![None; configs.len()];
        for chunk_start in (0..configs.len()).step_by(BATCH) {
            let chunk_end = (chunk_start + BATCH).min(configs.len());
            // Groups still to check; a failing group is split, so K bad configs among N
            // cost about K·log(N) CUE calls on ever smaller groups, not K calls over all N.
            let mut groups: Vec<Vec<usize>> = vec![(chunk_start..chunk_end).collect()];
            while let Some(mut group) = groups.pop() {
                match self.run(ty, configs, &group)? {
                    Ok(mut exported) => {
                        for i in group {
                            let v = exported.remove(&key(i)).unwrap_or(Json::Null);
                            out[i] = Some(Ok(v));
                        }
                    }
                    Err(msg) => {
                        // The config CUE complained about, when its path names one; else
                        // the first of the group if it is alone.
                        let culprit = parse_error(&msg)
                            .and_then(|(path, _)| {
                                path.split('.')
                                    .next()
                                    .and_then(|k| k.strip_prefix('r'))
                                    .and_then(|n| n.parse().ok())
                            })
                            .filter(|i| group.contains(i))
                            .or_else(|| (group.len() == 1).then(|| group[0]));
                        if let Some(i) = culprit {
                            out[i] = Some(self.validate_one(ty, &configs[i])?);
                            group.retain(|p| *p != i);
                        }
                        if group.len() > 1 {
                            let rest = group.split_off(group.len() / 2);
                            groups.push(rest);
                        }
                        if !group.is_empty() {
                            groups.push(group);
                        }
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.unwrap_or(Ok(Json::Null)))
            .collect())
    }

    /// One CUE call over `idx`: the exported object, or CUE's first error message.
    fn run(
        &mut self,
        ty: &ResourceType,
        configs: &[Json],
        idx: &[usize],
    ) -> Result<Result<Map<String, Json>, String>, String> {
        // `{"r3": {...}, "r4": {...}}`, written directly rather than cloned into a Map.
        let mut bytes = Vec::with_capacity(idx.len() * 128);
        bytes.push(b'{');
        for (n, &i) in idx.iter().enumerate() {
            if n > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(format!("\"{}\":", key(i)).as_bytes());
            serde_json::to_writer(&mut bytes, &configs[i]).map_err(|e| e.to_string())?;
        }
        bytes.push(b'}');
        self.calls += 1;
        if self.calls.is_multiple_of(RECYCLE_AFTER) {
            self.compiled.clear();
            self.ctx = Ctx::new().map_err(|e| e.to_string())?;
        }
        let value = match Value::compile_bytes(&self.ctx, &bytes) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e.to_string())),
        };
        let schema = self.schema(ty)?;
        let unified = Value::unify(schema, &value);
        if ty.doc.plain && !self.export_always {
            // Unification has already evaluated every constraint, so `is_valid()` costs
            // next to nothing, while exporting costs as much as unifying. For a schema of
            // plain fields the exported value is the input plus the field defaults, and
            // the one thing only export checks is required (`!`) fields.
            if let Err(e) = unified.is_valid() {
                return Ok(Err(e.to_string()));
            }
            let defaults = self.defaults(ty)?.clone();
            let mut out = Map::with_capacity(idx.len());
            for &i in idx {
                let mut config = match &configs[i] {
                    Json::Object(m) => m.clone(),
                    _ => return Ok(Err(format!("{}: expected a struct", key(i)))),
                };
                if let Some(f) = ty
                    .doc
                    .fields
                    .iter()
                    .find(|f| f.required && !config.contains_key(&f.name))
                {
                    return Ok(Err(format!(
                        "{}.{}: field is required but not present",
                        key(i),
                        f.name
                    )));
                }
                for (k, v) in &defaults {
                    config.entry(k.clone()).or_insert_with(|| v.clone());
                }
                out.insert(key(i), Json::Object(config));
            }
            return Ok(Ok(out));
        }
        match unified.to_json_bytes() {
            Ok(b) => match serde_json::from_slice::<Json>(&b) {
                Ok(Json::Object(m)) => Ok(Ok(m)),
                Ok(other) => Err(format!("CUE exported a non-object: {other}")),
                Err(e) => Err(format!("CUE exported invalid JSON: {e}")),
            },
            Err(e) => Ok(Err(e.to_string())),
        }
    }

    /// Validates a single config, removing each failing field to find the next error.
    fn validate_one(
        &mut self,
        ty: &ResourceType,
        config: &Json,
    ) -> Result<Result<Json, Vec<FieldError>>, String> {
        let mut cfg = config.clone();
        let mut errors: Vec<FieldError> = Vec::new();
        let mut removed: Vec<String> = Vec::new();
        // At most one round per field, plus one.
        let rounds = config.as_object().map_or(1, |m| m.len() + 1);
        for _ in 0..rounds {
            let configs = [cfg.clone()];
            match self.run(ty, &configs, &[0])? {
                Ok(mut m) => {
                    return Ok(if errors.is_empty() {
                        Ok(m.remove("r0").unwrap_or(Json::Null))
                    } else {
                        Err(errors)
                    });
                }
                Err(msg) => {
                    let (path, message) =
                        parse_error(&msg).unwrap_or_else(|| (String::new(), msg.clone()));
                    let field = path
                        .strip_prefix("r0")
                        .map(|p| p.trim_start_matches('.'))
                        .unwrap_or(&path)
                        .to_owned();
                    let top = field.split('.').next().unwrap_or_default().to_owned();
                    // A field we removed ourselves is now "required but not present": already reported.
                    if removed.contains(&top) {
                        return Ok(Err(errors));
                    }
                    errors.push(FieldError {
                        field: field.clone(),
                        message,
                    });
                    let removed_now = !top.is_empty()
                        && cfg
                            .as_object_mut()
                            .is_some_and(|m| m.remove(&top).is_some());
                    if !removed_now {
                        return Ok(Err(errors));
                    }
                    removed.push(top);
                }
            }
        }
        Ok(Err(errors))
    }
}

fn key(i: usize) -> String {
    format!("r{i}")
}

/// Splits `r3.mode: invalid value "9" (out of bound ...) (and 2 more errors)` into the path
/// and the message.
pub fn parse_error(msg: &str) -> Option<(String, String)> {
    let msg = msg.strip_prefix("cue: marshal error: ").unwrap_or(msg);
    let msg = match msg.rfind(" (and ") {
        Some(i) if msg.ends_with(" more errors)") || msg.ends_with(" more error)") => &msg[..i],
        _ => msg,
    };
    let (path, rest) = msg.split_once(": ")?;
    if path.contains(' ') {
        return None;
    }
    Some((path.to_owned(), rest.trim().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cue_error_paths() {
        assert_eq!(
            parse_error("r3.mode: invalid value \"9\" (out of bound =~\"^0\") (and 2 more errors)"),
            Some((
                "r3.mode".into(),
                "invalid value \"9\" (out of bound =~\"^0\")".into()
            ))
        );
        assert_eq!(
            parse_error("cue: marshal error: r0.path: field is required but not present"),
            Some(("r0.path".into(), "field is required but not present".into()))
        );
    }

    /// Many bad configs interleaved with good ones in one batch: each bad one gets its
    /// own field error (found by splitting failing groups), each good one its defaults.
    #[test]
    fn a_batch_with_many_errors_reports_each_one() {
        let ty = crate::schema::Registry::builtin()
            .get("linux.file::file")
            .unwrap()
            .clone();
        let configs: Vec<Json> = (0..40)
            .map(|i| {
                if i % 3 == 0 {
                    serde_json::json!({"path": format!("/srv/f{i}"), "mdoe": "0644"})
                } else {
                    serde_json::json!({"path": format!("/srv/f{i}"), "mode": "0644"})
                }
            })
            .collect();
        let mut v = Validator::new().unwrap();
        let results = v.validate(&ty, &configs).unwrap();
        for (i, r) in results.iter().enumerate() {
            match r {
                Err(errs) => {
                    assert_eq!(i % 3, 0, "config {i} should pass: {errs:?}");
                    assert!(errs.iter().any(|e| e.field == "mdoe"), "{i}: {errs:?}");
                }
                Ok(v) => {
                    assert_ne!(i % 3, 0, "config {i} should fail");
                    assert_eq!(v["path"], format!("/srv/f{i}"));
                }
            }
        }
    }
}
