//! The core built-ins of spec §3, available in every playbook without `load()`.
//!
//! Each records into the [`EvalContext`] reached through `Evaluator::extra`. Mistakes a
//! user can make many times in one file (unknown type, duplicate identity, notifying a
//! non-handler) are recorded as diagnostics and evaluation goes on, so one run reports
//! them all; anything else fails the evaluation at the call site.

// `play()` mirrors the spec's signature, which has more parameters than clippy likes.
#![allow(clippy::too_many_arguments)]

use std::sync::Arc;

use serde_json::{Map, Value as Json};
use starlark::collections::SmallMap;
use starlark::environment::GlobalsBuilder;
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::NoneType;
use starlark::values::tuple::UnpackTuple;
use starlark::values::{UnpackValue, Value, ValueLike};

use super::builder::{EvalContext, PlayDecl, RawEdge, RawResource};
use super::convert::{Collected, check_plain_string, to_json};
use super::errors::{CodedError, fail};
use super::format::{Formatted, format};
use super::template;
use super::values::{
    Content, FactsHandle, Handle, NodeId, Ref, RefKind, RetryPolicy, Secret, SelectorValue, Target,
};
use crate::diag::{Code, Diagnostic, span_location};
use crate::graph::EdgeKind;
use crate::schema::META_KEYWORDS;
use crate::selector::Selector;
use crate::util::parse_duration_ms;

/// Target value for a resolved inventory target.
pub fn target_value(t: &crate::inventory::Target, facts: &FactsHandle) -> Target {
    Target {
        name: t.name.clone(),
        address: t.address.clone(),
        labels: t.labels.clone(),
        vars: Arc::new(Json::Object(t.vars.clone())),
        facts: facts.clone(),
    }
}

/// Handles in `v` (a handle or a list/tuple of them).
fn handles<'v>(v: Value<'v>, what: &str) -> anyhow::Result<Vec<Handle>> {
    if let Some(h) = v.downcast_ref::<Handle>() {
        return Ok(vec![h.clone()]);
    }
    match UnpackListOrTuple::<Value>::unpack_value_opt(v) {
        Some(list) => list
            .items
            .into_iter()
            .map(|x| handles(x, what))
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|v| v.concat()),
        None => fail(
            Code::Arg,
            format!(
                "{what} must be a handle or a list of handles, got `{}`",
                v.get_type()
            ),
        ),
    }
}

fn meta_value(
    ctx: &EvalContext,
    key: &str,
    v: Value,
    deps: &mut Vec<NodeId>,
) -> anyhow::Result<Json> {
    let bad = |expected: &str| -> anyhow::Result<Json> {
        fail(
            Code::Arg,
            format!(
                "meta keyword `{key}` expects {expected}, got `{}`",
                v.to_repr()
            ),
        )
    };
    match key {
        "when" => {
            if let Some(b) = v.unpack_bool() {
                return Ok(Json::Bool(b));
            }
            match v.downcast_ref::<Ref>() {
                Some(r) => {
                    for d in r.deps() {
                        deps.push(ctx.resolve(d, &r.desc)?);
                    }
                    Ok(r.to_json())
                }
                None => bad("a bool or a deferred bool such as `changed(h)`"),
            }
        }
        "tags" => match UnpackListOrTuple::<&str>::unpack_value_opt(v) {
            Some(l) => Ok(Json::from(
                l.items.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )),
            None => bad("a list of strings"),
        },
        "become" => match (v.unpack_bool(), v.unpack_str()) {
            (Some(b), _) => Ok(Json::Bool(b)),
            (_, Some(u)) if !u.is_empty() => Ok(Json::String(u.to_owned())),
            _ => bad("a bool or a user name"),
        },
        "sensitive" => v
            .unpack_bool()
            .map(Json::Bool)
            .map_or_else(|| bad("a bool"), Ok),
        "retry" => match v.downcast_ref::<RetryPolicy>() {
            Some(r) => Ok(r.to_json()),
            None => match v.unpack_i32() {
                Some(n) if n >= 0 => Ok(RetryPolicy {
                    times: n as u32,
                    delay: "2s".into(),
                    backoff: 1.0,
                }
                .to_json()),
                _ => bad("`retry(times, delay=, backoff=)` or a number of retries"),
            },
        },
        "timeout" => match v.unpack_str() {
            Some(s) if parse_duration_ms(s).is_some_and(|ms| ms > 0) => {
                Ok(Json::String(s.to_owned()))
            }
            _ => bad("a duration such as \"30s\", \"500ms\", \"5m\""),
        },
        "desc" => v
            .unpack_str()
            .map(|s| Json::String(s.to_owned()))
            .map_or_else(|| bad("a string"), Ok),
        _ => unreachable!("not a meta keyword: {key}"),
    }
}

