//! The CUE front end: `.cue` files (one, or a directory holding one CUE package) → the
//! same resources, edges and plays the Starlark front end records, so validation, policy,
//! plan, apply, drift, `graph` and the LSP need nothing of their own for it.
//!
//! CUE evaluates the files (`compile.rs`); the exported `workspace` is checked against the
//! providers' versions and each entry of `resources` becomes a resource through the same
//! `EvalContext` the Starlark built-ins use: entries without `target` form the default
//! play (`--on`), entries with one a play per distinct target. Positions come from
//! `scan.rs`, so every diagnostic points at the `file.cue:line:col` of its field. The
//! format is specified in `docs/cue.md`.

mod compile;
mod scan;

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use starlark::codemap::FileSpan;

pub use compile::{MODULE, Sources, import_path, is_cue_input, write_module};

use crate::diag::{Code, Diagnostic};
use crate::eval::{EvalContext, EvalRequest, Evaluated, NodeId, PlayInfo, RawEdge, RawResource};
use crate::graph::EdgeKind;
use crate::schema::{META_KEYWORDS, ResourceType};
use crate::selector::{Selector, Term};

/// The keys of a resource entry besides the meta keywords.
const ENTRY_KEYS: &[&str] = &[
    "type", "name", "config", "target", "require", "notify", "handler",
];
const TOP_KEYS: &[&str] = &["workspace", "resources"];
const WORKSPACE_KEYS: &[&str] = &["name", "version", "description", "providers"];

/// Evaluates `req.file` (a `.cue` file or a directory) as the Starlark front end would a
/// playbook. `source` replaces the file's text (an editor's unsaved buffer).
#[tracing::instrument(skip_all, fields(file = %req.file.display()))]
pub fn evaluate(req: &EvalRequest, source: Option<String>) -> Evaluated {
    let mut out = Evaluated::default();
    let sources = match Sources::read(req.project, req.file, req.more, source) {
        Ok(s) => s,
        Err(d) => {
            out.diagnostics.push(*d);
            return out;
        }
    };
    let value = match sources.evaluate(req.registry) {
        Ok(v) => v,
        Err(d) => {
            out.diagnostics = d;
            return out;
        }
    };
    let main = sources
        .files
        .first()
        .map(|f| f.display.clone())
        .unwrap_or_default();
    let ctx = EvalContext {
        state: RefCell::default(),
        registry: req.registry,
        project: req.project.clone(),
        inventory: req.inventory.clone(),
        files: RefCell::new(
            sources
                .files
                .iter()
                .map(|f| (f.display.clone(), f.real.clone()))
                .collect(),
        ),
        main_file: main,
        load_depth: Default::default(),
        facts: crate::eval::FactsHandle(req.facts.clone()),
    };
    let b = Builder {
        ctx: &ctx,
        sources: &sources,
    };
    out.plays = b.run(req, value);
    let st = ctx.state.into_inner();
    out.resources = st.nodes;
    out.edges = st.edges;
    out.diagnostics = st.diagnostics;
    out
}

/// `cue_values(path)`: the JSON of a `.cue` file or directory inside the project, or its
/// first CUE error (at its `.cue` line) as the built-in's error.
pub fn values(ctx: &EvalContext, call: &Option<FileSpan>, path: &str) -> anyhow::Result<Json> {
    use crate::eval::CodedError;
    let real = ctx
        .project
        .resolve_inside(&ctx.dir_of(call), path)
        .map_err(|e| CodedError::new(Code::Path, format!("cue_values(\"{path}\"): {e}")))?;
    if !is_cue_input(&real) {
        return Err(CodedError::new(
            Code::Arg,
            format!("cue_values(\"{path}\"): not a `.cue` file or a directory"),
        )
        .help("give a `.cue` file or a directory of `.cue` files")
        .into());
    }
    let to_err = |d: Diagnostic| -> anyhow::Error {
        let mut e = CodedError::new(d.code, format!("cue_values(\"{path}\"): {}", d.message))
            .help(d.help.clone());
        e.primary = d.primary.map(|l| Box::new((l.span, l.message)));
        e.into()
    };
    let sources = Sources::read(&ctx.project, &real, &[], None).map_err(|d| to_err(*d))?;
    match sources.evaluate(ctx.registry) {
        Ok(v) => Ok(v),
        Err(d) => Err(match d.into_iter().next() {
            Some(d) => to_err(d),
            None => CodedError::new(Code::Cue, format!("cue_values(\"{path}\") failed")).into(),
        }),
    }
}

