//! Apply-time values: secrets (`$secret`), deferred values (`$ref`) and templates whose
//! vars hold either are resolved just before a provider sees a config, and every secret
//! value resolved is remembered by the [`Masker`] so it can be scrubbed from anything
//! shown or stored (plan lines, diffs, errors, events).

pub mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value as Json;

/// Why a config cannot be resolved yet (or at all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// Depends on the outcome of earlier resources in this run (`changed(...)`).
    Deferred(String),
    /// A secret that cannot be read (unset variable, unsupported scheme).
    Secret(String),
    /// A template failed to render with its apply-time vars.
    Template(String),
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolved::Deferred(d) => write!(f, "known only after {d}"),
            Unresolved::Secret(m) | Unresolved::Template(m) => f.write_str(m),
        }
    }
}

/// Reads the run's secrets and remembers every value read, so anything shown or stored
/// can be scrubbed; shared by everyone who prints or stores text.
#[derive(Clone, Default)]
pub struct Masker(Arc<Inner>);

#[derive(Default)]
struct Inner {
    values: RwLock<BTreeSet<String>>,
    /// The project root: `file://` stores are read relative to it (none: env:// only).
    root: Option<PathBuf>,
    /// Decrypted stores by file, kept for the run (in memory only).
    stores: Mutex<HashMap<String, Arc<BTreeMap<String, String>>>>,
}

// Never the values: a `{:?}` in a log must not print them.
impl std::fmt::Debug for Masker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.values.read().map(|v| v.len()).unwrap_or(0);
        write!(f, "Masker({n} values)")
    }
}

/// What a secret is replaced with.
pub const MASK: &str = "<secret>";

impl Masker {
    /// A masker that also reads `file://` secrets from stores under `root`.
    pub fn for_project(root: &Path) -> Masker {
        Masker(Arc::new(Inner {
            root: Some(root.to_owned()),
            ..Inner::default()
        }))
    }

    /// The value of a secret URI, remembered for masking. `env://NAME` reads the
    /// controller's environment; `file://STORE#NAME` the project's age store `STORE`.
    pub fn read(&self, uri: &str) -> Result<String, Unresolved> {
        let value = self.read_uncached(uri)?;
        self.add(&value);
        Ok(value)
    }

    fn read_uncached(&self, uri: &str) -> Result<String, Unresolved> {
        if let Some(name) = uri.strip_prefix("env://") {
            return std::env::var(name).map_err(|_| {
                Unresolved::Secret(format!(
                    "secret `{uri}`: the environment variable `{name}` is not set"
                ))
            });
        }
        let Some((file, name)) = uri.strip_prefix("file://").and_then(|r| r.split_once('#')) else {
            return Err(Unresolved::Secret(format!(
                "secret `{uri}`: use env://NAME or file://STORE#NAME"
            )));
        };
        let Some(root) = &self.0.root else {
            return Err(Unresolved::Secret(format!(
                "secret `{uri}`: file:// secrets need a project"
            )));
        };
        let mut stores = self.0.stores.lock().unwrap_or_else(|e| e.into_inner());
        let store = match stores.get(file) {
            Some(s) => s.clone(),
            None => {
                let loaded = Arc::new(
                    store::load(root, file)
                        .map_err(|e| Unresolved::Secret(format!("secret `{uri}`: {e}")))?,
                );
                stores.insert(file.to_owned(), loaded.clone());
                loaded
            }
        };
        store.get(name).cloned().ok_or_else(|| {
            Unresolved::Secret(format!(
                "secret `{uri}`: `{file}` has no secret `{name}` (`froyo secret set {name}` adds it)"
            ))
        })
    }

    pub fn add(&self, value: &str) {
        // Very short values would mask ordinary text everywhere; they are still never
        // stored, because configs keep `$secret` references, not values.
        if value.len() >= 4
            && let Ok(mut set) = self.0.values.write()
        {
            set.insert(value.to_owned());
        }
    }

    /// `text` with every known secret value replaced by [`MASK`].
    pub fn mask(&self, text: &str) -> String {
        let Ok(set) = self.0.values.read() else {
            return text.to_owned();
        };
        // Longest first, so a secret containing another is masked whole.
        let mut values: Vec<&String> = set.iter().collect();
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for v in values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), MASK);
            }
        }
        out
    }
}

