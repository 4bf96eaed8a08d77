//! The Starlark values of spec §3: `Handle`, `Ref`, `Secret`, `Content`, `Target`,
//! `Selector`, `RetryPolicy` and the lazy `facts` tree.
//!
//! All are simple values (no Starlark values inside), so they survive freezing and loads;
//! the graph itself lives in Rust (`GraphBuilder`), a handle only names a node.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use serde_json::Value as Json;
use starlark::codemap::FileSpan;
use starlark::starlark_simple_value;
use starlark::values::{
    Heap, NoSerialize, ProvidesStaticType, StarlarkValue, Value, ValueLike, starlark_value,
};

use super::errors::CodedError;
use crate::diag::Code;

/// A node of the graph being built, by index into the builder's node list.
pub type NodeId = u32;

/// A piece of a string that may hold secrets or values known only at apply time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Lit(String),
    Secret(String),
    Deferred(String),
}

impl Part {
    pub fn to_json(&self) -> Json {
        match self {
            Part::Lit(s) => serde_json::json!({"lit": s}),
            Part::Secret(uri) => serde_json::json!({"secret": uri}),
            Part::Deferred(d) => serde_json::json!({"deferred": d}),
        }
    }
}

thread_local! {
    /// Refs whose truth value was asked for (`if ref:`): `to_bool` cannot fail, so the
    /// evaluation records them here and reports `E-DEFERRED` once it ends.
    static TRUTH_TESTED: RefCell<Vec<(String, Option<FileSpan>)>> = const { RefCell::new(Vec::new()) };
    /// Why the last `facts` attribute lookup failed (`get_attr` cannot return an error).
    static FACT_ERROR: RefCell<Option<(Code, String, String)>> = const { RefCell::new(None) };
}

pub fn take_truth_tested() -> Vec<(String, Option<FileSpan>)> {
    TRUTH_TESTED.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

pub fn take_fact_error() -> Option<(Code, String, String)> {
    FACT_ERROR.with(|f| f.borrow_mut().take())
}

fn deferred_error(what: &str) -> starlark::Error {
    starlark::Error::new_value(CodedError::new(
        Code::Deferred,
        format!("{what} is only known at apply time"),
    ))
}

fn secret_str_error() -> starlark::Error {
    starlark::Error::new_value(CodedError::new(
        Code::SecretStr,
        "a secret cannot be concatenated into a plain string",
    ))
}

// ---------------------------------------------------------------------------------------

/// What `resource()` and `handler()` return.
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct Handle {
    /// `None` when the declaration was rejected (its diagnostic is already recorded).
    pub node: Option<NodeId>,
    pub id: String,
    pub rtype: String,
    pub name: String,
    /// The value this handle becomes inside another resource's config (path, name, dest).
    pub natural: String,
    #[allocative(skip)]
    pub config: Arc<Json>,
    pub defined_at: String,
    #[allocative(skip)]
    pub span: Option<FileSpan>,
    pub handler: bool,
}
starlark_simple_value!(Handle);

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[starlark_value(type = "handle")]
impl<'v> StarlarkValue<'v> for Handle {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(match attribute {
            "id" => heap.alloc(self.id.as_str()),
            "type" => heap.alloc(self.rtype.as_str()),
            "name" => heap.alloc(self.name.as_str()),
            "config" => heap.alloc(&*self.config),
            "defined_at" => heap.alloc(self.defined_at.as_str()),
            "changed" => heap.alloc(Ref {
                kind: RefKind::Changed(self.node.into_iter().collect()),
                desc: format!("{}.changed", self.id),
                origin: self.span.clone(),
            }),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["changed", "config", "defined_at", "id", "name", "type"]
            .map(String::from)
            .to_vec()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<Handle>()
            .is_some_and(|o| o.node.is_some() && o.node == self.node && o.id == self.id))
    }
}

// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub enum RefKind {
    /// `changed(a, b)` / `a.changed`: true if any of these changed in this run.
    Changed(Vec<NodeId>),
    /// `fmt()` over a deferred value.
    Fmt(Vec<Part>),
}

