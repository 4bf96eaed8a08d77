//! Evaluation: a `.star` playbook → the resources, edges and plays it declares.
//!
//! Hermetic by construction: built-ins read files only under the project root, there is
//! no clock, network or randomness, and targets are only named, never contacted. The
//! module's top level is evaluated once (its resources form the default play, copied to
//! each `--on` host); then each play body runs once per selected target.

mod ansible_filters;
mod builder;
mod builtins;
mod convert;
mod deferred;
mod errors;
mod format;
mod import_builtins;
mod loader;
pub mod repl;
pub mod template;
mod values;

use std::cell::RefCell;
use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Map, Value as Json};
use starlark::analysis::AstModuleLint;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension, Module};
use starlark::errors::EvalSeverity;
use starlark::eval::Evaluator;
use starlark::syntax::{AstModule, Dialect, DialectTypes};

pub use builder::{EvalContext, PlayDecl, RawEdge, RawResource};
pub use convert::{cue_view, cue_view_map, merge_markers};
pub use errors::{CodedError, from_starlark};
pub use values::{FACT_TREE, FactsHandle, NodeId};

use crate::diag::{Code, Diagnostic, Severity};
use crate::inventory::Inventory;
use crate::project::Project;
use crate::schema::Registry;
use crate::selector::Selector;

/// The dialect of spec §3: top-level `if`/`for`, keyword-only arguments, f-strings, types.
pub fn dialect() -> Dialect {
    Dialect {
        enable_def: true,
        enable_lambda: true,
        enable_load: true,
        enable_keyword_only_arguments: true,
        enable_positional_only_arguments: false,
        enable_types: DialectTypes::Enable,
        enable_load_reexport: false,
        enable_top_level_stmt: true,
        enable_f_strings: true,
        ..Dialect::Standard
    }
}

/// Starlark's own globals plus the core built-ins (built once per process).
pub fn globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| globals_builder().build())
}

/// The default of `[defaults] eval_max_ticks`.
pub const EVAL_MAX_TICKS: u64 = 1_000_000_000;
/// The default of `[defaults] eval_max_heap_mb`.
pub const EVAL_MAX_HEAP_MB: u64 = 2048;

/// Bounds one evaluation by the project's limits (`[defaults] eval_max_ticks`,
/// `eval_max_heap_mb`): a playbook that loops or allocates without end stops with
/// `E-EVAL` instead of taking the machine. starlark checks both every 1,000 ticks, so a
/// single huge allocation (`"x" * 10**9`) is seen only after it is made.
pub(crate) fn set_limits(eval: &mut Evaluator, project: &Project) {
    let d = &project.settings.defaults;
    let ticks = d.eval_max_ticks.unwrap_or(EVAL_MAX_TICKS).max(1);
    let heap = d
        .eval_max_heap_mb
        .unwrap_or(EVAL_MAX_HEAP_MB)
        .clamp(1, usize::MAX as u64 >> 20) as usize;
    // Both fail only when set twice or to zero, which cannot happen on a new evaluator.
    let _ = eval.set_max_tick_count(ticks);
    let _ = eval.set_max_heap_size(heap << 20);
}

/// Starlark's extensions a playbook gets, plus the core built-ins; the REPL adds its own.
fn globals_builder() -> GlobalsBuilder {
    GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Json,
        LibraryExtension::Print,
        LibraryExtension::Typing,
        LibraryExtension::Map,
        LibraryExtension::Filter,
        LibraryExtension::Partial,
        LibraryExtension::SetType,
    ])
    .with(builtins::core_builtins)
    .with(import_builtins::import_builtins)
}

/// The docs of froyo's own built-ins only (not Starlark's), for the generated reference.
pub fn core_documentation() -> starlark::docs::DocModule {
    GlobalsBuilder::new()
        .with(builtins::core_builtins)
        .with(import_builtins::import_builtins)
        .build()
        .documentation()
}

/// The docs of each bundled `@stdlib//` module (its docstring and public functions), in
/// the order of [`crate::bundled::STDLIB`]. Evaluating a module only defines its functions.
pub fn stdlib_documentation() -> Result<Vec<(&'static str, starlark::docs::DocModule)>, String> {
    crate::bundled::STDLIB
        .iter()
        .map(|(name, src)| {
            let ast = AstModule::parse(name, (*src).to_owned(), &dialect())
                .map_err(|e| format!("{name}: {e}"))?;
            let frozen = Module::with_temp_heap(
                |module| -> starlark::Result<starlark::environment::FrozenModule> {
                    {
                        let mut eval = Evaluator::new(&module);
                        eval.eval_module(ast, globals())?;
                    }
                    Ok(module.freeze()?)
                },
            )
            .map_err(|e| format!("{name}: {e}"))?;
            Ok((*name, frozen.documentation()))
        })
        .collect()
}

/// Collects `print()` output; the CLI decides where it goes (stderr).
#[derive(Default)]
pub struct PrintCollector(RefCell<Vec<String>>);

