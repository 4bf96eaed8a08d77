//! The evaluation side of `froyo repl`: one Starlark module alive for a whole session,
//! the REPL's own built-ins (`hosts()`, `host()`, `facts()`), and the scratch graph of
//! the resources declared so far. The terminal side (rustyline, meta-commands) is
//! `cli/repl.rs`.

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;
use std::sync::OnceLock;

use serde_json::Value as Json;
use starlark::environment::{Globals, GlobalsBuilder, Module};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::syntax::AstModule;
use starlark::values::Value;

use super::builder::{BuilderState, EvalContext, RawEdge};
use super::errors::{CodedError, fail};
use super::values::{FactsHandle, NodeId, Target, fact_value};
use super::{Evaluated, PlayInfo, PrintCollector, dialect, from_starlark, report_truth_tested};
use crate::diag::{Code, Diagnostic};
use crate::facts::{FactSource, Interrupt};
use crate::inventory::Inventory;
use crate::project::Project;
use crate::schema::Registry;

thread_local! {
    /// The targets `hosts()` and `facts()` work on (`--on`, `:on`).
    static SELECTION: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// The playbook globals plus the REPL's built-ins (built once per process).
pub fn globals() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| super::globals_builder().with(repl_builtins).build())
}

fn target<'a>(ctx: &'a EvalContext, name: &str) -> anyhow::Result<&'a crate::inventory::Target> {
    match ctx.inventory.targets.iter().find(|t| t.name == name) {
        Some(t) => Ok(t),
        None => {
            let names = ctx.inventory.targets.iter().map(|t| t.name.as_str());
            let hint = match crate::util::did_you_mean(name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "`hosts()` lists the selected targets; the inventory is `inventory.toml`"
                    .to_owned(),
            };
            Err(
                CodedError::new(Code::Arg, format!("no target `{name}` in the inventory"))
                    .help(hint)
                    .into(),
            )
        }
    }
}

#[starlark_module]
fn repl_builtins(builder: &mut GlobalsBuilder) {
    /// The targets selected with `--on` or `:on`, as host values (`.name`, `.labels`,
    /// `.facts`, …). REPL only.
    fn hosts<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Vec<Target>> {
        let ctx = EvalContext::get(eval)?;
        let names = SELECTION.with(|s| s.borrow().clone());
        names
            .iter()
            .map(|n| Ok(super::builtins::target_value(target(ctx, n)?, &ctx.facts)))
            .collect()
    }

    /// The inventory target `name` as a host value: `host("web-01").facts.os.basic`.
    /// REPL only.
    fn host<'v>(
        #[starlark(require = pos)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Target> {
        let ctx = EvalContext::get(eval)?;
        Ok(super::builtins::target_value(
            target(ctx, name)?,
            &ctx.facts,
        ))
    }

    /// One fact (`"hw.cpu"`, `"os.basic"`, …) of every selected target, gathered
    /// concurrently: a dict by host name. A host that cannot answer maps to `None` and is
    /// reported. REPL only.
    fn facts<'v>(
        #[starlark(require = pos)] name: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        use starlark::values::dict::AllocDict;
        let ctx = EvalContext::get(eval)?;
        if !crate::facts::KNOWN.contains(&name) {
            let hint = match crate::util::did_you_mean(name, crate::facts::KNOWN.iter().copied()) {
                Some(s) => format!(
                    "did you mean `{s}`? known: {}",
                    crate::facts::KNOWN.join(", ")
                ),
                None => format!("known: {}", crate::facts::KNOWN.join(", ")),
            };
            return Err(
                CodedError::new(Code::FactUnknown, format!("no fact `{name}`"))
                    .help(hint)
                    .into(),
            );
        }
        let Some(source) = &ctx.facts.0 else {
            return fail(Code::FactUnavailable, "this session has no target access");
        };
        let names = SELECTION.with(|s| s.borrow().clone());
        let results = source.fact_of_many(&names, name);
        let heap = eval.heap();
        let mut entries = Vec::with_capacity(names.len());
        for (host, r) in names.iter().zip(results) {
            match r {
                Ok(v) => entries.push((host.clone(), fact_value(heap, &v, name == "pkg.manifest"))),
                Err(e) => {
                    ctx.report(
                        Diagnostic::new(
                            Code::Target,
                            format!("cannot gather fact `{name}` of `{host}`: {}", e.message),
                        )
                        .severity(crate::diag::Severity::Warning)
                        .help(e.help.clone().unwrap_or_else(|| {
                            format!("check that the target is reachable: `froyo facts --on {host}`")
                        })),
                    );
                    entries.push((host.clone(), Value::new_none()));
                }
            }
        }
        Ok(heap.alloc(AllocDict(entries)))
    }
}