/// A value known only at apply time.
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct Ref {
    #[allocative(skip)]
    pub kind: RefKind,
    pub desc: String,
    #[allocative(skip)]
    pub origin: Option<FileSpan>,
}
starlark_simple_value!(Ref);

impl Ref {
    /// Nodes this ref depends on (edges to add where it is used).
    pub fn deps(&self) -> Vec<NodeId> {
        match &self.kind {
            RefKind::Changed(n) => n.clone(),
            RefKind::Fmt(_) => Vec::new(),
        }
    }

    pub fn to_json(&self) -> Json {
        match &self.kind {
            RefKind::Changed(_) => serde_json::json!({"$ref": {"changed": self.desc}}),
            RefKind::Fmt(parts) => {
                serde_json::json!({"$ref": {"fmt": parts.iter().map(Part::to_json).collect::<Vec<_>>()}})
            }
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<deferred {}>", self.desc)
    }
}

#[starlark_value(type = "ref")]
impl<'v> StarlarkValue<'v> for Ref {
    fn to_bool(&self) -> bool {
        TRUTH_TESTED.with(|t| {
            t.borrow_mut()
                .push((self.desc.clone(), self.origin.clone()))
        });
        false
    }

    fn equals(&self, _other: Value<'v>) -> starlark::Result<bool> {
        Err(deferred_error(&format!("`{}`", self.desc)))
    }

    fn add(&self, _rhs: Value<'v>, _heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(Err(deferred_error(&format!("`{}`", self.desc))))
    }

    fn radd(&self, _lhs: Value<'v>, _heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(Err(deferred_error(&format!("`{}`", self.desc))))
    }

    fn percent(&self, _other: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Err(deferred_error(&format!("`{}`", self.desc)))
    }
}

// ---------------------------------------------------------------------------------------

/// A secret reference (or a `fmt()` result that contains one). Never holds the value.
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct Secret {
    #[allocative(skip)]
    pub parts: Vec<Part>,
}
starlark_simple_value!(Secret);

impl Secret {
    pub fn uri(&self) -> String {
        match self.parts.as_slice() {
            [Part::Secret(uri)] => uri.clone(),
            parts => {
                let uris: Vec<&str> = parts
                    .iter()
                    .filter_map(|p| {
                        if let Part::Secret(u) = p {
                            Some(u.as_str())
                        } else {
                            None
                        }
                    })
                    .collect();
                format!("fmt({})", uris.join(", "))
            }
        }
    }

    pub fn to_json(&self) -> Json {
        match self.parts.as_slice() {
            [Part::Secret(uri)] => serde_json::json!({"$secret": uri}),
            parts => {
                serde_json::json!({"$secret": {"fmt": parts.iter().map(Part::to_json).collect::<Vec<_>>()}})
            }
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret {}>", self.uri())
    }
}

#[starlark_value(type = "secret")]
impl<'v> StarlarkValue<'v> for Secret {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        (attribute == "uri").then(|| heap.alloc(self.uri()))
    }

    fn dir_attr(&self) -> Vec<String> {
        vec!["uri".into()]
    }

    fn add(&self, _rhs: Value<'v>, _heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(Err(secret_str_error()))
    }

    fn radd(&self, _lhs: Value<'v>, _heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(Err(secret_str_error()))
    }

