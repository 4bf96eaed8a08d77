//! `froyo apply FILE | --plan plan.json`: plan, confirm, apply, record. A saved plan is
//! applied exactly and refused when its targets changed since it was made.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{EvalArgs, eprint_diagnostics, write_stdout};
use crate::apply::{ApplyOptions, Observer, Outcome, Report, UnitResult};
use crate::engine::Engine;
use crate::error::Error;
use crate::events;
use crate::plan::{Plan, PlanOptions, Unit};
use crate::state::{Event, RunId, RunKind, RunStatus};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The playbook (`.star`, `.cue` or a directory of `.cue` files); or give `--plan`.
    #[arg(required_unless_present = "plan")]
    file: Option<PathBuf>,
    /// More `.cue` files evaluated with the first as one CUE package (CUE input only).
    #[arg(value_name = "MORE.cue", conflicts_with = "plan")]
    more: Vec<PathBuf>,
    /// Apply exactly this saved plan (`froyo plan --out`), refused if targets changed since.
    /// A saved plan was reviewed when it was made, so it is applied without asking.
    #[arg(long, value_name = "PLAN.json", conflicts_with = "file")]
    plan: Option<PathBuf>,
    /// Targets of the default play.
    #[arg(long, value_name = "SELECTOR")]
    on: Option<String>,
    /// A host var for every target (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Resources applied at once, over all hosts.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
    /// Resources applied at once on one host.
    #[arg(long, default_value_t = 4)]
    per_host: usize,
    /// Only resources with one of these tags.
    #[arg(long, value_delimiter = ',')]
    tags: Vec<String>,
    /// Show unified diffs in the plan.
    #[arg(long)]
    diff: bool,
    /// The event stream on stdout (NDJSON, `docs/events.md`) instead of the plan and summary.
    #[arg(long)]
    json: bool,
    /// Evaluate only the project's policies, not the bundled ones.
    #[arg(long)]
    no_bundled_policies: bool,
    /// Publish the plan's hosts on this work queue (`nats://HOST:PORT`, else
    /// `FROYO_QUEUE_URL`, else `[queue] url`) for `froyo worker`s to apply, and follow
    /// them; needs the state on PostgreSQL.
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
}

pub fn run(args: &ApplyArgs) -> Result<ExitCode, Error> {
    let runtime = super::runtime()?;
    let (engine, plan) = match (&args.plan, &args.file) {
        (Some(saved), _) => match replan_saved(saved, args, &runtime)? {
            Some(x) => x,
            None => return Ok(ExitCode::from(1)),
        },
        (None, Some(file)) => {
            let eval = EvalArgs {
                file: file.clone(),
                more: args.more.clone(),
                on: args.on.clone(),
                vars: args.vars.clone(),
            };
            let settings = super::plan::PlanSettings {
                tags: args.tags.clone(),
                parallelism: args.parallelism,
                no_bundled_policies: args.no_bundled_policies,
            };
            match super::plan::evaluate_and_plan(&eval, &settings, &runtime)? {
                Some(p) if p.denied => {
                    p.engine.close();
                    say!("Apply refused: a policy denies this plan (E-POLICY above).");
                    return Ok(ExitCode::from(1));
                }
                Some(p) => (p.engine, p.plan),
                None => return Ok(ExitCode::from(1)),
            }
        }
        (None, None) => return Err(Error::Usage("give a playbook or --plan FILE".into())),
    };
    let result = apply_plan(&engine, &plan, args);
    engine.close();
    result
}