/// What a REPL session works with.
pub struct SessionSetup<'a> {
    pub project: &'a Project,
    pub inventory: &'a Inventory,
    pub registry: &'static Registry,
    pub facts: Option<Arc<dyn FactSource>>,
    /// Cancels a running evaluation (Ctrl-C) between Starlark steps.
    pub interrupt: Arc<Interrupt>,
}

/// The outcome of one input.
#[derive(Debug, Default)]
pub struct LineResult {
    /// The value of a last expression statement that is not `None`: its repr, and its JSON
    /// form when it has one.
    pub value: Option<(String, Option<Json>)>,
    pub prints: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
}

/// A live session: evaluate inputs into one module, inspect its globals, snapshot the
/// scratch graph.
pub struct Session<'a, 'v> {
    module: &'a Module<'v>,
    ctx: &'a EvalContext,
    loader: &'a super::loader::Loader<'a>,
    prints: &'a PrintCollector,
    interrupt: Arc<Interrupt>,
    inputs: usize,
    /// Nodes before this index were declared before the last `:clear`.
    cleared: usize,
}

/// Runs `f` with a fresh session (the module lives as long as the call).
pub fn with_session<R>(setup: SessionSetup, f: impl FnOnce(&mut Session<'_, '_>) -> R) -> R {
    let ctx = EvalContext {
        state: RefCell::default(),
        registry: setup.registry,
        project: setup.project.clone(),
        inventory: setup.inventory.clone(),
        files: RefCell::default(),
        main_file: "<repl>".into(),
        load_depth: Default::default(),
        facts: FactsHandle(setup.facts.clone()),
    };
    let prints = PrintCollector::default();
    Module::with_temp_heap(|module| {
        let loader = super::loader::Loader::new(&ctx, globals(), &prints);
        let mut session = Session {
            module: &module,
            ctx: &ctx,
            loader: &loader,
            prints: &prints,
            interrupt: setup.interrupt.clone(),
            inputs: 0,
            cleared: 0,
        };
        f(&mut session)
    })
}

impl Session<'_, '_> {
    /// Sets the targets of `hosts()`, `facts()` and the scratch graph.
    pub fn select(&mut self, hosts: Vec<String>) {
        SELECTION.with(|s| *s.borrow_mut() = hosts);
    }

    pub fn selection(&self) -> Vec<String> {
        SELECTION.with(|s| s.borrow().clone())
    }

    /// Evaluates one input (`<repl:N>`).
    pub fn eval(&mut self, src: &str) -> LineResult {
        self.inputs += 1;
        let name = format!("<repl:{}>", self.inputs);
        self.eval_named(&name, src.to_owned())
    }

    /// Evaluates a file into the session, as if typed (`froyo repl FILE`). Its top-level
    /// resources join the scratch graph; its functions and variables become globals.
    pub fn load_file(&mut self, path: &Path) -> LineResult {
        let real = match std::fs::canonicalize(path) {
            Ok(p) => p,
            Err(e) => return error(Code::Path, format!("cannot read `{}`: {e}", path.display())),
        };
        let display = self.ctx.project.display_name(&real);
        let text = match std::fs::read_to_string(&real) {
            Ok(t) => t,
            Err(e) => return error(Code::Path, format!("cannot read `{display}`: {e}")),
        };
        self.ctx.files.borrow_mut().insert(display.clone(), real);
        self.eval_named(&display, text)
    }

    /// `:load FILE`: [`load_file`](Self::load_file) for a file of the project, relative to
    /// the current directory (evaluation reads nothing outside the project root).
    pub fn load(&mut self, rel: &str) -> LineResult {
        let cwd = std::env::current_dir().unwrap_or_else(|_| self.ctx.project.root.clone());
        match self.ctx.project.resolve_inside(&cwd, rel) {
            Ok(path) => self.load_file(&path),
            Err(e) => LineResult {
                diagnostics: vec![
                    Diagnostic::new(Code::Path, format!("cannot load {e}")).help(format!(
                        "`:load` takes a .star file inside the project `{}`",
                        self.ctx.project.root.display()
                    )),
                ],
                ..Default::default()
            },
        }
    }