impl starlark::PrintHandler for PrintCollector {
    fn println(&self, text: &str) -> starlark::Result<()> {
        self.0.borrow_mut().push(text.to_owned());
        Ok(())
    }
}

/// Starlark's lints on a user file, as `W-LINT` warnings (lints it disables are dropped).
/// Also runs the static `E-DEFERRED` check.
pub fn lint(ast: &AstModule, globals: &Globals) -> Vec<Diagnostic> {
    let names: HashSet<String> = globals.names().map(|n| n.as_str().to_owned()).collect();
    let mut out = deferred::check(ast);
    let lints = ast
        .lint(Some(&names))
        .into_iter()
        .filter(|l| matches!(l.severity, EvalSeverity::Error | EvalSeverity::Warning))
        .map(|l| {
            let sev = if l.severity == EvalSeverity::Error {
                Severity::Error
            } else {
                Severity::Warning
            };
            Diagnostic::new(Code::Lint, format!("{} ({})", l.problem, l.short_name))
                .at(l.location.clone(), l.short_name.clone())
                .severity(sev)
        });
    out.extend(lints);
    out
}

/// What to evaluate and for which targets.
#[derive(Clone)]
pub struct EvalRequest<'a> {
    pub project: &'a Project,
    pub inventory: &'a Inventory,
    pub registry: &'static Registry,
    /// The playbook.
    pub file: &'a Path,
    /// More `.cue` files evaluated with `file` as one CUE package (CUE input only).
    pub more: &'a [std::path::PathBuf],
    /// Targets of the default play (`--on`).
    pub on: Selector,
    /// Live facts; `None` evaluates offline (`host.facts.*` is then `E-FACT-UNAVAILABLE`).
    pub facts: Option<std::sync::Arc<dyn crate::facts::FactSource>>,
}

/// Everything an evaluation produced.
#[derive(Debug, Default)]
pub struct Evaluated {
    pub resources: Vec<RawResource>,
    pub edges: Vec<RawEdge>,
    pub plays: Vec<PlayInfo>,
    pub diagnostics: Vec<Diagnostic>,
    pub prints: Vec<String>,
}

/// A play as the graph records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlayInfo {
    pub name: String,
    pub hosts: Vec<String>,
    pub selector: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<Json>,
    pub max_fail: Json,
    #[serde(rename = "become", skip_serializing_if = "Option::is_none")]
    pub r#become: Option<Json>,
    pub tags: Vec<String>,
}

/// Evaluates a playbook. Never panics on bad input: every problem is a diagnostic.
#[tracing::instrument(skip_all, fields(file = %req.file.display()))]
pub fn evaluate(req: &EvalRequest) -> Evaluated {
    evaluate_source(req, None)
}

