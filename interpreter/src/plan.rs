//! The plan: for every host, what each resource's provider says must change, read from the
//! live target without changing it (spec §8).
//!
//! Reads are batched: one `read` per provider per host, so a run where nothing changes
//! costs a few round trips per host whatever the number of resources. Resources whose
//! config needs the outcome of earlier ones (`changed(...)`) are planned after them;
//! what cannot be known before an earlier change is applied is `unknown` (`?`), never a
//! false failure.

pub mod render;

use std::collections::{BTreeMap, HashMap, HashSet};

use petgraph::Direction;
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::engine::Engine;
use crate::graph::{EdgeKind, Graph};
use crate::provider_host::{Operation, Resource as ProviderResource};
use crate::secrets::{self, Unresolved};

/// The version of the plan file format (`--out plan.json`).
pub const PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub version: u32,
    pub playbook: String,
    /// The project root the plan was made in (`apply --plan` works from anywhere).
    #[serde(default)]
    pub root: Option<std::path::PathBuf>,
    pub created_ms: i64,
    /// Play names in the order they run (each is a barrier across its hosts).
    pub plays: Vec<String>,
    pub hosts: Vec<HostPlan>,
    /// The resource graph in DOT, for reviewers.
    pub dot: String,
}

impl Plan {
    /// Reads a saved plan (`plan --out`, the text of the file `path` for `apply --plan`):
    /// JSON of this [`PLAN_VERSION`], without errors. Changes nothing.
    pub fn from_saved(path: &std::path::Path, text: &str) -> Result<Plan, crate::Error> {
        use crate::Error;
        let saved: Plan = serde_json::from_str(text)
            .map_err(|e| Error::Usage(format!("{}: not a froyo plan: {e}", path.display())))?;
        if saved.version != PLAN_VERSION {
            return Err(Error::Usage(format!(
                "{}: plan format version {} is not supported (this froyo writes {})",
                path.display(),
                saved.version,
                PLAN_VERSION
            )));
        }
        if saved.has_errors() {
            return Err(Error::Usage(format!(
                "{}: the plan has errors; fix them and plan again",
                path.display()
            )));
        }
        Ok(saved)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostPlan {
    pub target: String,
    pub units: Vec<Unit>,
    /// Why the host could not be planned at all (unreachable, …).
    pub error: Option<String>,
    /// Runner round trips the plan cost on this host.
    pub round_trips: u64,
}

/// What will happen to one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Already as desired (or a probe, which checks without changing anything).
    Unchanged,
    /// The provider planned operations.
    Change,
    /// Cannot be known until an earlier change is applied.
    Unknown,
    /// `when` is false, or the tags do not select it.
    Skipped,
    /// Reading or diffing failed.
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unit {
    pub id: String,
    pub type_name: String,
    pub provider: String,
    pub play: String,
    /// `file:line` of the declaration.
    pub location: String,
    pub handler: bool,
    pub sensitive: bool,
    /// The desired config with markers (`$secret` references, never values), redacted.
    pub config: Json,
    /// The desired config as evaluated (sensitive content not redacted): what providers
    /// get. A saved plan has only `config`.
    #[serde(skip)]
    pub desired: Option<Json>,
    pub meta: Json,
    /// Ids of the resources this one waits for (explicit, implicit and automatic edges).
    pub deps: Vec<String>,
    /// Those of `deps` that only automatic edges give: one skipped by `when` or `--tags`
    /// does not skip this unit (a failed one still does).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auto_deps: Vec<String>,
    /// Handlers this resource notifies: `(handler id, on)`.
    pub notifies: Vec<(String, String)>,
    pub status: Status,
    pub reason: Option<String>,
    pub ops: Vec<PlannedOp>,
    /// Something it depends on (or that notifies it) changes first, so apply reads it
    /// again when its turn comes instead of trusting these operations (a command whose
    /// `creates` file an earlier resource makes).
    #[serde(default)]
    pub after_changes: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlannedOp {
    /// `create`, `update`, `delete`, `run` or `check`.
    pub kind: String,
    pub summary: String,
    /// A unified diff (masked for sensitive resources).
    pub diff: Option<String>,
    /// sha256 of the operation with secrets masked: a saved plan is applied only if the
    /// target still gives the same operations.
    pub fingerprint: String,
    /// The operation itself, for apply in this process (it may hold resolved secrets, so
    /// it is never written out).
    #[serde(skip)]
    pub op: Option<Operation>,
}

impl Unit {
    /// The symbol of spec §8 for this unit.
    pub fn kind(&self) -> &'static str {
        let has = |k: &str| self.ops.iter().any(|o| o.kind == k);
        match self.status {
            Status::Change if has("create") => "create",
            Status::Change if has("delete") => "delete",
            Status::Change if has("update") => "update",
            Status::Change => "run",
            Status::Unknown => "unknown",
            Status::Skipped => "skip",
            Status::Failed => "failed",
            Status::Unchanged => "noop",
        }
    }
}

impl Plan {
    /// Whether applying this plan would change anything.
    pub fn has_changes(&self) -> bool {
        self.hosts
            .iter()
            .flat_map(|h| &h.units)
            .any(|u| matches!(u.status, Status::Change | Status::Unknown) && !u.handler)
    }

    /// Whether some host or resource could not be planned.
    pub fn has_errors(&self) -> bool {
        self.hosts
            .iter()
            .any(|h| h.error.is_some() || h.units.iter().any(|u| u.status == Status::Failed))
    }
}

/// Options of one plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Only resources with one of these tags (empty: all).
    pub tags: Vec<String>,
}

/// Plans every host of `graph`, `engine.parallelism` hosts at a time.
#[tracing::instrument(skip_all, fields(playbook))]
pub fn plan(engine: &Engine, graph: &Graph, playbook: &str, opts: &PlanOptions) -> Plan {
    let mut hosts: Vec<String> = Vec::new();
    let mut plays: Vec<String> = Vec::new();
    for r in graph.resources() {
        if !hosts.contains(&r.host) {
            hosts.push(r.host.clone());
        }
        if !plays.contains(&r.play) {
            plays.push(r.play.clone());
        }
    }
    let results = parallel_map(&hosts, engine.parallelism, |h| {
        plan_host(engine, h, host_units(engine, graph, h), opts)
    });
    Plan {
        version: PLAN_VERSION,
        playbook: playbook.to_owned(),
        root: Some(engine.project.root.clone()),
        created_ms: crate::state::now_ms(),
        plays,
        hosts: results,
        dot: graph.to_dot(),
    }
}

/// `f` over `items` on at most `n` threads, results in input order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], n: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: Vec<std::sync::Mutex<Option<R>>> = items.iter().map(|_| Default::default()).collect();
    // The workers' spans are children of the caller's (one trace per run).
    let span = tracing::Span::current();
    std::thread::scope(|s| {
        for _ in 0..n.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                let _in = span.enter();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    *out[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                }
            });
        }
    });
    out.into_iter()
        .filter_map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// The units of one host in the order apply runs them (each after what it depends on,