    fn eval_named(&mut self, name: &str, src: String) -> LineResult {
        let mut out = LineResult::default();
        let ast = match AstModule::parse(name, src, &dialect()) {
            Ok(a) => a,
            Err(e) => {
                out.diagnostics.push(from_starlark(&e));
                return out;
            }
        };
        let interrupt = self.interrupt.clone();
        let result = {
            let mut eval = Evaluator::new(self.module);
            eval.set_loader(self.loader);
            eval.set_print_handler(self.prints);
            eval.extra = Some(self.ctx);
            eval.set_check_cancelled(Box::new(move || interrupt.is_raised()));
            eval.eval_module(ast, globals())
        };
        report_truth_tested(self.ctx);
        match result {
            Ok(v) if !v.is_none() => {
                let json = v.to_json_value().ok();
                out.value = Some((v.to_repr(), json));
            }
            Ok(_) => {}
            Err(e) => {
                let mut d = from_starlark(&e);
                if self.interrupt.is_raised() {
                    d = Diagnostic::new(Code::Eval, "interrupted (Ctrl-C)").help(
                        "the input was cancelled; what it assigned before that stays assigned",
                    );
                }
                out.diagnostics.push(d);
            }
        }
        out.diagnostics
            .extend(std::mem::take(&mut self.ctx.state.borrow_mut().diagnostics));
        out.prints = std::mem::take(&mut *self.prints.0.borrow_mut());
        out
    }

    /// The module's global variables with their type and attributes (for completion).
    pub fn variables(&self) -> Vec<(String, String, Vec<String>)> {
        let mut out: Vec<(String, String, Vec<String>)> = self
            .module
            .names()
            .filter_map(|n| {
                let v = self.module.get(n.as_str())?;
                Some((n.as_str().to_owned(), v.get_type().to_owned(), v.dir_attr()))
            })
            .collect();
        out.sort();
        out
    }

    /// The resources declared since the last [`clear`](Self::clear), copied onto the
    /// selected hosts as the default play: what `:graph` and `:plan` work on.
    pub fn scratch(&self) -> Evaluated {
        let hosts = self.selection();
        let st = self.ctx.state.borrow();
        let mut map: std::collections::HashMap<NodeId, NodeId> = Default::default();
        let mut scratch = BuilderState::default();
        for (i, n) in st.nodes.iter().enumerate().skip(self.cleared) {
            if n.host.is_none() {
                map.insert(i as NodeId, scratch.nodes.len() as NodeId);
                scratch.nodes.push(n.clone());
            }
        }
        scratch.edges = st
            .edges
            .iter()
            .filter_map(|e| {
                Some(RawEdge {
                    from: *map.get(&e.from)?,
                    to: *map.get(&e.to)?,
                    ..e.clone()
                })
            })
            .collect();
        scratch.instantiate_default_play(&hosts);
        let plays = vec![PlayInfo {
            name: "default".into(),
            hosts: hosts.clone(),
            selector: hosts.join(","),
            serial: None,
            max_fail: Json::from(0),
            r#become: None,
            tags: Vec::new(),
        }];
        Evaluated {
            resources: scratch.nodes,
            edges: scratch.edges,
            plays,
            diagnostics: Vec::new(),
            prints: Vec::new(),
        }
    }

    /// How many resources the scratch graph holds (per host).
    pub fn scratch_len(&self) -> usize {
        let st = self.ctx.state.borrow();
        st.nodes
            .iter()
            .skip(self.cleared)
            .filter(|n| n.host.is_none())
            .count()
    }

    /// Empties the scratch graph. Handles held in variables stay usable as values; edges
    /// to them are dropped.
    pub fn clear(&mut self) {
        self.cleared = self.ctx.state.borrow_mut().forget();
    }
}

fn error(code: Code, message: String) -> LineResult {
    LineResult {
        diagnostics: vec![Diagnostic::new(code, message)],
        ..Default::default()
    }
}

/// Selection helper for the CLI: the names of the targets `sel` picks.
pub fn select_names(inventory: &Inventory, sel: &crate::selector::Selector) -> Vec<String> {
    inventory
        .select(sel)
        .into_iter()
        .map(|t| t.name.clone())
        .collect()
}