/// Re-reads the targets of a saved plan and keeps it only if every resource would still
/// get exactly the planned operations.
fn replan_saved(
    path: &std::path::Path,
    args: &ApplyArgs,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<(Engine, Plan)>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let saved = Plan::from_saved(path, &text)?;
    let cwd = std::env::current_dir().map_err(|e| Error::Io {
        path: ".".into(),
        source: e,
    })?;
    let project = match &saved.root {
        Some(root) if root.is_dir() => crate::project::Project::at(root.clone())?,
        _ => crate::project::Project::discover_dir(&cwd)?,
    };
    let inventory = crate::inventory::Inventory::load(&project.root, &Default::default())?;
    let engine = Engine::new(
        project,
        inventory,
        runtime.handle().clone(),
        args.parallelism,
    )?;
    let opts = PlanOptions {
        tags: args.tags.clone(),
    };
    let fresh_hosts = crate::plan::parallel_map(&saved.hosts, engine.parallelism, |h| {
        crate::plan::plan_host(&engine, &h.target, h.units.clone(), &opts)
    });
    let mut drifted = Vec::new();
    for (old, new) in saved.hosts.iter().zip(&fresh_hosts) {
        if let Some(e) = &new.error {
            drifted.push(format!("{}: {e}", new.target));
            continue;
        }
        for (a, b) in old.units.iter().zip(&new.units) {
            let fa: Vec<&str> = a.ops.iter().map(|o| o.fingerprint.as_str()).collect();
            let fb: Vec<&str> = b.ops.iter().map(|o| o.fingerprint.as_str()).collect();
            if a.status != b.status || fa != fb {
                drifted.push(format!(
                    "{} {}: planned {:?}, now {:?}{}",
                    new.target,
                    a.id,
                    a.status,
                    b.status,
                    b.reason
                        .as_deref()
                        .map(|r| format!(" ({r})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if !drifted.is_empty() {
        engine.close();
        eprint_diagnostics(&[crate::diag::Diagnostic::new(
            crate::diag::Code::Target,
            format!(
                "the targets changed since the plan was made:\n{}",
                drifted.join("\n")
            ),
        )
        .help("run `froyo plan --out FILE` again and review the new plan")]);
        return Ok(None);
    }
    let plan = Plan {
        hosts: fresh_hosts,
        ..saved
    };
    Ok(Some((engine, plan)))
}

fn apply_plan(engine: &Engine, plan: &Plan, args: &ApplyArgs) -> Result<ExitCode, Error> {
    if args.json {
        write_stdout(&format!("{}\n", events::version_line()));
    } else {
        write_stdout(&crate::plan::render::text(plan, args.diff));
    }
    if plan.has_errors() {
        if args.json {
            // No run begins: the plan's events are the whole stream.
            for e in events::plan_events(plan, &engine.masker) {
                write_stdout(&format!("{}\n", events::line(None, &e)));
            }
        }
        return Ok(ExitCode::from(1));
    }
    // The cluster profile: refused before asking when the queue cannot work.
    let queued = match crate::queue::settings(&engine.project, args.queue.as_deref())? {
        Some(settings) => {
            let state = crate::queue::shared_state(&engine.project, None)?;
            let queue = crate::queue::connect(&settings, &state)?;
            Some((state, queue, queue_inputs(engine, args)?))
        }
        None => None,
    };
    // A saved plan is the reviewed artefact (`plan --out`, then `apply --plan`): applying
    // it is the confirmation, as with `terraform apply PLANFILE`.
    if !args.yes && args.plan.is_none() && !confirm()? {
        say!("Apply cancelled.");
        return Ok(ExitCode::from(1));
    }
    let store = &*engine.store;
    // Per target: with a shared state, applies on other targets go on meanwhile.
    let targets: Vec<String> = plan.hosts.iter().map(|h| h.target.clone()).collect();
    let _lock = store.lock_targets("apply", &targets)?;
    for run in store.reap_interrupted()? {
        tracing::warn!(
            "run #{} was interrupted; this apply finishes its work",
            run.0
        );
    }
    let run = store.begin_run(RunKind::Apply, Some(&plan.playbook))?;
    tracing::Span::current().record("run", run.0);
    let units: Vec<crate::state::PlanUnit> = plan
        .hosts
        .iter()
        .flat_map(|h| {
            h.units.iter().map(|u| crate::state::PlanUnit {
                target: h.target.clone(),
                resource: u.id.clone(),
                kind: u.kind().to_owned(),
                summary: u
                    .ops
                    .iter()
                    .map(|o| o.summary.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
                status: "planned".into(),
            })
        })
        .collect();
    store.put_plan_units(run, &units)?;
    store.audit(
        "apply",
        &serde_json::json!({"run": run.0, "playbook": plan.playbook}),
    )?;
    for h in &plan.hosts {
        let address = engine
            .inventory
            .targets
            .iter()
            .find(|t| t.name == h.target)
            .map(|t| t.address.clone())
            .unwrap_or_default();
        store.touch_target(&h.target, &address)?;
    }
    let total: usize = plan.hosts.iter().map(|h| h.units.len()).sum();
    let observer = Progress::new(args.json, total);
    let recorder = events::Recorder {
        store,
        run,
        sink: &observer,
    };
    recorder.emit(events::run_started("apply", plan));
    for e in events::plan_events(plan, &engine.masker) {
        recorder.emit(e);
    }
    let started = std::time::Instant::now();
    // A solo apply stops cleanly on SIGINT/SIGTERM (a queued run's hosts belong to the
    // workers, which stop on their own signals).
    let interrupt = queued
        .is_none()
        .then(|| super::interrupt::Interrupt::watch(engine.store.clone(), run));
    let report = match &queued {
        Some((state, queue, inputs)) => crate::queue::controller::publish_and_follow(
            state,
            queue,
            plan,
            run,
            inputs,
            &observer,
            &|line| say!("{line}"),
        )?,
        None => crate::apply::apply(
            engine,
            store,
            plan,
            run,
            &ApplyOptions {
                per_host: args.per_host,
                stop: interrupt.as_ref().map(|i| i.stop.clone()),
            },
            &observer,
        ),
    };
    observer.done();
    froyo_telemetry::metrics::global().phase("apply", started.elapsed());
    // Recorded before the run is finished: `froyo events --follow` stops at the status.
    recorder.emit(events::summary(&report));
    let signal = interrupt.as_ref().and_then(|i| i.signal());
    let status = if signal.is_some() {
        RunStatus::Interrupted
    } else if report.failed() {
        RunStatus::Failed
    } else {
        RunStatus::Succeeded
    };
    store.finish_run(run, status)?;
    if !args.json {
        froyo_telemetry::logs::message("INFO", "froyo::cli", &summary(&report));
    }
    if let (Some(n), Some(i)) = (signal, &interrupt) {
        say!(
            "Run #{} interrupted by {}: {} resource(s) not started; the next apply resumes.",
            run.0,
            i.signal_name().unwrap_or("a signal"),
            report
                .results
                .iter()
                .filter(|r| r.outcome == Outcome::Skipped
                    && r.message
                        .as_deref()
                        .is_some_and(|m| m.contains("interrupted")))
                .count()
        );
        return Ok(ExitCode::from(u8::try_from(128 + n).unwrap_or(1)));
    }
    Ok(ExitCode::from(if report.failed() { 1 } else { 0 }))
}

/// What the work items say besides the plan: the playbook and its inputs, named from the
/// project root (a worker's copy of the project may live elsewhere).
fn queue_inputs(
    engine: &Engine,
    args: &ApplyArgs,
) -> Result<crate::queue::controller::Inputs, Error> {
    let Some(file) = &args.file else {
        return Err(Error::Usage(
            "`--queue` applies a playbook, not a saved plan: workers evaluate the playbook themselves".into(),
        ));
    };
    let rel = |p: &std::path::Path| -> Result<PathBuf, Error> {
        let real = std::fs::canonicalize(p).map_err(|e| Error::Io {
            path: p.to_owned(),
            source: e,
        })?;
        real.strip_prefix(&engine.project.root)
            .map(std::path::Path::to_path_buf)
            .map_err(|_| Error::Usage(format!("`{}` is outside the project", p.display())))
    };
    Ok(crate::queue::controller::Inputs {
        playbook: rel(file)?,
        more: args.more.iter().map(|p| rel(p)).collect::<Result<_, _>>()?,
        on: args.on.clone(),
        vars: args.vars.clone(),
        tags: args.tags.clone(),
    })
}

/// Asks on the terminal; refuses when there is no one to ask.
fn confirm() -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "stdin is not a terminal, so there is no one to confirm: pass --yes to apply".into(),
        ));
    }
    eprint!("Apply these changes? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("reading the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

fn summary(r: &Report) -> String {
    let mut out = String::new();
    for f in r.results.iter().filter(|x| x.outcome == Outcome::Failed) {
        let message = f.message.as_deref().unwrap_or("");
        if f.error_class.as_deref() == Some("target") {
            let reason = message
                .strip_prefix("the target was lost: ")
                .unwrap_or(message);
            out.push_str(&format!(
                "error[E-TARGET]: target `{}` was lost during {}: {reason}\n  at {}\n  \
                 help: its remaining resources were skipped and its handlers stay pending; \
                 what was done is recorded, so once the host is back the next apply finishes it\n",
                f.target, f.id, f.location
            ));
            continue;
        }
        out.push_str(&format!(
            "error[E-PROVIDER]: {} on `{}` failed: {message}\n  at {}\n",
            f.id, f.target, f.location
        ));
    }
    let rt: Vec<String> = r
        .round_trips
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect();
    out.push_str(&format!(
        "Apply: {} changed, {} unchanged, {} failed, {} skipped in {:.1}s (run #{}; round trips: {}).\n",
        r.count(Outcome::Changed),
        r.count(Outcome::Unchanged),
        r.count(Outcome::Failed),
        r.count(Outcome::Skipped),
        r.elapsed_ms as f64 / 1000.0,
        r.run,
        rt.join(", ")
    ));
    out
}

/// Progress: a bar on a terminal, a line on stderr per resource that changed, failed or
/// was skipped, or every step as a JSON line on stdout with `--json`.
pub(super) struct Progress {
    json: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub(super) fn new(json: bool, total: usize) -> Progress {
        let bar = (!json && !froyo_telemetry::logs::json() && std::io::stderr().is_terminal())
            .then(|| {
                let bar = indicatif::ProgressBar::new(total as u64);
                if let Ok(style) =
                    indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} resources {msg}")
                {
                    bar.set_style(style);
                }
                bar
            });
        Progress { json, bar }
    }

    pub(super) fn done(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl events::Sink for Progress {
    fn event(&self, run: Option<RunId>, e: &Event) {
        if self.json {
            write_stdout(&format!("{}\n", events::line(run, e)));
        }
    }
}

impl Observer for Progress {
    fn started(&self, target: &str, unit: &Unit) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{target} {}", unit.id));
        }
    }

    fn finished(&self, r: &UnitResult) {
        if self.json {
            return;
        }
        if let Some(b) = &self.bar {
            b.inc(1);
        }
        let (mark, word) = match r.outcome {
            Outcome::Changed => ("✓", "changed"),
            Outcome::Failed => ("✗", "failed"),
            Outcome::Skipped => ("⊘", "skipped"),
            Outcome::Unchanged => return,
        };
        let msg = r
            .message
            .as_deref()
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        let line = format!(
            "  {mark} {} {} {word}{msg} ({} ms)",
            r.target, r.id, r.duration_ms
        );
        match &self.bar {
            Some(b) => b.println(line),
            None => say!("{line}"),
        }
    }
}
