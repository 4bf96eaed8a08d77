//! The offline pipeline behind `froyo check` and `froyo graph`: evaluate, validate every
//! resource against its CUE schema, build the graph, and run the graph-wide checks.
//! Returns the graph together with every diagnostic found, errors and warnings alike.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petgraph::graph::NodeIndex;
use serde_json::{Map, Value as Json};

use crate::diag::{self, Code, Diagnostic};
use crate::error::Error;
use crate::eval::{self, EvalRequest, NodeId, RawResource, cue_view_map, merge_markers};
use crate::graph::{Edge, Graph, Resource};
use crate::inventory::{Inventory, parse_cli_var};
use crate::project::Project;
use crate::schema::{FieldError, Registry, ResourceType, Validator};
use crate::selector::Selector;

/// Inputs of a check.
#[derive(Debug, Clone, Default)]
pub struct CheckOptions {
    pub file: PathBuf,
    /// More `.cue` files of the same CUE package as `file` (CUE input only).
    pub more: Vec<PathBuf>,
    /// `--on`; defaults to `froyo.toml`'s `defaults.on`, else `local`.
    pub on: Option<String>,
    /// `--var k=v`.
    pub vars: Vec<String>,
    /// Evaluate no policy at all.
    pub skip_policies: bool,
    /// Only the project's policies, not the bundled ones.
    pub no_bundled_policies: bool,
}

/// The graph (built even when there are errors, from what was valid) and all findings.
#[derive(Debug)]
pub struct Checked {
    pub graph: Graph,
    pub diagnostics: Vec<Diagnostic>,
    /// `print()` output of the playbook.
    pub prints: Vec<String>,
    pub timings: Timings,
}

/// Where a check spent its time and memory (printed with `FROYO_TIMINGS=1`).
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    pub eval: std::time::Duration,
    pub validate: std::time::Duration,
    pub graph: std::time::Duration,
    /// Rego evaluation of the bundled and project policies.
    pub policy: std::time::Duration,
    /// Peak resident set size after evaluation and after validation, in KiB (Linux only).
    pub peak_rss_after_eval_kib: u64,
    pub peak_rss_after_validate_kib: u64,
}