/// ties in declaration order), with their edges, before planning.
pub fn host_units(engine: &Engine, graph: &Graph, host: &str) -> Vec<Unit> {
    let g = &graph.graph;
    graph
        .host_order(host)
        .into_iter()
        .map(|n| {
            let r = &g[n];
            let mut deps = Vec::new();
            let mut auto_deps = Vec::new();
            for e in g.edges_directed(n, Direction::Incoming) {
                match e.weight().kind {
                    EdgeKind::Notify => {}
                    EdgeKind::Auto => {
                        deps.push(g[e.source()].id.clone());
                        auto_deps.push(g[e.source()].id.clone());
                    }
                    EdgeKind::Explicit | EdgeKind::Implicit => {
                        deps.push(g[e.source()].id.clone());
                    }
                }
            }
            let notifies = g
                .edges_directed(n, Direction::Outgoing)
                .filter(|e| e.weight().kind == EdgeKind::Notify)
                .map(|e| (g[e.target()].id.clone(), e.weight().detail.clone()))
                .collect();
            Unit {
                id: r.id.clone(),
                type_name: r.rtype.clone(),
                provider: engine.provider_of(&r.rtype).unwrap_or_default().to_owned(),
                play: r.play.clone(),
                location: r.location(),
                handler: r.handler,
                sensitive: r.sensitive,
                config: crate::state::redact(&r.config),
                desired: Some(r.config.clone()),
                meta: r.meta.clone(),
                deps,
                auto_deps,
                notifies,
                status: Status::Unchanged,
                reason: None,
                ops: Vec::new(),
                after_changes: false,
            }
        })
        .collect()
}