/// One entry of `resources`, read and checked.
struct Entry {
    key: String,
    rtype: Arc<ResourceType>,
    name: String,
    config: Map<String, Json>,
    meta: Map<String, Json>,
    handler: bool,
    sensitive: bool,
    target: Option<Selector>,
    require: Vec<(String, Option<FileSpan>)>,
    /// (handler key, `change` or `failure`, where).
    notify: Vec<(String, String, Option<FileSpan>)>,
    span: Option<FileSpan>,
    fields: Vec<(String, FileSpan)>,
}

struct Builder<'a> {
    ctx: &'a EvalContext,
    sources: &'a Sources,
}

impl Builder<'_> {
    fn at(&self, path: &[&str]) -> Option<FileSpan> {
        let path: Vec<String> = path.iter().map(|s| (*s).to_owned()).collect();
        self.sources.locate(&path)
    }

    fn report(
        &self,
        code: Code,
        message: String,
        span: Option<FileSpan>,
        label: &str,
        help: String,
    ) {
        self.ctx.report(
            Diagnostic::new(code, message)
                .at_opt(span, label)
                .help(help),
        );
    }

    fn run(&self, req: &EvalRequest, value: Json) -> Vec<PlayInfo> {
        let Json::Object(top) = value else {
            self.report(
                Code::Cue,
                "the top level of a `.cue` input must be a struct".into(),
                self.at(&[]),
                "here",
                "write `workspace: {…}` and `resources: {…}` (docs/cue.md)".into(),
            );
            return Vec::new();
        };
        let mut resources = Map::new();
        for (k, v) in top {
            match k.as_str() {
                "workspace" => self.workspace(&v),
                "resources" => match v {
                    Json::Object(m) => resources = m,
                    _ => self.report(
                        Code::Arg,
                        "`resources` must be a struct of resources by key".into(),
                        self.at(&["resources"]),
                        "not a struct",
                        "`resources: { nginx: { type: \"linux.pkg::package\", … } }`".into(),
                    ),
                },
                _ => self.report(
                    Code::Arg,
                    format!("unknown top-level field `{k}`"),
                    self.at(&[&k]),
                    "not part of the format",
                    unknown_help(&k, TOP_KEYS, "helpers go in hidden fields (`_name`) or definitions (`#Name`), which are not exported"),
                ),
            }
        }
        let entries: Vec<Entry> = resources
            .iter()
            .filter_map(|(k, v)| self.entry(k, v))
            .collect();
        self.build(req, &entries)
    }

    fn workspace(&self, v: &Json) {
        let Json::Object(m) = v else {
            self.report(
                Code::Arg,
                "`workspace` must be a struct".into(),
                self.at(&["workspace"]),
                "not a struct",
                "`workspace: {name: \"web\", version: \"1.0.0\", providers: [...]}`".into(),
            );
            return;
        };
        for k in m.keys().filter(|k| !WORKSPACE_KEYS.contains(&k.as_str())) {
            self.report(
                Code::Arg,
                format!("unknown field `workspace.{k}`"),
                self.at(&["workspace", k]),
                "not part of the format",
                unknown_help(k, WORKSPACE_KEYS, "see docs/cue.md"),
            );
        }
        let Some(providers) = m.get("providers") else {
            return;
        };
        let Json::Array(list) = providers else {
            self.report(
                Code::Arg,
                "`workspace.providers` must be a list".into(),
                self.at(&["workspace", "providers"]),
                "not a list",
                "`providers: [{name: \"linux.pkg\", version: \">=1.0.0\"}]`".into(),
            );
            return;
        };
        let registry = self.ctx.registry;
        let mut known: Vec<(String, String)> = registry
            .types()
            .map(|t| (t.provider.clone(), t.provider_version.clone()))
            .collect();
        known.sort();
        known.dedup();
        for (i, p) in list.iter().enumerate() {
            let idx = i.to_string();
            let name = p.get("name").and_then(Json::as_str);
            let Some(name) = name else {
                self.report(
                    Code::Arg,
                    format!("`workspace.providers[{i}]` needs a `name`"),
                    self.at(&["workspace", "providers", &idx]),
                    "no name",
                    "`{name: \"linux.pkg\", version: \">=1.0.0\"}`".into(),
                );
                continue;
            };
            let Some((_, version)) = known.iter().find(|(n, _)| n == name) else {
                let names: Vec<&str> = known.iter().map(|(n, _)| n.as_str()).collect();
                self.report(
                    Code::ProviderVersion,
                    format!("no provider `{name}`"),
                    self.at(&["workspace", "providers", &idx, "name"]),
                    "unknown provider",
                    match crate::util::did_you_mean(name, names.iter().copied()) {
                        Some(s) => {
                            format!("did you mean `{s}`? the providers are {}", names.join(", "))
                        }
                        None => format!("the providers are {}", names.join(", ")),
                    },
                );
                continue;
            };
            let Some(constraint) = p.get("version") else {
                continue;
            };
            let span = self.at(&["workspace", "providers", &idx, "version"]);
            let Some(text) = constraint.as_str() else {
                self.report(
                    Code::ProviderVersion,
                    format!("the version constraint of `{name}` must be a string"),
                    span,
                    "not a string",
                    "such as \">=1.0.0\" or \"^1.2\"".into(),
                );
                continue;
            };
            let req = match parse_req(text) {
                Ok(r) => r,
                Err(e) => {
                    self.report(
                        Code::ProviderVersion,
                        format!("`{text}` is not a version constraint: {e}"),
                        span,
                        "not a constraint",
                        "semver constraints: \">=1.0.0\", \"^1.2\", \"~1.4.0\", \">=1, <2\"".into(),
                    );
                    continue;
                }
            };
            let satisfied = semver::Version::parse(version).is_ok_and(|v| req.matches(&v));
            if !satisfied {
                self.report(
                    Code::ProviderVersion,
                    format!("provider `{name}` is version {version}, which does not satisfy `{text}`"),
                    span,
                    format!("{name} is {version}").as_str(),
                    format!("this froyo has `{name}` {version}; change the constraint or add a matching provider in froyo.toml (docs/providers.md)"),
                );
            }
        }
    }

    /// Reads one entry of `resources`; `None` (with diagnostics) when it cannot be a resource.
    fn entry(&self, key: &str, v: &Json) -> Option<Entry> {
        let span = self.at(&["resources", key]);
        let field = |f: &str| self.at(&["resources", key, f]).or_else(|| span.clone());
        let Json::Object(m) = v else {
            self.report(
                Code::Arg,
                format!("resource `{key}` must be a struct"),
                span,
                "not a struct",
                "`{type: \"linux.pkg::package\", config: {…}}`".into(),
            );
            return None;
        };
        let mut ok = true;
        for k in m.keys() {
            if !ENTRY_KEYS.contains(&k.as_str()) && !META_KEYWORDS.contains(&k.as_str()) {
                let all: Vec<&str> = ENTRY_KEYS.iter().chain(META_KEYWORDS).copied().collect();
                self.report(
                    Code::Arg,
                    format!("resource `{key}` has an unknown field `{k}`"),
                    field(k),
                    "not part of the format",
                    unknown_help(k, &all, "the type's own fields go in `config`"),
                );
                ok = false;
            }
        }
        let Some(tname) = m.get("type").and_then(Json::as_str) else {
            self.report(
                Code::Arg,
                format!("resource `{key}` needs a `type` string"),
                field("type"),
                "no type",
                "such as `type: \"linux.pkg::package\"`; `froyo doc` lists every type".into(),
            );
            return None;
        };
        let Some(rtype) = self.ctx.registry.get(tname).cloned() else {
            let help = match self.ctx.registry.suggest(tname) {
                Some(s) => format!("did you mean `{s}`? `froyo doc` lists every type"),
                None => "`froyo doc` lists every resource type".to_owned(),
            };
            self.report(
                Code::UnknownType,
                format!("unknown resource type `{tname}`"),
                field("type"),
                "unknown type",
                help,
            );
            return None;
        };
        let mut config = match m.get("config") {
            None => Map::new(),
            Some(Json::Object(c)) => c.clone(),
            Some(_) => {
                self.report(
                    Code::Arg,
                    format!("the `config` of resource `{key}` must be a struct"),
                    field("config"),
                    "not a struct",
                    format!("`froyo doc {tname}` lists its fields"),
                );
                return None;
            }
        };
        let identity_alias = rtype
            .aliases
            .iter()
            .find(|(_, of)| **of == rtype.identity)
            .map(|(a, _)| a.clone());
        let from_config = |f: &str| config.get(f).and_then(Json::as_str).map(str::to_owned);
        let name = match m.get("name") {
            Some(Json::String(s)) => s.clone(),
            Some(_) => {
                self.report(
                    Code::Arg,
                    format!("the `name` of resource `{key}` must be a string"),
                    field("name"),
                    "not a string",
                    "the name is the resource's identity on its host".into(),
                );
                return None;
            }
            None => from_config(&rtype.identity)
                .or_else(|| identity_alias.as_deref().and_then(from_config))
                .unwrap_or_else(|| key.to_owned()),
        };
        if name.is_empty() {
            self.report(
                Code::Arg,
                format!("the name of resource `{key}` must not be empty"),
                field("name"),
                "empty",
                "leave `name` out to use the key".into(),
            );
            return None;
        }
        if !config.contains_key(&rtype.identity) {
            let v = identity_alias
                .as_deref()
                .and_then(|a| config.get(a).cloned())
                .unwrap_or_else(|| Json::String(name.clone()));
            config.insert(rtype.identity.clone(), v);
        }
        let mut sensitive = false;
        if let Err(path) = markers(&config, &mut sensitive, String::new()) {
            self.report(
                Code::Arg,
                format!("`{path}` of resource `{key}` is an object with a `$` key"),
                self.at(&["resources", key, "config"]).or_else(|| span.clone()),
                "reserved",
                "keys starting with `$` are froyo's own markers; the only one a `.cue` file may write is `{\"$secret\": \"env://NAME\"}`".into(),
            );
            ok = false;
        }
        let handler = match m.get("handler") {
            None => false,
            Some(Json::Bool(b)) => *b,
            Some(_) => {
                self.report(
                    Code::Arg,
                    format!("`handler` of resource `{key}` must be a bool"),
                    field("handler"),
                    "not a bool",
                    "`handler: true` makes it run only when notified".into(),
                );
                false
            }
        };
        let mut meta = Map::new();
        for k in META_KEYWORDS {
            let Some(v) = m.get(*k) else { continue };
            match meta_json(k, v) {
                Ok(j) => {
                    meta.insert((*k).to_owned(), j);
                }
                Err(expected) => {
                    self.report(
                        Code::Arg,
                        format!(
                            "meta keyword `{k}` of resource `{key}` expects {expected}, got `{v}`"
                        ),
                        field(k),
                        "bad value",
                        "the meta keywords are those of spec §3 (docs/cue.md)".into(),
                    );
                    ok = false;
                }
            }
        }
        sensitive |= meta.get("sensitive") == Some(&Json::Bool(true));
        let target = match m.get("target") {
            None => None,
            Some(t) => match target_of(t) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.report(
                        Code::Selector,
                        format!("the `target` of resource `{key}`: {e}"),
                        field("target"),
                        "bad target",
                        "`target: {labels: {role: \"web\"}}`, `target: {names: [\"web1\"]}` or `target: \"role=web,env!=dev\"`".into(),
                    );
                    return None;
                }
            },
        };
        let refs = |what: &str| -> Vec<(Json, Option<FileSpan>)> {
            match m.get(what) {
                None => Vec::new(),
                Some(Json::Array(a)) => a
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        let span = self
                            .at(&["resources", key, what, &i.to_string()])
                            .or_else(|| field(what));
                        (x.clone(), span)
                    })
                    .collect(),
                Some(x) => vec![(x.clone(), field(what))],
            }
        };
        let mut require = Vec::new();
        for (r, s) in refs("require") {
            match r {
                Json::String(k) => require.push((k, s)),
                other => {
                    self.report(
                        Code::Arg,
                        format!(
                            "`require` of resource `{key}` lists `{other}`, not a resource key"
                        ),
                        s,
                        "not a key",
                        "`require: [\"pkg\"]` names other entries of `resources` by key".into(),
                    );
                    ok = false;
                }
            }
        }
        let mut notify = Vec::new();
        for (r, s) in refs("notify") {
            let parsed = match &r {
                Json::String(k) => Some((k.clone(), "change".to_owned())),
                Json::Object(o) => match (
                    o.get("handler").and_then(Json::as_str),
                    o.get("on").and_then(Json::as_str).unwrap_or("change"),
                ) {
                    (Some(h), on @ ("change" | "failure"))
                        if o.keys().all(|k| k == "handler" || k == "on") =>
                    {
                        Some((h.to_owned(), on.to_owned()))
                    }
                    _ => None,
                },
                _ => None,
            };
            match parsed {
                Some((k, on)) => notify.push((k, on, s)),
                None => {
                    self.report(
                        Code::Arg,
                        format!("`notify` of resource `{key}` lists `{r}`"),
                        s,
                        "not a handler reference",
                        "`notify: [\"reload\"]`, or `notify: [{handler: \"page\", on: \"failure\"}]`".into(),
                    );
                    ok = false;
                }
            }
        }
        let fields = config
            .keys()
            .filter_map(|f| {
                self.at(&["resources", key, "config", f])
                    .map(|s| (f.clone(), s))
            })
            .collect();
        ok.then_some(Entry {
            key: key.to_owned(),
            rtype,
            name,
            config,
            meta,
            handler,
            sensitive,
            target,
            require,
            notify,
            span,
            fields,
        })
    }

    /// Declares the entries through the graph builder; returns the plays.
    fn build(&self, req: &EvalRequest, entries: &[Entry]) -> Vec<PlayInfo> {
        let ctx = self.ctx;
        let by_key: HashMap<&str, usize> = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key.as_str(), i))
            .collect();
        // References are checked once, whatever the hosts.
        let mut require: Vec<Vec<(usize, Option<FileSpan>)>> = Vec::new();
        let mut notify: Vec<Vec<(usize, String, Option<FileSpan>)>> = Vec::new();
        for e in entries {
            let mut r = Vec::new();
            for (k, s) in &e.require {
                if let Some(j) = self.reference(e, k, s, "require", &by_key) {
                    r.push((j, s.clone()));
                }
            }
            require.push(r);
            let mut n = Vec::new();
            for (k, on, s) in &e.notify {
                let Some(j) = self.reference(e, k, s, "notify", &by_key) else {
                    continue;
                };
                if !entries[j].handler {
                    let mut d = Diagnostic::new(
                        Code::NotHandler,
                        format!("`{k}` is not a handler, so it cannot be notified"),
                    )
                    .at_opt(s.clone(), "notified here")
                    .help("give it `handler: true`; a handler runs only when notified");
                    if let Some(def) = entries[j].span.clone() {
                        d = d.also(def, "declared here");
                    }
                    ctx.report(d);
                    continue;
                }
                n.push((j, on.clone(), s.clone()));
            }
            notify.push(n);
        }
        let default_hosts: Vec<String> = req
            .inventory
            .select(&req.on)
            .into_iter()
            .map(|t| t.name.clone())
            .collect();
        let mut plays = Vec::new();
        let mut node_of: HashMap<(usize, String), NodeId> = HashMap::new();
        let mut template_of: HashMap<NodeId, usize> = HashMap::new();
        let mut template_node: HashMap<usize, NodeId> = HashMap::new();
        // The default play: entries without a target, copied onto each `--on` host.
        let templates: Vec<usize> = (0..entries.len())
            .filter(|&i| entries[i].target.is_none())
            .collect();
        for &i in &templates {
            if let Some(n) = self.declare(&entries[i], None, "") {
                template_of.insert(n, i);
                template_node.insert(i, n);
            }
        }
        for &i in &templates {
            let Some(&to) = template_node.get(&i) else {
                continue;
            };
            for (j, s) in &require[i] {
                if let Some(&from) = template_node.get(j) {
                    self.edge(from, to, EdgeKind::Explicit, s, String::new());
                }
            }
            for (j, on, s) in &notify[i] {
                if let Some(&h) = template_node.get(j) {
                    self.edge(to, h, EdgeKind::Notify, s, format!("on={on}"));
                }
            }
        }
        if !templates.is_empty() {
            if default_hosts.is_empty() {
                ctx.report(Diagnostic::new(
                    Code::NoHosts,
                    format!(
                        "`--on {}` selects no target; resources without `target` apply nowhere",
                        req.on
                    ),
                ));
            }
            ctx.instantiate_default_play(&default_hosts);
            plays.push(PlayInfo {
                name: "default".into(),
                hosts: default_hosts.clone(),
                selector: req.on.to_string(),
                serial: None,
                max_fail: Json::from(0),
                r#become: None,
                tags: Vec::new(),
            });
            let st = ctx.state.borrow();
            for (id, n) in st.nodes.iter().enumerate() {
                if let (Some(t), Some(h)) = (n.template, &n.host)
                    && let Some(&e) = template_of.get(&t)
                {
                    node_of.insert((e, h.clone()), id as NodeId);
                }
            }
        }
        // One play per distinct target, in the order the targets first appear.
        let mut groups: Vec<(String, Selector, Vec<usize>)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let Some(sel) = &e.target else { continue };
            let text = sel.to_string();
            match groups.iter_mut().find(|g| g.0 == text) {
                Some(g) => g.2.push(i),
                None => groups.push((text, sel.clone(), vec![i])),
            }
        }
        let mut hosts_of: Vec<Vec<String>> = vec![Vec::new(); entries.len()];
        for &i in &templates {
            hosts_of[i] = default_hosts.clone();
        }
        for (text, sel, members) in &groups {
            let hosts: Vec<String> = req
                .inventory
                .select(sel)
                .into_iter()
                .map(|t| t.name.clone())
                .collect();
            if hosts.is_empty() {
                let first = &entries[members[0]];
                ctx.report(
                    Diagnostic::new(
                        Code::NoHosts,
                        format!("target `{text}` selects no target in the inventory"),
                    )
                    .at_opt(
                        self.at(&["resources", &first.key, "target"])
                            .or_else(|| first.span.clone()),
                        "this target",
                    ),
                );
                // Still validated, though on no host (so not in the graph).
                for &i in members {
                    let raw = self.raw(&entries[i], None, text);
                    ctx.state.borrow_mut().nodes.push(raw);
                }
            }
            plays.push(PlayInfo {
                name: text.clone(),
                hosts: hosts.clone(),
                selector: text.clone(),
                serial: None,
                max_fail: Json::from(0),
                r#become: None,
                tags: Vec::new(),
            });
            for h in &hosts {
                {
                    let mut st = ctx.state.borrow_mut();
                    st.current_host = Some(h.clone());
                    st.current_play = text.clone();
                }
                for &i in members {
                    if let Some(n) = self.declare(&entries[i], Some(h), text) {
                        node_of.insert((i, h.clone()), n);
                    }
                    hosts_of[i].push(h.clone());
                }
            }
        }
        {
            let mut st = ctx.state.borrow_mut();
            st.current_host = None;
            st.current_play = String::new();
        }
        // Edges that involve a targeted entry, host by host.
        for (i, e) in entries.iter().enumerate() {
            let mut reported = Vec::new();
            let mut find = |j: usize, h: &String, s: &Option<FileSpan>| -> Option<NodeId> {
                let n = node_of.get(&(j, h.clone())).copied();
                if n.is_none() && !reported.contains(&j) && node_of.contains_key(&(i, h.clone())) {
                    reported.push(j);
                    ctx.report(
                        Diagnostic::new(
                            Code::Arg,
                            format!("`{}` is not applied to host `{h}`, where `{}` is", entries[j].key, e.key),
                        )
                        .at_opt(s.clone(), "refers to it here")
                        .help("edges only connect resources of the same host: give both the same `target`"),
                    );
                }
                n
            };
            for h in &hosts_of[i] {
                let Some(&to) = node_of.get(&(i, h.clone())) else {
                    continue;
                };
                for (j, s) in &require[i] {
                    if e.target.is_none() && entries[*j].target.is_none() {
                        continue;
                    }
                    if let Some(from) = find(*j, h, s) {
                        self.edge(from, to, EdgeKind::Explicit, s, String::new());
                    }
                }
                for (j, on, s) in &notify[i] {
                    if e.target.is_none() && entries[*j].target.is_none() {
                        continue;
                    }
                    if let Some(hn) = find(*j, h, s) {
                        self.edge(to, hn, EdgeKind::Notify, s, format!("on={on}"));
                    }
                }
            }
        }
        plays
    }

    /// The entry `key` refers to, or a diagnostic.
    fn reference(
        &self,
        e: &Entry,
        key: &str,
        span: &Option<FileSpan>,
        what: &str,
        by_key: &HashMap<&str, usize>,
    ) -> Option<usize> {
        if let Some(&j) = by_key.get(key) {
            return Some(j);
        }
        let help = match crate::util::did_you_mean(key, by_key.keys().copied()) {
            Some(s) => {
                format!("did you mean `{s}`? `{what}` names other entries of `resources` by key")
            }
            None => format!("`{what}` names other entries of `resources` by key"),
        };
        self.ctx.report(
            Diagnostic::new(
                Code::Arg,
                format!(
                    "resource `{}` refers to `{key}`, which is not a resource",
                    e.key
                ),
            )
            .at_opt(span.clone(), "unknown key")
            .help(help),
        );
        None
    }

    fn edge(
        &self,
        from: NodeId,
        to: NodeId,
        kind: EdgeKind,
        span: &Option<FileSpan>,
        detail: String,
    ) {
        self.ctx.add_edge(RawEdge {
            from,
            to,
            kind,
            span: span.clone(),
            detail,
        });
    }

    /// The resource of `e` on `host` (`None`: the default play's template).
    fn raw(&self, e: &Entry, host: Option<&String>, play: &str) -> RawResource {
        RawResource {
            rtype: e.rtype.clone(),
            name: e.name.clone(),
            config: e.config.clone(),
            meta: e.meta.clone(),
            host: host.cloned(),
            play: play.to_owned(),
            handler: e.handler,
            sensitive: e.sensitive,
            span: e.span.clone(),
            notes: Vec::new(),
            fields: e.fields.clone(),
            template: None,
        }
    }

    /// Adds the node of `e` on `host` (`None`: the default play's template).
    fn declare(&self, e: &Entry, host: Option<&String>, play: &str) -> Option<NodeId> {
        match self.ctx.add_node(self.raw(e, host, play)) {
            Ok(n) => Some(n),
            Err(existing) => {
                let st = self.ctx.state.borrow();
                let first = st.nodes[existing as usize].span.clone();
                let on = host.map(|h| format!(" on host `{h}`")).unwrap_or_default();
                let id = format!("{}[{}]", e.rtype.name, e.name);
                let mut d = Diagnostic::new(Code::DupId, format!("`{id}` is declared twice{on}"))
                    .at_opt(e.span.clone(), "declared again here")
                    .help("two entries with the same type and name are one resource twice: merge them, or give one another `name`");
                if let Some(first) = first {
                    d = d.also(first, "first declared here");
                }
                drop(st);
                self.ctx.report(d);
                None
            }
        }
    }
}