/// The process's peak RSS so far (`VmHWM`), in KiB; 0 where `/proc` is unavailable.
fn peak_rss_kib() -> u64 {
    crate::util::proc_status("VmHWM")
        .and_then(|v| v.trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// The project, inventory and default-play selector a command works with.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub project: Project,
    pub inventory: Inventory,
    pub on: Selector,
}

/// Evaluates, validates and checks a playbook, offline.
#[tracing::instrument(skip_all, fields(file = %opts.file.display()))]
pub fn check(opts: &CheckOptions) -> Result<Checked, Error> {
    let r = resolve(opts)?;
    let registry = Registry::for_project(&r.project)?;
    let mut checked = check_with(
        &r.project,
        &r.inventory,
        registry,
        &opts.file,
        &opts.more,
        r.on,
        None,
    );
    if !opts.skip_policies && !checked.has_errors() {
        let started = std::time::Instant::now();
        let policies = crate::policy::Policies::for_project(&r.project, !opts.no_bundled_policies)?;
        // No rule, no finding: the input document (a copy of the whole graph) is not built.
        if !policies.is_empty() {
            let findings =
                policies.evaluate(&crate::policy::input(&checked.graph, &r.inventory, None))?;
            checked
                .diagnostics
                .extend(crate::policy::diagnostics(&findings, &checked.graph));
            diag::sort(&mut checked.diagnostics);
        }
        checked.timings.policy = started.elapsed();
    }
    Ok(checked)
}

/// Finds the project of the playbook, reads its inventory and parses `--on`.
pub fn resolve(opts: &CheckOptions) -> Result<Resolved, Error> {
    resolve_in(
        Project::discover(&opts.file)?,
        &opts.vars,
        opts.on.as_deref(),
    )
}

/// The inventory (with `--var`s) and the `--on` selector (else `[defaults] on`, else
/// `local`) of `project`.
pub fn resolve_in(project: Project, vars: &[String], on: Option<&str>) -> Result<Resolved, Error> {
    let mut cli_vars = Map::new();
    for v in vars {
        let (k, val) = parse_cli_var(v).map_err(Error::Usage)?;
        cli_vars.insert(k, val);
    }
    let inventory = Inventory::load(&project.root, &cli_vars)?;
    let on_text = on
        .map(str::to_owned)
        .or_else(|| project.settings.defaults.on.clone())
        .unwrap_or_else(|| "name=local".into());
    let on = Selector::parse(&on_text).map_err(|e| Error::Usage(format!("--on: {e}")))?;
    Ok(Resolved {
        project,
        inventory,
        on,
    })
}

/// [`check`] with everything resolved (used by tests and the LSP).
pub fn check_with(
    project: &Project,
    inventory: &Inventory,
    registry: &'static Registry,
    file: &Path,
    more: &[PathBuf],
    on: Selector,
    facts: Option<std::sync::Arc<dyn crate::facts::FactSource>>,
) -> Checked {
    let started = std::time::Instant::now();
    let evaluated = eval::evaluate(&EvalRequest {
        project,
        inventory,
        registry,
        file,
        more,
        on,
        facts,
    });
    analyze(evaluated, started)
}

/// [`check_with`] on `source` as the text of `file` (an editor's unsaved buffer), offline.
pub fn check_source(
    project: &Project,
    inventory: &Inventory,
    registry: &'static Registry,
    file: &Path,
    source: String,
    on: Selector,
) -> Checked {
    let started = std::time::Instant::now();
    let req = EvalRequest {
        project,
        inventory,
        registry,
        file,
        more: &[],
        on,
        facts: None,
    };
    analyze(eval::evaluate_source(&req, Some(source)), started)
}

/// Validates what an evaluation declared and builds the graph (the part of [`check_with`]
/// after evaluation; the REPL calls it on its scratch graph). `started` is when the
/// evaluation began, for the timings.
pub fn analyze(evaluated: eval::Evaluated, started: std::time::Instant) -> Checked {
    let mut timings = Timings::default();
    let mut diagnostics = evaluated.diagnostics;
    let mut resources = evaluated.resources;
    // Validate each distinct declaration once: default-play copies share their template's config.
    let mut validator = match Validator::new() {
        Ok(v) => v,
        Err(e) => {
            diagnostics.push(Diagnostic::new(
                Code::Eval,
                format!("CUE is unavailable: {e}"),
            ));
            return Checked {
                graph: Graph::default(),
                diagnostics,
                prints: evaluated.prints,
                timings,
            };
        }
    };
    timings.eval = started.elapsed();
    timings.peak_rss_after_eval_kib = peak_rss_kib();
    let started = std::time::Instant::now();
    let validated = tracing::info_span!("validate", resources = resources.len())
        .in_scope(|| validate(&mut validator, &resources, &mut diagnostics));
    timings.validate = started.elapsed();
    timings.peak_rss_after_validate_kib = peak_rss_kib();
    let started = std::time::Instant::now();
    for (i, cfg) in validated.into_iter().enumerate() {
        if let Some(cfg) = cfg {
            resources[i].config = cfg;
        }
    }
    let unguarded = unguarded_commands(&resources);
    // Copies of top-level resources were made before validation: they take the validated
    // config of their template.
    let mut templates: Vec<Option<Map<String, Json>>> = resources
        .iter_mut()
        .map(|r| r.host.is_none().then(|| std::mem::take(&mut r.config)))
        .collect();
    let mut graph = Graph {
        plays: evaluated.plays,
        ..Graph::default()
    };
    let mut index: Vec<Option<NodeIndex>> = Vec::with_capacity(resources.len());
    let copies_left = |templates: &[Option<Map<String, Json>>], t: usize| templates[t].is_some();
    let mut remaining: std::collections::HashMap<NodeId, usize> = std::collections::HashMap::new();
    for r in &resources {
        if let Some(t) = r.template {
            *remaining.entry(t).or_default() += 1;
        }
    }
    for r in resources {
        let Some(host) = r.host else {
            index.push(None);
            continue;
        };
        let config = match r.template {
            Some(t) if copies_left(&templates, t as usize) => {
                let left = remaining.get_mut(&t).map(|n| {
                    *n -= 1;
                    *n
                });
                // The last copy takes the template's config instead of cloning it.
                if left == Some(0) {
                    templates[t as usize].take().unwrap_or_default()
                } else {
                    templates[t as usize].clone().unwrap_or_default()
                }
            }
            _ => r.config,
        };
        let play = if r.play.is_empty() {
            "default".to_owned()
        } else {
            r.play
        };
        let n = graph.graph.add_node(Resource {
            id: format!("{}[{}]", r.rtype.name, r.name),
            rtype: r.rtype.name.clone(),
            name: r.name,
            host,
            play,
            handler: r.handler,
            config: Json::Object(config),
            meta: Json::Object(r.meta),
            sensitive: r.sensitive,
            span: r.span,
        });
        index.push(Some(n));
    }
    for e in evaluated.edges {
        if let (Some(from), Some(to)) = (index[e.from as usize], index[e.to as usize]) {
            graph.graph.add_edge(
                from,
                to,
                Edge {
                    kind: e.kind,
                    detail: e.detail,
                    span: e.span,
                    reversed: false,
                },
            );
        }
    }
    crate::graph::auto::add(&mut graph);
    diagnostics.extend(graph.cycle_diagnostics());
    diagnostics.extend(unguarded);
    diag::sort(&mut diagnostics);
    timings.graph = started.elapsed();
    Checked {
        graph,
        diagnostics,
        prints: evaluated.prints,
        timings,
    }
}

/// Validates the declared resources (top-level templates and play resources; not the
/// per-host copies of templates) with CUE, batched per type. Returns the config with
/// defaults per resource, `None` where validation failed or was not needed.
fn validate(
    validator: &mut Validator,
    resources: &[RawResource],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Option<Map<String, Json>>> {
    let mut out: Vec<Option<Map<String, Json>>> = vec![None; resources.len()];
    let mut by_type: BTreeMap<&str, (Arc<ResourceType>, Vec<usize>)> = BTreeMap::new();
    for (i, r) in resources.iter().enumerate() {
        let is_copy = r.host.is_some() && r.play.is_empty();
        if is_copy {
            continue;
        }
        by_type
            .entry(&r.rtype.name)
            .or_insert_with(|| (r.rtype.clone(), Vec::new()))
            .1
            .push(i);
    }
    for (_, (ty, idx)) in by_type {
        let views: Vec<Json> = idx
            .iter()
            .map(|&i| cue_view_map(&resources[i].config))
            .collect();
        let results = match validator.validate(&ty, &views) {
            Ok(r) => r,
            Err(e) => {
                diagnostics.push(Diagnostic::new(
                    Code::Eval,
                    format!("CUE failed on `{}`: {e}", ty.name),
                ));
                continue;
            }
        };
        for (k, result) in results.into_iter().enumerate() {
            let r = &resources[idx[k]];
            match result {
                Ok(v) => {
                    if let Json::Object(mut m) = merge_markers(&Json::Object(r.config.clone()), v) {
                        // An alias has been unified with its field by the schema: the
                        // graph and the provider see the field only.
                        for alias in ty.aliases.keys() {
                            m.remove(alias);
                        }
                        out[idx[k]] = Some(schema_order(&ty, m));
                    }
                }
                Err(errors) => diagnostics.extend(errors.iter().map(|e| schema_diagnostic(r, e))),
            }
        }
    }
    out
}

/// Orders config keys as the schema declares its fields (identity first), so the graph is
/// the same byte for byte whatever order CUE exports in.
fn schema_order(ty: &ResourceType, mut m: Map<String, Json>) -> Map<String, Json> {
    let mut out = Map::with_capacity(m.len());
    if let Some(v) = m.remove(&ty.identity) {
        out.insert(ty.identity.clone(), v);
    }
    for f in &ty.doc.fields {
        if let Some(v) = m.remove(&f.name) {
            out.insert(f.name.clone(), v);
        }
    }
    let mut rest: Vec<(String, Json)> = m.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    out.extend(rest);
    out
}

fn schema_diagnostic(r: &RawResource, e: &FieldError) -> Diagnostic {
    let ty = &r.rtype;
    let top = e.field.split(['.', '[']).next().unwrap_or_default();
    let field_doc = ty.field(top);
    let given = r.config.get(top).map(|v| v.to_string());
    let (message, help) = if e.message.contains("field not allowed") {
        let names: Vec<&str> = ty.doc.fields.iter().map(|f| f.name.as_str()).collect();
        let hint = match crate::util::did_you_mean(top, names.iter().copied()) {
            Some(s) => format!(
                "did you mean `{s}`? `{}` has: {}",
                ty.name,
                names.join(", ")
            ),
            None => format!("`{}` has: {}", ty.name, names.join(", ")),
        };
        (format!("`{}` has no field `{top}`", ty.name), hint)
    } else if e.message.contains("field is required but not present") {
        (
            format!("`{}` requires field `{}`", ty.name, e.field),
            format!("`froyo doc {}` shows what `{}` means", ty.name, e.field),
        )
    } else {
        let expected = field_doc
            .map(|f| format!("expected `{}`", f.cue_type))
            .unwrap_or_default();
        let got = given
            .as_ref()
            .map(|g| format!(", got `{g}`"))
            .unwrap_or_default();
        let field = if e.field.is_empty() {
            String::new()
        } else {
            format!(" field `{}`", e.field)
        };
        let message = if e.message.contains("errors in empty disjunction") {
            match &given {
                Some(g) => format!("{g} is not one of the allowed values"),
                None => "no allowed value matches".to_owned(),
            }
        } else {
            e.message.clone()
        };
        (
            format!("`{}`{field}: {message}", ty.name),
            format!("{expected}{got}; `froyo doc {}` lists the fields", ty.name),
        )
    };
    let mut d =
        Diagnostic::new(Code::Schema, message).help(help.trim_start_matches("; ").to_owned());
    let field_span = r
        .fields
        .iter()
        .find(|(f, _)| f == top)
        .map(|(_, s)| s.clone())
        .or_else(|| r.span.as_ref().and_then(|s| diag::kwarg_span(s, top)));
    let label = if top.is_empty() {
        "in this resource".to_owned()
    } else {
        format!("`{top}`")
    };
    d = match (field_span, &r.span) {
        (Some(fs), _) => d.at(fs, label),
        (None, Some(s)) => d.at(s.clone(), label),
        (None, None) => d,
    };
    for (s, l) in &r.notes {
        d = d.note(s.clone(), l.clone());
    }
    d
}

/// `W-UNGUARDED-CMD`: a command without `creates`, `removes` or `unless` runs every apply.
fn unguarded_commands(resources: &[RawResource]) -> Vec<Diagnostic> {
    resources
        .iter()
        .filter(|r| {
            r.rtype.name == "linux.exec::command" && !(r.host.is_some() && r.play.is_empty())
        })
        .filter(|r| {
            !["creates", "removes", "unless"]
                .iter()
                .any(|k| r.config.contains_key(*k))
        })
        .map(|r| {
            Diagnostic::new(
                Code::UnguardedCmd,
                format!(
                    "command `{}` has no guard, so it runs on every apply",
                    r.name
                ),
            )
            .at_opt(r.span.clone(), "unguarded command")
        })
        .collect()
}