/// Whether some resource of the host asks for `become` (then the host's runner runs as
/// root for all of them: one session per host).
pub fn needs_become(units: &[Unit]) -> bool {
    units.iter().any(|u| match u.meta.get("become") {
        Some(Json::Bool(b)) => *b,
        Some(Json::String(_)) => true,
        _ => false,
    })
}

/// Whether the unit's tags select it (`tags` empty: everything is selected).
fn selected(meta: &Json, tags: &[String]) -> bool {
    tags.is_empty()
        || meta.get("tags").and_then(Json::as_array).is_some_and(|t| {
            t.iter()
                .any(|t| t.as_str().is_some_and(|t| tags.iter().any(|x| x == t)))
        })
}

#[tracing::instrument(skip_all, fields(host))]
pub fn plan_host(
    engine: &Engine,
    host: &str,
    mut units: Vec<Unit>,
    opts: &PlanOptions,
) -> HostPlan {
    for u in &mut units {
        u.status = Status::Unchanged;
        u.reason = None;
        u.ops.clear();
        u.after_changes = false;
    }
    let session = match engine.session(host, needs_become(&units)) {
        Ok(s) => s,
        Err(e) => {
            return HostPlan {
                target: host.to_owned(),
                units,
                error: Some(engine.masker.mask(&e.to_string())),
                round_trips: 0,
            };
        }
    };
    let index: HashMap<String, usize> = units
        .iter()
        .enumerate()
        .map(|(i, u)| (u.id.clone(), i))
        .collect();

    // Pass 1: skip what `when=False` or the tags rule out; batch the rest by provider,
    // leaving for pass 2 what depends on the outcome of other resources.
    let mut later = Vec::new();
    let mut batches: BTreeMap<String, Vec<(usize, ProviderResource)>> = BTreeMap::new();
    for (i, u) in units.iter_mut().enumerate() {
        let desired = u.desired.clone().unwrap_or_else(|| u.config.clone());
        if !selected(&u.meta, &opts.tags) {
            u.status = Status::Skipped;
            u.reason = Some("not selected by --tags".into());
            continue;
        }
        if u.meta.get("when") == Some(&Json::Bool(false)) {
            u.status = Status::Skipped;
            u.reason = Some("when = False".into());
            continue;
        }
        if u.provider.is_empty() {
            u.status = Status::Failed;
            u.reason = Some(format!("no provider implements `{}`", u.type_name));
            continue;
        }
        if secrets::has_deferred(&desired) || secrets::has_deferred(&u.meta) {
            later.push(i);
            continue;
        }
        match secrets::resolve(&desired, &engine.masker, &|_| None) {
            Ok(config) => batches.entry(u.provider.clone()).or_default().push((
                i,
                ProviderResource {
                    id: u.id.clone(),
                    type_name: u.type_name.clone(),
                    config: config.to_string(),
                },
            )),
            Err(e) => fail(u, &e.to_string()),
        }
    }
    for (provider, batch) in batches {
        let resources: Vec<ProviderResource> = batch.iter().map(|(_, r)| r.clone()).collect();
        match engine
            .providers
            .read(&provider, Some(session.clone()), &resources)
        {
            Ok(actual) => {
                for ((i, desired), actual) in batch.iter().zip(actual) {
                    diff_unit(engine, &mut units[*i], desired, &actual);
                }
            }
            Err(e) => {
                let msg = engine.masker.mask(&e.to_string());
                for (i, _) in &batch {
                    fail(&mut units[*i], &msg);
                }
            }
        }
    }

    // Pass 2: resources whose config or `when` needs `changed(...)`, in dependency order
    // (the order of `host_units`).
    for i in later {
        let desired = units[i]
            .desired
            .clone()
            .unwrap_or_else(|| units[i].config.clone());
        let meta = units[i].meta.clone();
        let changed = |id: &str| -> Option<bool> {
            let u = &units[*index.get(id)?];
            match u.status {
                Status::Change => Some(true),
                Status::Unchanged | Status::Skipped => Some(false),
                Status::Unknown | Status::Failed => None,
            }
        };
        let when = match meta.get("when") {
            Some(w @ Json::Object(_)) => {
                secrets::resolve(w, &engine.masker, &changed).map(|w| w != Json::Bool(false))
            }
            _ => Ok(true),
        };
        let config = secrets::resolve(&desired, &engine.masker, &changed);
        let u = &mut units[i];
        match (when, config) {
            (Ok(false), _) => {
                u.status = Status::Skipped;
                u.reason = Some("when is false: nothing it depends on changes".into());
            }
            (Err(Unresolved::Deferred(d)), _) | (_, Err(Unresolved::Deferred(d))) => {
                u.status = Status::Unknown;
                u.reason = Some(format!("depends on {d}"));
            }
            (Err(e), _) | (_, Err(e)) => fail(u, &e.to_string()),
            (Ok(true), Ok(config)) => {
                let desired = ProviderResource {
                    id: u.id.clone(),
                    type_name: u.type_name.clone(),
                    config: config.to_string(),
                };
                let provider = u.provider.clone();
                match engine.providers.read(
                    &provider,
                    Some(session.clone()),
                    std::slice::from_ref(&desired),
                ) {
                    Ok(mut actual) if actual.len() == 1 => {
                        let actual = actual.remove(0);
                        diff_unit(engine, u, &desired, &actual);
                    }
                    Ok(_) => fail(u, "the provider returned no state"),
                    Err(e) => fail(u, &engine.masker.mask(&e.to_string())),
                }
            }
        }
    }

    // A failure that may be caused by an earlier change (a service whose package is not
    // installed yet) is unknown until that change is applied, not an error.
    let culprits = changes_upstream(&units, &index);
    for (i, u) in units.iter_mut().enumerate() {
        let Some(c) = culprits.get(&i) else { continue };
        u.after_changes = true;
        if u.status == Status::Failed {
            u.status = Status::Unknown;
            u.reason = Some(format!("known after {c} is applied"));
        }
    }

    // Handlers run only when notified: by a resource that changes (or may).
    let notified: HashSet<String> = units
        .iter()
        .filter(|u| matches!(u.status, Status::Change | Status::Unknown))
        .flat_map(|u| {
            u.notifies
                .iter()
                .filter(|(_, on)| on != "failure")
                .map(|(h, _)| h.clone())
        })
        .collect();
    for u in units.iter_mut().filter(|u| u.handler) {
        if !notified.contains(&u.id) && u.status == Status::Change {
            u.status = Status::Unchanged;
            u.reason = Some("not notified".into());
        }
    }

    HostPlan {
        target: host.to_owned(),
        round_trips: session.round_trips(),
        units,
        error: None,
    }
}

