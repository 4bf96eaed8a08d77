//! `froyo plan FILE`: evaluate, read every target, and show what `apply` would change
//! (spec §8); `--out` saves the plan for `froyo apply --plan`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::{EvalArgs, eprint_diagnostics, write_stdout};
use crate::engine::Engine;
use crate::error::Error;
use crate::plan::{Plan, PlanOptions};

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub eval: EvalArgs,
    /// Save the plan (JSON, versioned) for `froyo apply --plan FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Show unified diffs of content changes.
    #[arg(long)]
    pub diff: bool,
    /// Exit 0 when nothing would change, 2 when something would, 1 on errors.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// The plan as the event stream on stdout (NDJSON, `docs/events.md`); `--out` saves
    /// the whole plan document.
    #[arg(long)]
    pub json: bool,
    /// Only resources with one of these tags.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Hosts planned at once.
    #[arg(long, default_value_t = 10)]
    pub parallelism: usize,
    /// Evaluate only the project's policies, not the bundled ones.
    #[arg(long)]
    pub no_bundled_policies: bool,
}

/// Evaluates the playbook with live facts and plans it; `None` when evaluation failed
/// (its diagnostics are printed).
/// What a plan is made with besides the playbook.
#[derive(Debug, Clone, Default)]
pub(crate) struct PlanSettings {
    pub tags: Vec<String>,
    pub parallelism: usize,
    pub no_bundled_policies: bool,
}

/// A plan and what the policies said of it.
pub(crate) struct Planned {
    pub engine: Engine,
    pub plan: Plan,
    /// A policy denied something (its diagnostics are printed).
    pub denied: bool,
}

pub(crate) fn evaluate_and_plan(
    eval: &EvalArgs,
    settings: &PlanSettings,
    runtime: &tokio::runtime::Runtime,
) -> Result<Option<Planned>, Error> {
    let (tags, parallelism) = (&settings.tags, settings.parallelism);
    let opts = eval.options();
    let r = crate::check::resolve(&opts)?;
    let engine = Engine::new(
        r.project.clone(),
        r.inventory.clone(),
        runtime.handle().clone(),
        parallelism,
    )?;
    let checked = crate::check::check_with(
        &r.project,
        &r.inventory,
        engine.registry,
        &opts.file,
        &opts.more,
        r.on,
        Some(engine.facts()),
    );
    let metrics = froyo_telemetry::metrics::global();
    metrics.phase("evaluate", checked.timings.eval);
    metrics.phase("validate", checked.timings.validate);
    eprint_diagnostics(&checked.diagnostics);
    if checked.has_errors() {
        engine.close();
        return Ok(None);
    }
    let playbook = r
        .project
        .display_name(&std::fs::canonicalize(&opts.file).map_err(|e| Error::Io {
            path: opts.file.clone(),
            source: e,
        })?);
    super::set_metrics_group(&r.project, &playbook);
    let policies = crate::policy::Policies::for_project(&r.project, !settings.no_bundled_policies)?;
    let started = std::time::Instant::now();
    let plan = crate::plan::plan(
        &engine,
        &checked.graph,
        &playbook,
        &PlanOptions {
            tags: tags.to_vec(),
        },
    );
    metrics.phase("plan", started.elapsed());
    eprint_diagnostics(&crate::plan::diagnostics(&plan, &checked.graph));
    let started = std::time::Instant::now();
    let findings = policies.evaluate(&crate::policy::input(
        &checked.graph,
        &r.inventory,
        Some(&plan),
    ))?;
    metrics.phase("policy", started.elapsed());
    metrics.policy_denials(findings.iter().filter(|f| f.deny).count() as u64);
    eprint_diagnostics(&crate::policy::diagnostics(&findings, &checked.graph));
    Ok(Some(Planned {
        engine,
        plan,
        denied: findings.iter().any(|f| f.deny),
    }))
}

/// Writes the plan file, private to the user (it names every managed resource).
pub(crate) fn save(plan: &Plan, path: &std::path::Path) -> Result<(), Error> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let text = serde_json::to_string_pretty(plan).unwrap_or_default();
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })
}

pub fn run(args: &PlanArgs) -> Result<ExitCode, Error> {
    let runtime = super::runtime()?;
    let settings = PlanSettings {
        tags: args.tags.clone(),
        parallelism: args.parallelism,
        no_bundled_policies: args.no_bundled_policies,
    };
    let Some(Planned {
        engine,
        plan,
        denied,
    }) = evaluate_and_plan(&args.eval, &settings, &runtime)?
    else {
        return Ok(ExitCode::from(1));
    };
    engine.close();
    if let Some(out) = &args.out {
        if denied {
            // `apply --plan` does not evaluate policies again: a denied plan is never saved.
            say!(
                "plan not saved to {}: a policy denies it (see E-POLICY above)",
                out.display()
            );
        } else {
            save(&plan, out)?;
        }
    }
    if args.json {
        let mut out = format!("{}\n", crate::events::version_line());
        for e in crate::events::plan_events(&plan, &engine.masker) {
            out.push_str(&crate::events::line(None, &e));
            out.push('\n');
        }
        write_stdout(&out);
    } else {
        write_stdout(&crate::plan::render::text(&plan, args.diff));
    }
    Ok(ExitCode::from(if plan.has_errors() || denied {
        1
    } else if args.detailed_exitcode && plan.has_changes() {
        2
    } else {
        0
    }))
}
