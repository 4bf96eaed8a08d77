//! Validation of resource configs with real CUE (libcue through `cue-rs`).
//!
//! Each type's schema is compiled once as `<schema.cue>\n[string]: #Def`, so a whole batch
//! of configs (`{"r0": {...}, "r1": {...}}`) is unified and exported in one libcue call.
//! CUE reports one error per call; when a batch fails, the failing config is taken out and
//! checked alone, field by field, so every bad field of every resource is reported.
//! libcue is used from one thread only (the `Validator` is not `Send`).
//!
//! A large batch of a *plain* schema (fields only, no constraint across fields) is checked
//! in two cheaper steps, since such a config is valid exactly when its set of fields is
//! (closed definition, required fields) and each value satisfies its own field's
//! constraint: one config per distinct set of fields goes through the full check above,
//! and the distinct values of each field are checked by CUE against that field's
//! constraint as one list (`[...(constraint)]`), instead of unifying every config with the
//! whole definition. Anything that does not pass that way is checked again the full way,
//! so errors and their messages are the full path's.

use std::collections::{HashMap, HashSet};
use std::marker::PhantomData;
use std::sync::Arc;

use cue_rs::{Ctx, Value};
use serde_json::{Map, Value as Json};

use super::ResourceType;

/// Configs per CUE call: large enough to amortise the call, small enough that CUE's cost
/// stays linear (one object of 100k fields is quadratic; 500 was measured as the sweet spot).
const BATCH: usize = 500;

/// A plain type's batch of at least this many configs is checked shape by shape and value
/// by value (see the module doc); smaller ones are not worth the extra CUE calls.
const BULK_MIN: usize = 64;

/// Distinct values per CUE call when a field's values are checked as one list.
const BULK_VALUES: usize = 2000;

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
    /// Check large batches of plain schemas shape by shape and value by value (the
    /// default; tests compare it with the config-by-config path).
    pub bulk: bool,
    bulk_checked: usize,
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
            bulk: true,
            bulk_checked: 0,
            _not_send: PhantomData,
        })
    }

    /// How many configs the shape-and-value path has found valid so far.
    pub fn bulk_checked(&self) -> usize {
        self.bulk_checked
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
        if self.bulk
            && ty.doc.plain
            && !self.export_always
            && configs.len() >= BULK_MIN
            && let Some(valid) = self.validate_plain_bulk(ty, configs)?
        {
            return Ok(valid.into_iter().map(Ok).collect());
        }
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

    /// Every config of a plain type checked shape by shape and value by value (see the
    /// module doc): the configs with their defaults when all of them are valid, `None` when
    /// one of them is not (or a value's constraint cannot be checked alone), so the caller
    /// checks them the full way and reports exactly what that finds.
    fn validate_plain_bulk(
        &mut self,
        ty: &ResourceType,
        configs: &[Json],
    ) -> Result<Option<Vec<Json>>, String> {
        let fields: HashMap<&str, &str> = ty
            .doc
            .fields
            .iter()
            .map(|f| (f.name.as_str(), f.cue_type.as_str()))
            .collect();
        // One representative per set of fields, and each field's distinct values (as JSON
        // text, in order of first appearance).
        let mut shapes: HashMap<Vec<&str>, usize> = HashMap::new();
        let mut values: Vec<(&str, HashSet<String>, Vec<String>)> = Vec::new();
        let mut slot: HashMap<&str, usize> = HashMap::new();
        for (i, c) in configs.iter().enumerate() {
            let Json::Object(m) = c else { return Ok(None) };
            let mut shape: Vec<&str> = m.keys().map(String::as_str).collect();
            shape.sort_unstable();
            shapes.entry(shape).or_insert(i);
            for (k, v) in m {
                // An unknown field: the full path reports it.
                if !fields.contains_key(k.as_str()) {
                    return Ok(None);
                }
                let n = *slot.entry(k.as_str()).or_insert_with(|| {
                    values.push((k.as_str(), HashSet::new(), Vec::new()));
                    values.len() - 1
                });
                let text = serde_json::to_string(v).map_err(|e| e.to_string())?;
                if values[n].1.insert(text.clone()) {
                    values[n].2.push(text);
                }
            }
        }
        // The representatives take the full path: closedness, required fields and their
        // own values, with the defaults filled in.
        let mut reps: Vec<usize> = shapes.into_values().collect();
        reps.sort_unstable();
        for chunk in reps.chunks(BATCH) {
            if self.run(ty, configs, chunk)?.is_err() {
                return Ok(None);
            }
        }
        for (field, _, texts) in &values {
            for chunk in texts.chunks(BULK_VALUES) {
                if !self.values_fit(ty, field, fields[field], chunk)? {
                    return Ok(None);
                }
            }
        }
        let defaults = self.defaults(ty)?.clone();
        self.bulk_checked += configs.len();
        Ok(Some(
            configs
                .iter()
                .map(|c| {
                    let mut config = c.as_object().cloned().unwrap_or_default();
                    for (k, v) in &defaults {
                        config.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    Json::Object(config)
                })
                .collect(),
        ))
    }

    /// Whether every value (JSON text) satisfies the constraint of `ty`'s field `field`,
    /// checked by CUE as one list `[...(constraint)]` in the scope of the schema. `false`
    /// also when the constraint does not compile on its own.
    fn values_fit(
        &mut self,
        ty: &ResourceType,
        field: &str,
        constraint: &str,
        texts: &[String],
    ) -> Result<bool, String> {
        self.tick()?;
        let name = format!("{}\u{0}{field}", ty.name);
        if !self.compiled.contains_key(&name) {
            // In a definition, so struct literals in the constraint are closed as they are
            // in the type's own definition; as the value of a field on a line of its own,
            // so a trailing comment cannot swallow what follows (inside brackets, CUE's
            // automatic comma after the constraint's last token would be a syntax error).
            let src = format!(
                "{}\n#FroyoBulkValue: {constraint}\n#FroyoBulkValues: [...#FroyoBulkValue]\nfroyo_bulk_values: #FroyoBulkValues\n",
                ty.schema_source
            );
            match Value::compile_string(&self.ctx, &src) {
                Ok(v) => {
                    self.compiled.insert(name.clone(), v);
                }
                Err(_) => return Ok(false),
            }
        }
        let mut bytes = Vec::with_capacity(texts.iter().map(|t| t.len() + 1).sum::<usize>() + 32);
        bytes.extend_from_slice(b"{\"froyo_bulk_values\":[");
        for (n, t) in texts.iter().enumerate() {
            if n > 0 {
                bytes.push(b',');
            }
            bytes.extend_from_slice(t.as_bytes());
        }
        bytes.extend_from_slice(b"]}");
        let Ok(value) = Value::compile_bytes(&self.ctx, &bytes) else {
            return Ok(false);
        };
        let unified = Value::unify(&self.compiled[&name], &value);
        Ok(unified.is_valid().is_ok())
    }

    /// Counts a CUE call, starting a fresh context every `RECYCLE_AFTER` calls.
    fn tick(&mut self) -> Result<(), String> {
        self.calls += 1;
        if self.calls.is_multiple_of(RECYCLE_AFTER) {
            self.compiled.clear();
            self.ctx = Ctx::new().map_err(|e| e.to_string())?;
        }
        Ok(())
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
        self.tick()?;
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