/// For every unit downstream of a change (through dependencies, or notifications for a
/// handler), the id of one changing unit it waits for.
fn changes_upstream(units: &[Unit], index: &HashMap<String, usize>) -> HashMap<usize, String> {
    let mut upstream: Vec<Vec<usize>> = units
        .iter()
        .map(|u| {
            u.deps
                .iter()
                .filter_map(|d| index.get(d).copied())
                .collect()
        })
        .collect();
    for (j, u) in units.iter().enumerate() {
        for (h, _) in &u.notifies {
            if let Some(&i) = index.get(h) {
                upstream[i].push(j);
            }
        }
    }
    let mut out: HashMap<usize, String> = HashMap::new();
    // Iterate to a fixed point: declaration order usually puts dependencies first, but
    // not always (notifications, `require()` of later resources).
    loop {
        let before = out.len();
        for (i, up) in upstream.iter().enumerate() {
            if out.contains_key(&i) {
                continue;
            }
            let hit = up.iter().find_map(|&j| {
                if matches!(units[j].status, Status::Change | Status::Unknown) {
                    Some(units[j].id.clone())
                } else {
                    out.get(&j).cloned()
                }
            });
            if let Some(c) = hit {
                out.insert(i, c);
            }
        }
        if out.len() == before {
            return out;
        }
    }
}