/// [`evaluate`] with the playbook's text given (an editor's unsaved buffer) instead of
/// read from `req.file`.
pub fn evaluate_source(req: &EvalRequest, source: Option<String>) -> Evaluated {
    if crate::frontend_cue::is_cue_input(req.file) {
        return crate::frontend_cue::evaluate(req, source);
    }
    let mut out = Evaluated::default();
    if let Some(extra) = req.more.first() {
        out.diagnostics.push(
            Diagnostic::new(
                Code::Arg,
                format!(
                    "`{}` is a Starlark playbook: only `.cue` inputs take more files (`{}`)",
                    req.file.display(),
                    extra.display()
                ),
            )
            .help("give one `.star` file (it can `load()` others), or several `.cue` files of one package"),
        );
        return out;
    }
    let real = match std::fs::canonicalize(req.file) {
        Ok(p) => p,
        Err(e) => {
            out.diagnostics.push(Diagnostic::new(
                Code::Path,
                format!("cannot read `{}`: {e}", req.file.display()),
            ));
            return out;
        }
    };
    let display = req.project.display_name(&real);
    let text = match source.map_or_else(|| std::fs::read_to_string(&real), Ok) {
        Ok(t) => t,
        Err(e) => {
            out.diagnostics.push(Diagnostic::new(
                Code::Path,
                format!("cannot read `{display}`: {e}"),
            ));
            return out;
        }
    };
    let ast = match AstModule::parse(&display, text, &dialect()) {
        Ok(a) => a,
        Err(e) => {
            out.diagnostics.push(from_starlark(&e));
            return out;
        }
    };
    let globals = globals();
    let ctx = EvalContext {
        state: RefCell::default(),
        registry: req.registry,
        project: req.project.clone(),
        inventory: req.inventory.clone(),
        files: RefCell::new([(display.clone(), real.clone())].into_iter().collect()),
        main_file: display.clone(),
        load_depth: Default::default(),
        facts: values::FactsHandle(req.facts.clone()),
    };
    for d in lint(&ast, globals) {
        ctx.report(d);
    }
    let prints = PrintCollector::default();
    let default_hosts: Vec<String> = req
        .inventory
        .select(&req.on)
        .into_iter()
        .map(|t| t.name.clone())
        .collect();
    Module::with_temp_heap(|module| {
        let loader = loader::Loader::new(&ctx, globals, &prints);
        let new_eval = |module| {
            let mut eval = Evaluator::new(module);
            set_limits(&mut eval, req.project);
            eval.set_loader(&loader);
            eval.set_print_handler(&prints);
            eval.extra = Some(&ctx);
            eval
        };
        let result = new_eval(&module).eval_module(ast, globals);
        report_truth_tested(&ctx);
        if let Err(e) = result {
            ctx.report(from_starlark(&e));
            return;
        }
        let has_top_level = !ctx.state.borrow().nodes.is_empty();
        if has_top_level && default_hosts.is_empty() {
            ctx.report(Diagnostic::new(
                Code::NoHosts,
                format!(
                    "`--on {}` selects no target; top-level resources apply nowhere",
                    req.on
                ),
            ));
        }
        ctx.instantiate_default_play(&default_hosts);

        // `def main(host)` without `play()` is `play("main", <--on>, main)`.
        if ctx.state.borrow().plays.is_empty()
            && module
                .get("main")
                .is_some_and(|m| m.get_type() == "function")
        {
            ctx.state.borrow_mut().plays.push(PlayDecl {
                name: "main".into(),
                selector: req.on.clone(),
                body_slot: "main".into(),
                serial: None,
                max_fail: Json::from(0),
                r#become: None,
                tags: Vec::new(),
                span: None,
            });
        }
        if has_top_level {
            out.plays.push(PlayInfo {
                name: "default".into(),
                hosts: default_hosts.clone(),
                selector: req.on.to_string(),
                serial: None,
                max_fail: Json::from(0),
                r#become: None,
                tags: Vec::new(),
            });
        }
        let plays = ctx.state.borrow().plays.clone();
        for play in plays {
            let hosts: Vec<&crate::inventory::Target> = req.inventory.select(&play.selector);
            if hosts.is_empty() {
                ctx.report(
                    Diagnostic::new(
                        Code::NoHosts,
                        format!(
                            "play `{}` selects no target (`{}`)",
                            play.name, play.selector
                        ),
                    )
                    .at_opt(play.span.clone(), "this play"),
                );
            }
            out.plays.push(PlayInfo {
                name: play.name.clone(),
                hosts: hosts.iter().map(|t| t.name.clone()).collect(),
                selector: play.selector.to_string(),
                serial: play.serial.clone(),
                max_fail: play.max_fail.clone(),
                r#become: play.r#become.clone(),
                tags: play.tags.clone(),
            });
            let Some(body) = module.get(&play.body_slot) else {
                continue;
            };
            for target in hosts {
                {
                    let mut st = ctx.state.borrow_mut();
                    st.current_host = Some(target.name.clone());
                    st.current_play = play.name.clone();
                    st.play_meta = Map::new();
                    if let Some(b) = &play.r#become {
                        st.play_meta.insert("become".into(), b.clone());
                    }
                    if !play.tags.is_empty() {
                        st.play_meta
                            .insert("tags".into(), Json::from(play.tags.clone()));
                    }
                }
                let host = module
                    .heap()
                    .alloc(builtins::target_value(target, &ctx.facts));
                let result = new_eval(&module).eval_function(body, &[host], &[]);
                report_truth_tested(&ctx);
                if let Err(e) = result {
                    let mut d = from_starlark(&e);
                    d.message = format!(
                        "{} (evaluating play `{}` for host `{}`)",
                        d.message, play.name, target.name
                    );
                    ctx.report(d);
                }
            }
        }
    });
    let st = ctx.state.into_inner();
    out.resources = st.nodes;
    out.edges = st.edges;
    out.diagnostics = dedupe(st.diagnostics);
    out.prints = prints.0.into_inner();
    out
}

/// `if ref:` cannot fail inside Starlark, so it is reported once the evaluation step ends.
fn report_truth_tested(ctx: &EvalContext) {
    let tested = values::take_truth_tested();
    // The static check already pointed at the exact expression.
    if ctx
        .state
        .borrow()
        .diagnostics
        .iter()
        .any(|d| d.code == Code::Deferred)
    {
        return;
    }
    for (desc, origin) in tested {
        ctx.report(
            Diagnostic::new(Code::Deferred, format!("`{desc}` is only known at apply time, but its truth value was used during evaluation"))
                .at_opt(origin, "deferred value created here")
                .help("`if`, `and`, `or` and `not` need a value now; pass it as `when=` to decide at apply time"),
        );
    }
}

/// The same finding from several hosts is reported once.
fn dedupe(diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    let mut seen = HashSet::new();
    diags
        .into_iter()
        .filter(|d| {
            let msg = d
                .message
                .split(" (evaluating play")
                .next()
                .unwrap_or_default()
                .to_owned();
            seen.insert((d.code, msg, d.location()))
        })
        .collect()
}