/// `resource()` and `handler()`.
fn declare<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    rtype: &str,
    name: &str,
    kwargs: SmallMap<String, Value<'v>>,
    handler: bool,
) -> anyhow::Result<Handle> {
    let ctx = EvalContext::get(eval)?;
    let (span, notes) = EvalContext::call_site(eval);
    let defined_at = span.as_ref().map(span_location).unwrap_or_default();
    let id = format!("{rtype}[{name}]");
    let rejected = |natural: String| Handle {
        node: None,
        id: id.clone(),
        rtype: rtype.to_owned(),
        name: name.to_owned(),
        natural,
        config: Arc::new(Json::Null),
        defined_at: defined_at.clone(),
        span: span.clone(),
        handler,
    };
    if name.is_empty() {
        return fail(
            Code::Arg,
            format!("the name of a `{rtype}` resource must not be empty"),
        );
    }
    check_plain_string(name, "name")?;
    let Some(ty) = ctx.registry.get(rtype) else {
        let help = match ctx.registry.suggest(rtype) {
            Some(s) => format!("did you mean `{s}`? `froyo doc` lists every type"),
            None => "`froyo doc` lists every resource type".to_owned(),
        };
        let mut d = Diagnostic::new(
            Code::UnknownType,
            format!("unknown resource type `{rtype}`"),
        )
        .at_opt(span.clone(), "unknown type")
        .help(help);
        for (s, l) in &notes {
            d = d.note(s.clone(), l.clone());
        }
        ctx.report(d);
        return Ok(rejected(name.to_owned()));
    };

    let mut config = Map::new();
    let mut meta = Map::new();
    let mut collected = Collected::default();
    let mut meta_deps = Vec::new();
    for (key, value) in kwargs.iter() {
        if META_KEYWORDS.contains(&key.as_str()) {
            if !value.is_none() {
                meta.insert(key.clone(), meta_value(ctx, key, *value, &mut meta_deps)?);
            }
            continue;
        }
        let v = to_json(ctx, *value, key, &mut collected)?;
        if !v.is_null() {
            config.insert(key.clone(), v);
        }
    }
    if !config.contains_key(&ty.identity) {
        config.insert(ty.identity.clone(), Json::String(name.to_owned()));
    }
    let (host, play, play_meta) = {
        let st = ctx.state.borrow();
        (
            st.current_host.clone(),
            st.current_play.clone(),
            st.play_meta.clone(),
        )
    };
    for (k, v) in play_meta {
        meta.entry(k).or_insert(v);
    }
    let sensitive = collected.sensitive || meta.get("sensitive") == Some(&Json::Bool(true));
    let natural = match config.get(&ty.natural) {
        Some(Json::String(s)) => s.clone(),
        _ => name.to_owned(),
    };
    let config_view = Arc::new(Json::Object(config.clone()));
    let raw = RawResource {
        rtype: ty.clone(),
        name: name.to_owned(),
        config,
        meta,
        host,
        play,
        handler,
        sensitive,
        span: span.clone(),
        notes: notes.clone(),
        fields: Vec::new(),
        template: None,
    };
    let node = match ctx.add_node(raw) {
        Ok(node) => node,
        Err(existing) => {
            let first = ctx.state.borrow().nodes[existing as usize].span.clone();
            let host = ctx.state.borrow().nodes[existing as usize].host.clone();
            let on = host.map(|h| format!(" on host `{h}`")).unwrap_or_default();
            let mut d = Diagnostic::new(Code::DupId, format!("`{id}` is declared twice{on}"))
                .at_opt(span.clone(), "declared again here");
            if let Some(first) = first {
                d = d.also(first, "first declared here");
            }
            ctx.report(d);
            let st = ctx.state.borrow();
            let n = &st.nodes[existing as usize];
            return Ok(Handle {
                node: Some(existing),
                config: Arc::new(Json::Object(n.config.clone())),
                handler: n.handler,
                ..rejected(natural)
            });
        }
    };
    for (dep, field) in collected.deps {
        ctx.add_edge(RawEdge {
            from: dep,
            to: node,
            kind: EdgeKind::Implicit,
            span: span.clone(),
            detail: field,
        });
    }
    for dep in meta_deps {
        ctx.add_edge(RawEdge {
            from: dep,
            to: node,
            kind: EdgeKind::Implicit,
            span: span.clone(),
            detail: "when".into(),
        });
    }
    Ok(Handle {
        node: Some(node),
        config: config_view,
        ..rejected(natural)
    })
}