/// Resolves the markers of `config` for a provider call. `changed` answers whether a
/// resource (by id) changed in this run: `None` while it has not run yet.
pub fn resolve(
    config: &Json,
    masker: &Masker,
    changed: &dyn Fn(&str) -> Option<bool>,
) -> Result<Json, Unresolved> {
    Ok(match config {
        Json::Object(map) => {
            if let Some(s) = map.get("$secret")
                && map.len() == 1
            {
                let value = match s {
                    Json::String(uri) => masker.read(uri)?,
                    Json::Object(o) => parts(o.get("fmt"), masker, changed)?,
                    _ => return Err(Unresolved::Secret("malformed $secret".into())),
                };
                masker.add(&value);
                return Ok(Json::String(value));
            }
            if let Some(Json::Object(r)) = map.get("$ref")
                && map.len() == 1
            {
                if let Some(Json::String(desc)) = r.get("changed") {
                    return changed_ref(desc, changed).map(Json::Bool);
                }
                return parts(r.get("fmt"), masker, changed).map(Json::String);
            }
            if let Some(Json::Object(c)) = map.get("$content")
                && map.len() == 1
                && !c.contains_key("text")
                && let (Some(Json::String(src)), Some(vars)) = (c.get("template"), c.get("vars"))
            {
                let vars = resolve(vars, masker, changed)?;
                let path = c.get("path").and_then(Json::as_str).unwrap_or("template");
                let text = crate::eval::template::render(path, src, &vars)
                    .map_err(|e| Unresolved::Template(masker.mask(&format!("{e:#}"))))?;
                let mut c = c.clone();
                c.remove("template");
                c.remove("vars");
                c.insert(
                    "sha256".into(),
                    crate::util::sha256_hex(text.as_bytes()).into(),
                );
                c.insert("text".into(), text.into());
                c.insert("sensitive".into(), true.into());
                return Ok(serde_json::json!({ "$content": c }));
            }
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(k.clone(), resolve(v, masker, changed)?);
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(
            items
                .iter()
                .map(|v| resolve(v, masker, changed))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// Whether `config` holds a secret or sensitive content (then its diffs are hidden).
pub fn is_sensitive(config: &Json) -> bool {
    match config {
        Json::Object(map) => {
            map.contains_key("$secret")
                || map
                    .get("$content")
                    .and_then(|c| c.get("sensitive"))
                    .is_some_and(|s| s == &Json::Bool(true))
                || map.values().any(is_sensitive)
        }
        Json::Array(items) => items.iter().any(is_sensitive),
        _ => false,
    }
}

/// Whether `config` holds anything only the apply can resolve.
pub fn has_deferred(config: &Json) -> bool {
    match config {
        Json::Object(map) => map.contains_key("$ref") || map.values().any(has_deferred),
        Json::Array(items) => items.iter().any(has_deferred),
        _ => false,
    }
}

/// `changed(a, b)` / `a.changed`: true if any of the named resources changed. The
/// description names them by id; `changed` knows which ids exist on the host.
fn changed_ref(desc: &str, changed: &dyn Fn(&str) -> Option<bool>) -> Result<bool, Unresolved> {
    let ids: Vec<&str> = if let Some(inner) = desc
        .strip_prefix("changed(")
        .and_then(|d| d.strip_suffix(')'))
    {
        split_ids(inner)
    } else if let Some(id) = desc.strip_suffix(".changed") {
        vec![id]
    } else {
        return Err(Unresolved::Deferred(desc.to_owned()));
    };
    let mut any = false;
    for id in ids {
        match changed(id) {
            Some(c) => any |= c,
            None => return Err(Unresolved::Deferred(desc.to_owned())),
        }
    }
    Ok(any)
}

/// Ids joined by ", ": a comma only separates ids outside the brackets of a name.
fn split_ids(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in s.char_indices() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// The string of `fmt()` parts (`lit`, `secret`, `deferred`).
fn parts(
    parts: Option<&Json>,
    masker: &Masker,
    changed: &dyn Fn(&str) -> Option<bool>,
) -> Result<String, Unresolved> {
    let Some(Json::Array(parts)) = parts else {
        return Err(Unresolved::Secret("malformed fmt() value".into()));
    };
    let mut out = String::new();
    for p in parts {
        if let Some(Json::String(s)) = p.get("lit") {
            out.push_str(s);
        } else if let Some(Json::String(uri)) = p.get("secret") {
            out.push_str(&masker.read(uri)?);
        } else if let Some(Json::String(d)) = p.get("deferred") {
            // Starlark's spelling, as `str(True)` would give.
            out.push_str(if changed_ref(d, changed)? {
                "True"
            } else {
                "False"
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_refs_and_deferred_templates_resolve() {
        // SAFETY: set once before anything reads it; the variable is unique to this test.
        unsafe { std::env::set_var("FROYO_TEST_SECRET_A", "s3cr3t-value") };
        let m = Masker::default();
        let changed = |id: &str| match id {
            "linux.file::file[/a, b]" => Some(true),
            "linux.pkg::package[nginx]" => Some(false),
            _ => None,
        };
        let config = json!({
            "password": {"$secret": "env://FROYO_TEST_SECRET_A"},
            "dsn": {"$secret": {"fmt": [{"lit": "pg://u:"}, {"secret": "env://FROYO_TEST_SECRET_A"}, {"lit": "@db"}]}},
            "when": {"$ref": {"changed": "changed(linux.file::file[/a, b], linux.pkg::package[nginx])"}},
            "content": {"$content": {"source": "template", "path": "t.j2", "sha256": "x",
                "template": "pw={{ pw }}", "vars": {"pw": {"$secret": "env://FROYO_TEST_SECRET_A"}}}},
        });
        let r = resolve(&config, &m, &changed).unwrap();
        assert_eq!(r["password"], "s3cr3t-value");
        assert_eq!(r["dsn"], "pg://u:s3cr3t-value@db");
        assert_eq!(r["when"], true);
        assert_eq!(r["content"]["$content"]["text"], "pw=s3cr3t-value");
        assert_eq!(r["content"]["$content"]["sensitive"], true);
        assert_eq!(m.mask("error: pw=s3cr3t-value!"), "error: pw=<secret>!");
        assert!(has_deferred(&config));

        let pending = json!({"when": {"$ref": {"changed": "linux.x::y[z].changed"}}});
        assert_eq!(
            resolve(&pending, &m, &changed),
            Err(Unresolved::Deferred("linux.x::y[z].changed".into()))
        );
        let unset = json!({"p": {"$secret": "env://FROYO_TEST_SECRET_UNSET"}});
        assert!(matches!(
            resolve(&unset, &m, &changed),
            Err(Unresolved::Secret(_))
        ));
    }
}