fn unknown_help(k: &str, known: &[&str], rest: &str) -> String {
    match crate::util::did_you_mean(k, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`? {rest}"),
        None => format!("the fields are {}; {rest}", known.join(", ")),
    }
}

/// Semver constraints as Cargo writes them, or npm's space-separated form.
fn parse_req(text: &str) -> Result<semver::VersionReq, semver::Error> {
    semver::VersionReq::parse(text).or_else(|e| {
        let joined = text.split_whitespace().collect::<Vec<_>>().join(", ");
        semver::VersionReq::parse(&joined).map_err(|_| e)
    })
}

/// Objects with a `$` key: only `{"$secret": URI}` is allowed (and makes the resource
/// sensitive). `Err` holds the path of the first other one.
fn markers(m: &Map<String, Json>, sensitive: &mut bool, at: String) -> Result<(), String> {
    for (k, v) in m {
        let path = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        check_marker(v, sensitive, path)?;
    }
    Ok(())
}

fn check_marker(v: &Json, sensitive: &mut bool, path: String) -> Result<(), String> {
    match v {
        Json::Object(o) if o.keys().any(|k| k.starts_with('$')) => {
            let uri = o.get("$secret").and_then(Json::as_str);
            if o.len() == 1
                && uri.is_some_and(|u| u.starts_with("env://") || u.starts_with("file://"))
            {
                *sensitive = true;
                Ok(())
            } else {
                Err(path)
            }
        }
        Json::Object(o) => markers(o, sensitive, path),
        Json::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                check_marker(x, sensitive, format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A meta keyword's value as the graph records it (the JSON the Starlark built-ins make),
/// or what was expected.
fn meta_json(key: &str, v: &Json) -> Result<Json, &'static str> {
    match key {
        "when" => v.as_bool().map(Json::Bool).ok_or(
            "a bool (a condition known only at apply time, `changed(...)`, needs a Starlark playbook)",
        ),
        "tags" => match v.as_array() {
            Some(a) if a.iter().all(Json::is_string) => Ok(v.clone()),
            _ => Err("a list of strings"),
        },
        "become" => match v {
            Json::Bool(_) => Ok(v.clone()),
            Json::String(s) if !s.is_empty() => Ok(v.clone()),
            _ => Err("a bool or a user name"),
        },
        "sensitive" => v.as_bool().map(Json::Bool).ok_or("a bool"),
        "retry" => {
            let policy = |times: u64, delay: &str, backoff: f64| {
                serde_json::json!({"times": times, "delay": delay, "backoff": backoff})
            };
            match v {
                Json::Number(n) => n.as_u64().map(|t| policy(t, "2s", 1.0)).ok_or("a number of retries"),
                Json::Object(o) if o.keys().all(|k| ["times", "delay", "backoff"].contains(&k.as_str())) => {
                    let times = o.get("times").and_then(Json::as_u64);
                    let delay = o.get("delay").map_or(Some("2s"), Json::as_str);
                    let backoff = o.get("backoff").map_or(Some(1.0), Json::as_f64);
                    match (times, delay, backoff) {
                        (Some(t), Some(d), Some(b))
                            if crate::util::parse_duration_ms(d).is_some() && b >= 1.0 =>
                        {
                            Ok(policy(t, d, b))
                        }
                        _ => Err("`{times: N, delay: \"2s\", backoff: 2.0}` (delay and backoff optional, backoff ≥ 1)"),
                    }
                }
                _ => Err("a number of retries or `{times: N, delay: \"2s\", backoff: 2.0}`"),
            }
        }
        "timeout" => match v.as_str() {
            Some(s) if crate::util::parse_duration_ms(s).is_some_and(|ms| ms > 0) => Ok(v.clone()),
            _ => Err("a duration such as \"30s\", \"500ms\", \"5m\""),
        },
        "desc" => v.as_str().map(|_| v.clone()).ok_or("a string"),
        _ => Err("a known meta keyword"),
    }
}