    fn percent(&self, _other: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Err(secret_str_error())
    }
}

// ---------------------------------------------------------------------------------------

/// File content from `template()` or `asset()`.
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct Content {
    /// `template` or `asset`.
    pub source: &'static str,
    /// Project-relative path of the template or asset.
    pub path: String,
    /// sha256 of the rendered text, or of the template source when rendering is deferred.
    pub sha256: String,
    /// The rendered text; `None` when it can only be rendered at apply time (secrets or
    /// deferred values in `vars`).
    pub text: Option<String>,
    /// For deferred templates: the template source and its vars (with `$secret`/`$ref` markers).
    #[allocative(skip)]
    pub deferred: Option<(Arc<str>, Json)>,
    pub sensitive: bool,
    pub deps: Vec<NodeId>,
}
starlark_simple_value!(Content);

impl Content {
    pub fn to_json(&self) -> Json {
        let mut m = serde_json::Map::new();
        m.insert("source".into(), self.source.into());
        m.insert("path".into(), self.path.clone().into());
        m.insert("sha256".into(), self.sha256.clone().into());
        if self.sensitive {
            // Providers keep sensitive content out of diffs and actual states.
            m.insert("sensitive".into(), true.into());
        }
        match (&self.text, &self.deferred) {
            (Some(t), _) => {
                m.insert("text".into(), t.clone().into());
            }
            (None, Some((src, vars))) => {
                m.insert("template".into(), src.to_string().into());
                m.insert("vars".into(), vars.clone());
            }
            (None, None) => {}
        }
        serde_json::json!({ "$content": m })
    }
}

impl fmt::Display for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<content {} {} sha256:{}>",
            self.source,
            self.path,
            &self.sha256[..12.min(self.sha256.len())]
        )
    }
}

#[starlark_value(type = "content")]
impl<'v> StarlarkValue<'v> for Content {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "sha256" => Some(heap.alloc(self.sha256.as_str())),
            "path" => Some(heap.alloc(self.path.as_str())),
            "text" if !self.sensitive => self.text.as_deref().map(|t| heap.alloc(t)),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        ["path", "sha256", "text"].map(String::from).to_vec()
    }
}

// ---------------------------------------------------------------------------------------

/// A target as seen by playbooks (`host` in `def main(host)`, `targets()`).
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct Target {
    pub name: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
    #[allocative(skip)]
    pub vars: Arc<Json>,
    #[allocative(skip)]
    pub facts: FactsHandle,
}
starlark_simple_value!(Target);

/// Where a target's facts come from during this evaluation (none for `froyo check`).
#[derive(Clone, Default)]
pub struct FactsHandle(pub Option<Arc<dyn crate::facts::FactSource>>);

impl fmt::Debug for FactsHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "FactsHandle(live)"
        } else {
            "FactsHandle(offline)"
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<target {}>", self.name)
    }
}

#[starlark_value(type = "target")]
impl<'v> StarlarkValue<'v> for Target {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(match attribute {
            "name" => heap.alloc(self.name.as_str()),
            "address" => heap.alloc(self.address.as_str()),
            "labels" => heap.alloc(serde_json::to_value(&self.labels).unwrap_or_default()),
            "vars" => heap.alloc(&*self.vars),
            "facts" => heap.alloc(Facts {
                host: self.name.clone(),
                path: Vec::new(),
                source: self.facts.clone(),
            }),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["address", "facts", "labels", "name", "vars"]
            .map(String::from)
            .to_vec()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other
            .downcast_ref::<Target>()
            .is_some_and(|o| o.name == self.name))
    }
}

/// The fact tree of spec §6. Leaves need a live target session, which `check` never opens.
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct Facts {
    pub host: String,
    pub path: Vec<&'static str>,
    #[allocative(skip)]
    pub source: FactsHandle,
}
starlark_simple_value!(Facts);

/// The known fact namespaces and their facts.
pub const FACT_TREE: &[(&str, &[&str])] = &[
    ("os", &["basic"]),
    ("hw", &["cpu"]),
    ("net", &["ifaces"]),
    ("pkg", &["manifest"]),
];

impl Facts {
    fn children(&self) -> Vec<&'static str> {
        match self.path.as_slice() {
            [] => FACT_TREE.iter().map(|(ns, _)| *ns).collect(),
            [ns] => FACT_TREE
                .iter()
                .find(|(n, _)| n == ns)
                .map(|(_, f)| f.to_vec())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl fmt::Display for Facts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<facts of {}{}{}>",
            self.host,
            if self.path.is_empty() { "" } else { ": " },
            self.path.join(".")
        )
    }
}

