//! `froyo repl [--on SEL] [FILE.star]`: an interactive Starlark session with the
//! playbook built-ins and live facts of the selected targets. This file is the terminal
//! side (rustyline, history, completion, meta-commands); `eval/repl.rs` evaluates.

mod complete;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use rustyline::error::ReadlineError;
use serde_json::Value as Json;

use super::{eprint_diagnostics, write_stdout};
use crate::diag::{Code, Diagnostic, Severity};
use crate::engine::Engine;
use crate::error::Error;
use crate::eval::repl::{LineResult, Session, SessionSetup, select_names, with_session};
use crate::facts::{Facts, Interrupt};
use crate::inventory::Inventory;
use crate::project::Project;
use crate::selector::Selector;

#[derive(Debug, Args)]
pub struct ReplArgs {
    /// A playbook evaluated first: its functions and variables become globals and its
    /// top-level resources start the scratch graph.
    file: Option<PathBuf>,
    /// The targets of `hosts()`, `facts()` and `:plan` (default: `[defaults] on`, else
    /// `local`); `:on SEL` changes it.
    #[arg(long, value_name = "SELECTOR")]
    on: Option<String>,
    /// A host var for every target (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
}

const HELP: &str = "\
Starlark with the playbook built-ins (resource, file, … through load(\"@stdlib//…\")),
plus:
  hosts()                 the selected targets
  host(\"NAME\")            one target: host(\"local\").facts.os.basic.distro
  facts(\"hw.cpu\")         one fact of every selected target, by host
Commands:
  :on SEL      select targets (`:on` alone shows the selection)
  :graph       the scratch graph (resources declared in this session)
  :plan        plan the scratch graph against the selected targets (read-only)
  :clear       empty the scratch graph
  :load FILE   evaluate a .star file of the project into the session
  :paste       read lines as one input until Ctrl-D or a line `:end`
  :json        toggle printing values as JSON
  :doc NAME    docs of a built-in or a resource type
  :help        this text
  :quit        leave (also Ctrl-D)
A line ending in `:` or with open brackets continues on `... ` lines; a blank line ends
a block. A pasted block (bracketed paste) is one input, run with Enter; where the terminal
does not bracket pastes, lines are read as if typed (`:paste` keeps blank lines inside
a block). Ctrl-C cancels the input or a running evaluation. Tab completes (indents at
the start of a line).
";

/// What the loop keeps between inputs.
struct Shell {
    engine: Engine,
    json: bool,
}

pub fn run(args: &ReplArgs) -> Result<ExitCode, Error> {
    let project = match &args.file {
        Some(f) => Project::discover(f)?,
        None => super::cwd_project()?,
    };
    let crate::check::Resolved {
        project,
        inventory,
        on,
    } = crate::check::resolve_in(project, &args.vars, args.on.as_deref())?;

    let runtime = super::runtime()?;
    let engine = Engine::new(
        project.clone(),
        inventory.clone(),
        runtime.handle().clone(),
        10,
    )?;
    let interrupt = Arc::new(Interrupt::default());
    // From here on SIGINT cancels the running evaluation instead of ending the process;
    // while a line is edited the terminal is raw and Ctrl-C reaches rustyline as a key.
    {
        let interrupt = interrupt.clone();
        runtime.spawn(async move {
            while tokio::signal::ctrl_c().await.is_ok() {
                interrupt.raise();
            }
        });
    }
    let facts = Arc::new(
        Facts::new(engine.sessions.clone(), runtime.handle().clone())
            .with_interrupt(interrupt.clone()),
    );
    let history = project.root.join(".froyo").join("repl_history");
    let mut editor = rustyline::Editor::<complete::Helper, rustyline::history::FileHistory>::new()
        .map_err(|e| Error::Usage(format!("cannot start the line editor: {e}")))?;
    let world = complete::World::new(engine.registry, &inventory);
    editor.set_helper(Some(complete::Helper::new(world.clone())));
    // A missing history file is the first session.
    let _ = editor.load_history(&history);

    let mut shell = Shell {
        engine,
        json: false,
    };
    let setup = SessionSetup {
        project: &project,
        inventory: &inventory,
        registry: shell.engine.registry,
        facts: Some(facts),
        interrupt: interrupt.clone(),
    };
    with_session(setup, |session| {
        session.select(select_names(&inventory, &on));
        if std::io::stdin().is_terminal() {
            eprintln!(
                "froyo repl: {} selected ({}); :help for help, Ctrl-D to leave",
                plural(session.selection().len(), "target"),
                session.selection().join(", ")
            );
        }
        if let Some(file) = &args.file {
            interrupt.reset();
            let r = session.load_file(file);
            shell.show(r);
        }
        world.update(session);
        loop {
            let src = match read_input(&mut editor) {
                Input::Line(src) => src,
                Input::Cancelled => continue,
                Input::End => break,
            };
            if src.trim().is_empty() {
                continue;
            }
            let _ = editor.add_history_entry(src.trim_end());
            // Saved after every input, so a killed session keeps its history.
            let _ = editor.save_history(&history);
            if let Some(cmd) = src.trim().strip_prefix(':') {
                if cmd.trim() == "paste" {
                    let Some(block) = read_paste(&mut editor) else {
                        continue;
                    };
                    let _ = editor.add_history_entry(block.trim_end());
                    let _ = editor.save_history(&history);
                    interrupt.reset();
                    let r = session.eval(&block);
                    shell.show(r);
                } else if !shell.command(session, &inventory, cmd) {
                    break;
                }
            } else {
                interrupt.reset();
                let r = session.eval(&src);
                shell.show(r);
            }
            world.update(session);
        }
    });
    let _ = editor.save_history(&history);
    shell.engine.close();
    Ok(ExitCode::SUCCESS)
}

enum Input {
    Line(String),
    Cancelled,
    End,
}

/// One input: a line, or several while a block or a bracket is open.
fn read_input(
    editor: &mut rustyline::Editor<complete::Helper, rustyline::history::FileHistory>,
) -> Input {
    let mut src = match editor.readline(">>> ") {
        Ok(l) => l,
        Err(ReadlineError::Interrupted) => return Input::Cancelled,
        Err(ReadlineError::Eof) => return Input::End,
        Err(e) => {
            eprintln!("froyo repl: cannot read input: {e}");
            return Input::End;
        }
    };
    if src.trim_start().starts_with(':') {
        return Input::Line(src);
    }
    while complete::needs_more(&src) {
        match editor.readline("... ") {
            Ok(l) => {
                src.push('\n');
                src.push_str(&l);
            }
            Err(ReadlineError::Interrupted) => return Input::Cancelled,
            // Ctrl-D inside a block ends it.
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("froyo repl: cannot read input: {e}");
                return Input::End;
            }
        }
    }
    Input::Line(src)
}

/// `:paste`: every line until Ctrl-D or `:end` is one input, blank lines included (for
/// terminals that do not bracket pastes). `None` when cancelled or empty.
fn read_paste(
    editor: &mut rustyline::Editor<complete::Helper, rustyline::history::FileHistory>,
) -> Option<String> {
    eprintln!("paste mode: Ctrl-D or a line `:end` runs the input, Ctrl-C drops it");
    let mut lines: Vec<String> = Vec::new();
    loop {
        match editor.readline("... ") {
            Ok(l) if l.trim() == ":end" => break,
            Ok(l) => lines.push(l),
            Err(ReadlineError::Eof) => break,
            Err(ReadlineError::Interrupted) => return None,
            Err(e) => {
                eprintln!("froyo repl: cannot read input: {e}");
                return None;
            }
        }
    }
    let block = lines.join("\n");
    (!block.trim().is_empty()).then_some(block)
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

impl Shell {
    /// Prints what an input produced: `print()` output and the value on stdout,
    /// diagnostics on stderr.
    fn show(&self, r: LineResult) {
        for p in &r.prints {
            write_stdout(&format!("{p}\n"));
        }
        eprint_diagnostics(&r.diagnostics);
        if let Some((repr, json)) = r.value {
            let text = match (&json, self.json) {
                (Some(j), true) => serde_json::to_string_pretty(j).unwrap_or(repr),
                (Some(j @ (Json::Object(_) | Json::Array(_))), false) if repr.len() > 72 => {
                    pretty(j, 0)
                }
                _ => repr,
            };
            write_stdout(&format!("{text}\n"));
        }
    }

    /// Runs a `:command`; false ends the session.
    fn command(&mut self, session: &mut Session<'_, '_>, inventory: &Inventory, cmd: &str) -> bool {
        let (name, arg) = cmd
            .trim()
            .split_once(char::is_whitespace)
            .map_or((cmd.trim(), ""), |(n, a)| (n, a.trim()));
        match name {
            "q" | "quit" | "exit" => return false,
            "help" | "h" | "?" => write_stdout(HELP),
            "json" => {
                self.json = !self.json;
                write_stdout(&format!(
                    "values print as {}\n",
                    if self.json { "JSON" } else { "Starlark" }
                ));
            }
            "on" if arg.is_empty() => {
                let sel = session.selection();
                write_stdout(&format!(
                    "{}: {}\n",
                    plural(sel.len(), "target"),
                    sel.join(", ")
                ));
            }
            "on" => match Selector::parse(arg) {
                Ok(sel) => {
                    let names = select_names(inventory, &sel);
                    if names.is_empty() {
                        eprint_diagnostics(&[Diagnostic::new(
                            Code::NoHosts,
                            format!("`{arg}` selects no target; the selection is unchanged"),
                        )
                        .severity(Severity::Warning)
                        .help("`:on` alone shows the selection")]);
                    } else {
                        write_stdout(&format!(
                            "{}: {}\n",
                            plural(names.len(), "target"),
                            names.join(", ")
                        ));
                        session.select(names);
                    }
                }
                Err(e) => eprint_diagnostics(&[Diagnostic::new(Code::Selector, e.to_string())
                    .help("selectors (spec §5): `k=v`, `k!=v`, `k in (a,b)`, `k`, `!k`, `name~web-*`; `,` is AND")]),
            },
            "load" if arg.is_empty() => write_stdout("usage: :load FILE.star\n"),
            "load" => {
                let r = session.load(arg);
                self.show(r);
            }
            "paste" => {}
            "clear" => {
                session.clear();
                write_stdout("scratch graph cleared\n");
            }
            "graph" => {
                let checked = crate::check::analyze(session.scratch(), std::time::Instant::now());
                eprint_diagnostics(&checked.diagnostics);
                write_stdout(&graph_text(&checked.graph));
            }
            "plan" => self.plan(session),
            "doc" if arg.is_empty() => {
                write_stdout("usage: :doc NAME (a built-in or a resource type)\n")
            }
            "doc" => {
                let docs = crate::eval::repl::globals().documentation();
                match super::doc::page(self.engine.registry, &docs, arg) {
                    Ok(page) => write_stdout(&page),
                    Err(e) => eprintln!("{e}"),
                }
            }
            other => eprintln!("unknown command `:{other}`; :help lists them"),
        }
        true
    }

    fn plan(&self, session: &Session<'_, '_>) {
        if session.scratch_len() == 0 {
            write_stdout(
                "the scratch graph is empty: declare resources first (`:graph` shows them)\n",
            );
            return;
        }
        let checked = crate::check::analyze(session.scratch(), std::time::Instant::now());
        eprint_diagnostics(&checked.diagnostics);
        if checked.has_errors() {
            return;
        }
        let plan = crate::plan::plan(
            &self.engine,
            &checked.graph,
            "<repl>",
            &crate::plan::PlanOptions::default(),
        );
        eprint_diagnostics(&crate::plan::diagnostics(&plan, &checked.graph));
        write_stdout(&crate::plan::render::text(&plan, true));
    }
}

/// The scratch graph as text: per host, each resource with where it was declared and
/// what it waits for.
fn graph_text(graph: &crate::graph::Graph) -> String {
    use petgraph::visit::EdgeRef;
    let g = &graph.graph;
    if g.node_count() == 0 {
        return "the scratch graph is empty\n".into();
    }
    let mut hosts: Vec<&str> = g.node_weights().map(|r| r.host.as_str()).collect();
    hosts.sort();
    hosts.dedup();
    let mut out = String::new();
    for host in hosts {
        out.push_str(&format!("{host}\n"));
        for n in g.node_indices().filter(|&n| g[n].host == host) {
            let r = &g[n];
            let at = r
                .span
                .as_ref()
                .map(|s| format!("  ({}:{})", s.filename(), s.resolve_span().begin.line + 1))
                .unwrap_or_default();
            out.push_str(&format!("  {}{at}\n", r.id));
            for e in g.edges_directed(n, petgraph::Direction::Incoming) {
                let from = &g[e.source()].id;
                out.push_str(&match e.weight().kind {
                    crate::graph::EdgeKind::Notify => format!("    notified by {from}\n"),
                    kind => format!("    after {from} ({})\n", kind.as_str()),
                });
            }
        }
    }
    let edges = g.edge_count();
    out.push_str(&format!(
        "{}, {}\n",
        plural(g.node_count(), "resource"),
        plural(edges, "edge")
    ));
    out
}

/// A JSON value in Starlark literal syntax, indented.
fn pretty(v: &Json, indent: usize) -> String {
    let pad = "    ".repeat(indent + 1);
    let end = "    ".repeat(indent);
    match v {
        Json::Null => "None".into(),
        Json::Bool(true) => "True".into(),
        Json::Bool(false) => "False".into(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => Json::String(s.clone()).to_string(),
        Json::Array(items) if items.is_empty() => "[]".into(),
        Json::Object(m) if m.is_empty() => "{}".into(),
        Json::Array(items) => {
            let inner: Vec<String> = items
                .iter()
                .map(|i| format!("{pad}{}", pretty(i, indent + 1)))
                .collect();
            format!("[\n{},\n{end}]", inner.join(",\n"))
        }
        Json::Object(m) => {
            let inner: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{pad}{}: {}",
                        Json::String(k.clone()),
                        pretty(v, indent + 1)
                    )
                })
                .collect();
            format!("{{\n{},\n{end}}}", inner.join(",\n"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_prints_starlark_literals() {
        let v = serde_json::json!({"a": [1, true, null], "b": {}, "c": "x\"y"});
        assert_eq!(
            pretty(&v, 0),
            "{\n    \"a\": [\n        1,\n        True,\n        None,\n    ],\n    \"b\": {},\n    \"c\": \"x\\\"y\",\n}"
        );
    }
}