/// `target`: `{labels: {k: v | [v…]}, names: [n…], selector: "…"}` (all given must match)
/// or a selector string.
fn target_of(t: &Json) -> Result<Selector, String> {
    match t {
        Json::String(s) => Selector::parse(s),
        Json::Object(o) => {
            let mut sel = Selector::default();
            for (k, v) in o {
                let part = match (k.as_str(), v) {
                    ("labels", Json::Object(l)) => {
                        let mut labels = Vec::new();
                        for (lk, lv) in l {
                            let values = match lv {
                                Json::String(s) => vec![s.clone()],
                                Json::Array(a) if a.iter().all(Json::is_string) => a
                                    .iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect(),
                                _ => {
                                    return Err(format!(
                                        "label `{lk}` must be a string or a list of strings"
                                    ));
                                }
                            };
                            labels.push((lk.clone(), values));
                        }
                        Selector::from_labels(labels)
                    }
                    ("names", Json::Array(a)) if !a.is_empty() && a.iter().all(Json::is_string) => {
                        let names: Vec<String> = a
                            .iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect();
                        Selector {
                            terms: vec![if names.len() == 1 {
                                Term::Eq("name".into(), names[0].clone())
                            } else {
                                Term::In("name".into(), names)
                            }],
                        }
                    }
                    ("selector", Json::String(s)) => Selector::parse(s)?,
                    ("labels" | "names" | "selector", _) => {
                        return Err(format!("`{k}` has the wrong shape"));
                    }
                    _ => {
                        return Err(format!(
                            "unknown field `{k}` (use `labels`, `names` or `selector`)"
                        ));
                    }
                };
                sel = sel.and(part);
            }
            if sel.terms.is_empty() {
                return Err(
                    "it selects nothing in particular: give `labels`, `names` or `selector`".into(),
                );
            }
            Ok(sel)
        }
        _ => Err("it must be a struct or a selector string".into()),
    }
}
