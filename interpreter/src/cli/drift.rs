//! `froyo drift [--on SEL] [--remediate]`: re-reads every resource the state says was
//! applied and compares it with the desired state recorded then; `--remediate` applies
//! the fix.

use std::process::ExitCode;

use clap::Args;

use super::write_stdout;
use crate::apply::{ApplyOptions, Outcome};
use crate::engine::Engine;
use crate::error::Error;
use crate::events;
use crate::plan::{HostPlan, Plan, PlanOptions, Status, Unit};
use crate::state::{RunKind, RunStatus};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct DriftArgs {
    #[command(subcommand)]
    verb: Option<DriftVerb>,
    #[command(flatten)]
    opts: DriftOpts,
}

#[derive(Debug, clap::Subcommand)]
enum DriftVerb {
    /// The same as `froyo drift` (the original design's spelling: `drift detect`).
    Detect(DriftOpts),
}

#[derive(Debug, Args)]
pub struct DriftOpts {
    /// Only these targets.
    #[arg(long, value_name = "SELECTOR")]
    on: Option<String>,
    /// Apply what brings drifted resources back to their recorded state.
    #[arg(long)]
    remediate: bool,
    /// The result as the event stream on stdout (NDJSON, `docs/events.md`): the drift
    /// plan, `drift_summary`, then the remediation's events.
    #[arg(long)]
    json: bool,
    /// Targets read at once.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub fn run(args: &DriftArgs) -> Result<ExitCode, Error> {
    let args = match &args.verb {
        Some(DriftVerb::Detect(opts)) => opts,
        None => &args.opts,
    };
    let project = super::cwd_project()?;
    let inventory = crate::inventory::Inventory::load(&project.root, &Default::default())?;
    let selected: Option<Vec<String>> = match &args.on {
        Some(on) => {
            let sel = crate::selector::Selector::parse(on)
                .map_err(|e| Error::Usage(format!("--on: {e}")))?;
            Some(
                inventory
                    .select(&sel)
                    .into_iter()
                    .map(|t| t.name.clone())
                    .collect(),
            )
        }
        None => None,
    };
    let runtime = super::runtime()?;
    let engine = Engine::new(
        project,
        inventory,
        runtime.handle().clone(),
        args.parallelism,
    )?;
    super::set_metrics_group(&engine.project, "(drift)");
    let store = engine.store.clone();
    let records = store.resources(None)?;

    // The recorded resources as plan units, per target, in the order they were recorded.
    let mut hosts: Vec<HostPlan> = Vec::new();
    for r in records {
        if selected.as_ref().is_some_and(|s| !s.contains(&r.target)) {
            continue;
        }
        let unit = Unit {
            id: r.resource.clone(),
            provider: engine
                .provider_of(&r.type_name)
                .unwrap_or_default()
                .to_owned(),
            type_name: r.type_name,
            play: "drift".into(),
            location: format!("recorded by run #{}", r.run.0),
            handler: false,
            sensitive: crate::secrets::is_sensitive(&r.config),
            config: r.config.clone(),
            desired: Some(r.config),
            meta: serde_json::json!({}),
            deps: Vec::new(),
            auto_deps: Vec::new(),
            notifies: Vec::new(),
            status: Status::Unchanged,
            reason: None,
            ops: Vec::new(),
            after_changes: false,
        };
        match hosts.iter_mut().find(|h| h.target == r.target) {
            Some(h) => h.units.push(unit),
            None => hosts.push(HostPlan {
                target: r.target,
                units: vec![unit],
                error: None,
                round_trips: 0,
            }),
        }
    }
    let opts = PlanOptions::default();
    let hosts = crate::plan::parallel_map(&hosts, engine.parallelism, |h| {
        crate::plan::plan_host(&engine, &h.target, h.units.clone(), &opts)
    });
    let plan = Plan {
        version: crate::plan::PLAN_VERSION,
        playbook: "(recorded state)".into(),
        root: Some(engine.project.root.clone()),
        created_ms: crate::state::now_ms(),
        plays: vec!["drift".into()],
        hosts,
        dot: String::new(),
    };
    let drifted = plan.has_changes();
    if args.json {
        let mut out = format!("{}\n", events::version_line());
        let mut all = events::plan_events(&plan, &engine.masker);
        all.push(events::event(
            None,
            None,
            "drift_summary",
            serde_json::json!({"drifted": drifted, "errors": plan.has_errors()}),
        ));
        for e in all {
            out.push_str(&events::line(None, &e));
            out.push('\n');
        }
        write_stdout(&out);
    } else if drifted || plan.has_errors() {
        write_stdout(&crate::plan::render::text(&plan, true));
    } else {
        let n: usize = plan.hosts.iter().map(|h| h.units.len()).sum();
        write_stdout(&format!(
            "No drift: {n} recorded resource(s) on {} target(s) match their last applied state.\n",
            plan.hosts.len()
        ));
    }
    if plan.has_errors() {
        engine.close();
        return Ok(ExitCode::from(1));
    }
    if !(args.remediate && drifted) {
        engine.close();
        return Ok(ExitCode::from(if drifted { 2 } else { 0 }));
    }
    let _lock = store.lock("drift --remediate")?;
    let run = store.begin_run(RunKind::Drift, None)?;
    let progress =
        super::apply::Progress::new(args.json, plan.hosts.iter().map(|h| h.units.len()).sum());
    let recorder = events::Recorder {
        store: &*store,
        run,
        sink: &progress,
    };
    recorder.emit(events::run_started("drift", &plan));
    let report = crate::apply::apply(
        &engine,
        &*store,
        &plan,
        run,
        &ApplyOptions::default(),
        &progress,
    );
    engine.close();
    recorder.emit(events::summary(&report));
    store.finish_run(
        run,
        if report.failed() {
            RunStatus::Failed
        } else {
            RunStatus::Succeeded
        },
    )?;
    progress.done();
    say!(
        "Remediated: {} changed, {} failed (run #{}).",
        report.count(Outcome::Changed),
        report.count(Outcome::Failed),
        report.run
    );
    Ok(ExitCode::from(if report.failed() { 1 } else { 0 }))
}