#[starlark_value(type = "facts")]
impl<'v> StarlarkValue<'v> for Facts {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let children = self.children();
        let here = if self.path.is_empty() {
            "host.facts".to_owned()
        } else {
            format!("host.facts.{}", self.path.join("."))
        };
        match children.iter().find(|c| **c == attribute) {
            Some(child) if self.path.is_empty() => Some(heap.alloc(Facts {
                host: self.host.clone(),
                path: vec![child],
                source: self.source.clone(),
            })),
            Some(child) => {
                let fact = format!("{}.{child}", self.path.join("."));
                if let Some(source) = &self.source.0 {
                    return match source.fact(&self.host, &fact) {
                        Ok(v) => Some(fact_value(heap, &v, fact == "pkg.manifest")),
                        Err(e) => {
                            FACT_ERROR.with(|f| {
                                *f.borrow_mut() = Some((
                                    Code::Target,
                                    format!("cannot gather fact `{fact}` of `{}`: {}", self.host, e.message),
                                    e.help.clone().unwrap_or_else(|| format!("check that the target is reachable: `froyo facts --on {}`", self.host)),
                                ))
                            });
                            None
                        }
                    };
                }
                FACT_ERROR.with(|f| {
                    *f.borrow_mut() = Some((
                        Code::FactUnavailable,
                        format!("fact `{fact}` of `{}` needs a target session", self.host),
                        "facts are gathered from the live target by `froyo plan`/`apply`; `froyo check` evaluates offline, so guard fact-dependent code or run `froyo plan`".to_owned(),
                    ))
                });
                None
            }
            None => {
                let hint = match crate::util::did_you_mean(attribute, children.iter().copied()) {
                    Some(s) => format!(
                        "did you mean `{here}.{s}`? known here: {}",
                        children.join(", ")
                    ),
                    None => format!("known here: {}", children.join(", ")),
                };
                FACT_ERROR.with(|f| {
                    *f.borrow_mut() = Some((
                        Code::FactUnknown,
                        format!("`{here}` has no fact `{attribute}`"),
                        hint,
                    ))
                });
                None
            }
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        self.children().into_iter().map(String::from).collect()
    }
}

/// A fact as Starlark: objects become structs (`host.facts.os.basic.distro`), except the
/// package manifest, a dict keyed by package name (`"nginx" in ...manifest`).
pub(super) fn fact_value<'v>(heap: Heap<'v>, v: &Json, top_is_dict: bool) -> Value<'v> {
    use starlark::values::dict::AllocDict;
    use starlark::values::structs::AllocStruct;
    match v {
        Json::Object(m) if top_is_dict => heap.alloc(AllocDict(
            m.iter()
                .map(|(k, x)| (k.as_str(), fact_value(heap, x, false))),
        )),
        Json::Object(m) => heap.alloc(AllocStruct(
            m.iter()
                .map(|(k, x)| (k.as_str(), fact_value(heap, x, false))),
        )),
        Json::Array(a) => heap.alloc(
            a.iter()
                .map(|x| fact_value(heap, x, false))
                .collect::<Vec<_>>(),
        ),
        other => heap.alloc(other),
    }
}

// ---------------------------------------------------------------------------------------

/// A parsed target selector (`select()`).
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct SelectorValue {
    #[allocative(skip)]
    pub selector: crate::selector::Selector,
}
starlark_simple_value!(SelectorValue);

impl fmt::Display for SelectorValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "select({:?})", self.selector.to_string())
    }
}

#[starlark_value(type = "selector")]
impl<'v> StarlarkValue<'v> for SelectorValue {}

/// `retry(times, delay=, backoff=)`.
#[derive(Debug, Clone, ProvidesStaticType, Allocative, NoSerialize)]
pub struct RetryPolicy {
    pub times: u32,
    pub delay: String,
    pub backoff: f64,
}
starlark_simple_value!(RetryPolicy);

impl RetryPolicy {
    pub fn to_json(&self) -> Json {
        serde_json::json!({"times": self.times, "delay": self.delay, "backoff": self.backoff})
    }
}

impl fmt::Display for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "retry({}, delay = {:?}, backoff = {})",
            self.times, self.delay, self.backoff
        )
    }
}

#[starlark_value(type = "retry_policy")]
impl<'v> StarlarkValue<'v> for RetryPolicy {}