fn fail(u: &mut Unit, msg: &str) {
    u.status = Status::Failed;
    u.reason = Some(msg.to_owned());
}

/// Diffs one unit and records its operations.
fn diff_unit(
    engine: &Engine,
    u: &mut Unit,
    desired: &ProviderResource,
    actual: &crate::provider_host::Actual,
) {
    match engine.providers.diff(&u.provider, desired, actual) {
        Ok(ops) => {
            let ops: Vec<PlannedOp> = ops
                .into_iter()
                .map(|op| planned(engine, u.sensitive, op))
                .collect();
            // Probes check without changing anything: they are not changes.
            u.status = if ops.iter().all(|o| o.kind == "check") {
                Status::Unchanged
            } else {
                Status::Change
            };
            u.ops = ops;
        }
        Err(e) => fail(u, &engine.masker.mask(&e.to_string())),
    }
}

fn planned(engine: &Engine, sensitive: bool, op: Operation) -> PlannedOp {
    let m = &engine.masker;
    let fingerprint = crate::util::sha256_hex(
        format!(
            "{}\n{}\n{}",
            op.kind,
            m.mask(&op.summary),
            m.mask(&op.payload)
        )
        .as_bytes(),
    );
    let diff = match &op.diff {
        Some(_) if sensitive => Some("(sensitive content: diff hidden)\n".to_owned()),
        Some(d) => Some(m.mask(d)),
        None => None,
    };
    PlannedOp {
        kind: op.kind.clone(),
        summary: m.mask(&op.summary),
        diff,
        fingerprint,
        op: Some(op),
    }
}

/// Diagnostics for what could not be planned: an unreachable host (`E-TARGET`), a failed
/// read or diff (`E-PROVIDER`), pointing at the resource's declaration.
pub fn diagnostics(plan: &Plan, graph: &Graph) -> Vec<crate::diag::Diagnostic> {
    use crate::diag::{Code, Diagnostic};
    let span_of = |host: &str, id: &str| {
        graph
            .resources()
            .find(|r| r.host == host && r.id == id)
            .and_then(|r| r.span.clone())
    };
    let mut out = Vec::new();
    for h in &plan.hosts {
        if let Some(e) = &h.error {
            out.push(Diagnostic::new(
                Code::Target,
                format!("target `{}`: {e}", h.target),
            ));
            continue;
        }
        for u in h.units.iter().filter(|u| u.status == Status::Failed) {
            out.push(
                Diagnostic::new(
                    Code::Provider,
                    format!(
                        "{} on `{}`: {}",
                        u.id,
                        h.target,
                        u.reason.as_deref().unwrap_or("failed")
                    ),
                )
                .at_opt(span_of(&h.target, &u.id), "declared here"),
            );
        }
    }
    out
}