fn plain_str<'v>(v: Value<'v>, what: &str) -> anyhow::Result<&'v str> {
    match v.unpack_str() {
        Some(s) => Ok(s),
        None => fail(
            Code::Arg,
            format!("{what} must be a string, got `{}`", v.get_type()),
        ),
    }
}

fn selector_of(v: Value) -> anyhow::Result<Selector> {
    if let Some(s) = v.downcast_ref::<SelectorValue>() {
        return Ok(s.selector.clone());
    }
    let text = plain_str(v, "a selector")?;
    Selector::parse(text).map_err(|e| CodedError::new(Code::Selector, e).into())
}

#[starlark_module]
pub fn core_builtins(builder: &mut GlobalsBuilder) {
    /// Declare a resource of `type` named `name`; keyword arguments are its config.
    ///
    /// The name is the resource's identity on its host. The type's identity field (`path`
    /// for files, `unit` for services, `name` for packages) defaults to the name. A config
    /// value of `None` means "not set", so the schema's default applies. The reserved meta
    /// keywords `when`, `tags`, `become`, `sensitive`, `retry`, `timeout` and `desc` are
    /// not config. A handle anywhere in the config adds a dependency edge and becomes the
    /// producer's natural value (a file's path, a user's name, …).
    ///
    /// ```python
    /// motd = resource("linux.file::file", "/etc/motd", content = "hello\n", mode = "0644")
    /// ```
    fn resource<'v>(
        #[starlark(require = pos)] r#type: &str,
        #[starlark(require = pos)] name: &str,
        #[starlark(kwargs)] config: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        declare(eval, r#type, name, config, false)
    }

    /// Declare a handler: a resource that runs only when notified, at most once per host
    /// per run, after the resources that notified it.
    ///
    /// ```python
    /// reload = handler("linux.service::service", "nginx:reload", unit = "nginx", action = "reload")
    /// ```
    fn handler<'v>(
        #[starlark(require = pos)] r#type: &str,
        #[starlark(require = pos)] name: &str,
        #[starlark(kwargs)] config: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Handle> {
        declare(eval, r#type, name, config, true)
    }

    /// `r` requires `deps`: every dependency is applied before `r`. Returns `r`.
    ///
    /// `r` and each dependency are a handle or a list of handles.
    fn require<'v>(
        #[starlark(require = pos)] r: Value<'v>,
        #[starlark(args)] deps: UnpackTuple<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = EvalContext::get(eval)?;
        let (span, _) = EvalContext::call_site(eval);
        let targets = handles(r, "the first argument of `require()`")?;
        for dep in deps.items {
            for d in handles(dep, "a dependency")? {
                let Some(dn) = d.node else { continue };
                let dn = ctx.resolve(dn, &d.id)?;
                for t in &targets {
                    let Some(tn) = t.node else { continue };
                    let tn = ctx.resolve(tn, &t.id)?;
                    ctx.add_edge(RawEdge {
                        from: dn,
                        to: tn,
                        kind: EdgeKind::Explicit,
                        span: span.clone(),
                        detail: String::new(),
                    });
                }
            }
        }
        Ok(r)
    }

    /// `r` notifies `handlers` when it changes (`on = "change"`) or fails (`on = "failure"`).
    /// Returns `r`.
    fn notify<'v>(
        #[starlark(require = pos)] r: Value<'v>,
        #[starlark(args)] handlers: UnpackTuple<Value<'v>>,
        #[starlark(require = named, default = "change")] on: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = EvalContext::get(eval)?;
        let (span, _) = EvalContext::call_site(eval);
        if on != "change" && on != "failure" {
            return fail(
                Code::Arg,
                format!("`on` must be \"change\" or \"failure\", got {on:?}"),
            );
        }
        let sources = handles(r, "the first argument of `notify()`")?;
        for hv in handlers.items {
            for h in handles(hv, "a handler")? {
                if !h.handler {
                    let mut d = Diagnostic::new(
                        Code::NotHandler,
                        format!("`{}` is not a handler, so it cannot be notified", h.id),
                    )
                    .at_opt(span.clone(), "notified here");
                    if let Some(def) = h.span.clone() {
                        d = d.also(def, "declared with `resource()` here");
                    }
                    ctx.report(d);
                    continue;
                }
                let Some(hn) = h.node else { continue };
                let hn = ctx.resolve(hn, &h.id)?;
                for s in &sources {
                    let Some(sn) = s.node else { continue };
                    let sn = ctx.resolve(sn, &s.id)?;
                    ctx.add_edge(RawEdge {
                        from: sn,
                        to: hn,
                        kind: EdgeKind::Notify,
                        span: span.clone(),
                        detail: format!("on={on}"),
                    });
                }
            }
        }
        Ok(r)
    }

    /// Register a play: `body(host)` runs once per target selected by `hosts`, and the
    /// resources it declares form that host's part of the graph. Plays run in order.
    fn play<'v>(
        #[starlark(require = pos)] name: &str,
        #[starlark(require = pos)] hosts: Value<'v>,
        #[starlark(require = pos)] body: Value<'v>,
        #[starlark(require = named)] serial: Option<Value<'v>>,
        #[starlark(require = named, default = 0)] max_fail: i32,
        #[starlark(require = named)] r#become: Option<Value<'v>>,
        #[starlark(require = named)] tags: Option<UnpackListOrTuple<String>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let ctx = EvalContext::get(eval)?;
        let (span, _) = EvalContext::call_site(eval);
        if ctx.state.borrow().current_host.is_some() || ctx.load_depth.get() > 0 {
            return fail(
                Code::Arg,
                "`play()` can only be called at the top level of the playbook being run",
            );
        }
        let selector = selector_of(hosts)?;
        if body.get_type() != "function" {
            return fail(
                Code::Arg,
                format!(
                    "the body of play `{name}` must be a function taking the host, got `{}`",
                    body.get_type()
                ),
            );
        }
        let serial = match serial {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => match (v.unpack_i32(), v.unpack_str()) {
                (Some(n), _) if n > 0 => Some(Json::from(n)),
                (_, Some(p))
                    if p.strip_suffix('%')
                        .and_then(|n| n.parse::<u8>().ok())
                        .is_some_and(|n| (1..=100).contains(&n)) =>
                {
                    Some(Json::from(p))
                }
                _ => {
                    return fail(
                        Code::Arg,
                        "`serial` must be a positive number or a percentage like \"25%\"",
                    );
                }
            },
        };
        if max_fail < 0 {
            return fail(Code::Arg, "`max_fail` must not be negative");
        }
        let mut deps = Vec::new();
        let r#become = match r#become {
            Some(v) if !v.is_none() => Some(meta_value(ctx, "become", v, &mut deps)?),
            _ => None,
        };
        let slot = {
            let st = ctx.state.borrow();
            if st.plays.iter().any(|p| p.name == name) {
                return fail(
                    Code::Arg,
                    format!("a play named `{name}` is already registered"),
                );
            }
            format!("__froyo_play_{}", st.plays.len())
        };
        eval.module().set(&slot, body);
        ctx.state.borrow_mut().plays.push(PlayDecl {
            name: name.to_owned(),
            selector,
            body_slot: slot,
            serial,
            max_fail: Json::from(max_fail),
            r#become,
            tags: tags.map(|t| t.items).unwrap_or_default(),
            span,
        });
        Ok(NoneType)
    }

    /// A target selector: `select("role=web,env in (prod,stage),!canary")` or
    /// `select(role = "web", env = ["prod", "stage"])`; both forms combine with AND.
    fn select<'v>(
        #[starlark(require = pos, default = "")] expr: &str,
        #[starlark(kwargs)] labels: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<SelectorValue> {
        let mut sel = Selector::parse(expr).map_err(|e| CodedError::new(Code::Selector, e))?;
        let mut pairs = Vec::new();
        for (k, v) in labels.iter() {
            let values = match (
                v.unpack_str(),
                UnpackListOrTuple::<String>::unpack_value_opt(*v),
            ) {
                (Some(s), _) => vec![s.to_owned()],
                (_, Some(l)) if !l.items.is_empty() => l.items,
                _ => {
                    return fail(
                        Code::Selector,
                        format!("label `{k}` must be a string or a non-empty list of strings"),
                    );
                }
            };
            pairs.push((k.clone(), values));
        }
        sel = sel.and(Selector::from_labels(pairs));
        Ok(SelectorValue { selector: sel })
    }

    /// The targets a selector (or selector string) matches, sorted by name.
    fn targets<'v>(
        #[starlark(require = pos)] sel: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<Target>> {
        let ctx = EvalContext::get(eval)?;
        let sel = selector_of(sel)?;
        Ok(ctx
            .inventory
            .select(&sel)
            .into_iter()
            .map(|t| target_value(t, &ctx.facts))
            .collect())
    }

    /// The evaluated value of a `.cue` file, or of a directory of them (one CUE package), as
    /// Starlark data: keep environment data typed in CUE and the logic in Starlark. The
    /// path is relative to this `.star` file and must stay inside the project; schema
    /// packages can be imported (`import "froyo.dev/linux/pkg"`). CUE errors are reported
    /// at their `.cue` line.
    ///
    /// ```python
    /// env = cue_values("values.cue")
    /// for u in env["users"]:
    ///     user(u["name"], uid = u["uid"])
    /// ```
    fn cue_values<'v>(
        #[starlark(require = pos)] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let ctx = EvalContext::get(eval)?;
        let (span, _) = EvalContext::call_site(eval);
        let json = crate::frontend_cue::values(ctx, &span, path)?;
        Ok(eval.heap().alloc(json))
    }

    /// Render a MiniJinja template (path relative to this `.star` file) with exactly `vars`
    /// visible; an undefined variable is an error. Handles in `vars` add edges; secrets make
    /// the content sensitive and rendered only at apply time.
    fn template<'v>(
        #[starlark(require = pos)] path: &str,
        #[starlark(default = NoneType)] vars: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Content> {
        let ctx = EvalContext::get(eval)?;
        let (span, _) = EvalContext::call_site(eval);
        template::template(ctx, &span, path, Some(vars))
    }

    /// The raw content of a file next to this `.star` file.
    fn asset<'v>(
        #[starlark(require = pos)] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Content> {
        let ctx = EvalContext::get(eval)?;
        let (span, _) = EvalContext::call_site(eval);
        template::asset(ctx, &span, path)
    }

    /// A secret by URI: `env://NAME` or `file://secrets.age#NAME`. The value is resolved
    /// only when a resource needs it and never appears in output, plans or state.
    fn secret(#[starlark(require = pos)] uri: &str) -> anyhow::Result<Secret> {
        use crate::secrets::store::{store_path, valid_name};
        let ok = if let Some(name) = uri.strip_prefix("env://") {
            valid_name(name)
        } else if let Some(rest) = uri.strip_prefix("file://") {
            rest.split_once('#').is_some_and(|(path, key)| {
                store_path(std::path::Path::new("/"), path).is_ok() && valid_name(key)
            })
        } else {
            false
        };
        if !ok {
            return Err(
                CodedError::new(Code::Arg, format!("`{uri}` is not a secret URI"))
                    .help("use `env://NAME` or `file://secrets.age#NAME` (a store inside the project; names of letters, digits, `_`, `-`, `.`)")
                    .into(),
            );
        }
        Ok(Secret {
            parts: vec![super::values::Part::Secret(uri.to_owned())],
        })
    }

    /// Format `{}`, `{0}` and `{name}` placeholders. With a secret among the arguments the
    /// result is a secret; with a deferred value, a deferred string.
    fn fmt<'v>(
        #[starlark(require = pos)] format_string: &str,
        #[starlark(args)] args: UnpackTuple<Value<'v>>,
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        let kwargs: Vec<(String, Value)> = kwargs.into_iter().collect();
        let heap = eval.heap();
        Ok(match format(format_string, &args.items, &kwargs)? {
            Formatted::Plain(s) => heap.alloc(s),
            Formatted::Secret(s) => heap.alloc(s),
            Formatted::Deferred(mut r) => {
                r.origin = eval.call_stack_top_location();
                heap.alloc(r)
            }
        })
    }

    /// A deferred bool, true at apply time if any of the handles changed in this run.
    /// Use it as `when = changed(cfg)`.
    fn changed<'v>(
        #[starlark(args)] hs: UnpackTuple<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Ref> {
        let mut nodes = Vec::new();
        let mut ids = Vec::new();
        for v in hs.items {
            for h in handles(v, "an argument of `changed()`")? {
                nodes.extend(h.node);
                ids.push(h.id);
            }
        }
        if ids.is_empty() {
            return fail(Code::Arg, "`changed()` needs at least one handle");
        }
        Ok(Ref {
            kind: RefKind::Changed(nodes),
            desc: format!("changed({})", ids.join(", ")),
            origin: eval.call_stack_top_location(),
        })
    }

    /// A retry policy for the `retry` meta keyword: `times` retries, `delay` before the
    /// first, each next delay multiplied by `backoff`.
    fn retry(
        #[starlark(require = pos)] times: i32,
        #[starlark(require = named, default = "2s")] delay: &str,
        #[starlark(require = named)] backoff: Option<Value>,
    ) -> anyhow::Result<RetryPolicy> {
        let backoff = match backoff {
            None => 1.0,
            Some(v) => match v.unpack_i32() {
                Some(i) => f64::from(i),
                None => match v.to_json_value().ok().and_then(|j| j.as_f64()) {
                    Some(f) if v.get_type() == "float" => f,
                    _ => {
                        return fail(
                            Code::Arg,
                            format!("`backoff` must be a number, got `{}`", v.get_type()),
                        );
                    }
                },
            },
        };
        if !(0..=100).contains(&times) {
            return fail(
                Code::Arg,
                format!("`times` must be between 0 and 100, got {times}"),
            );
        }
        if parse_duration_ms(delay).is_none() {
            return fail(
                Code::Arg,
                format!("`delay` must be a duration such as \"2s\", got {delay:?}"),
            );
        }
        if !(1.0..=10.0).contains(&backoff) {
            return fail(
                Code::Arg,
                format!("`backoff` must be between 1.0 and 10.0, got {backoff}"),
            );
        }
        Ok(RetryPolicy {
            times: times as u32,
            delay: delay.to_owned(),
            backoff,
        })
    }
}
