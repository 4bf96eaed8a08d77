//! `froyo run FILE.star`: a runbook — the same evaluation, plan and apply, without state
//! tracking (nothing is recorded in the project's state, and no confirmation is asked:
//! running a runbook is the request).

use std::process::ExitCode;

use clap::Args;

use super::{EvalArgs, write_stdout};
use crate::apply::{ApplyOptions, Outcome};
use crate::error::Error;
use crate::state::{RunKind, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// Resources applied at once, over all hosts.
    #[arg(long, default_value_t = 10)]
    parallelism: usize,
}

pub fn run(args: &RunArgs) -> Result<ExitCode, Error> {
    let runtime = super::runtime()?;
    let settings = super::plan::PlanSettings {
        parallelism: args.parallelism,
        ..Default::default()
    };
    let Some(super::plan::Planned {
        engine,
        plan,
        denied,
    }) = super::plan::evaluate_and_plan(&args.eval, &settings, &runtime)?
    else {
        return Ok(ExitCode::from(1));
    };
    if denied {
        engine.close();
        say!("Run refused: a policy denies it (E-POLICY above).");
        return Ok(ExitCode::from(1));
    }
    write_stdout(&crate::plan::render::text(&plan, false));
    if plan.has_errors() {
        engine.close();
        return Ok(ExitCode::from(1));
    }
    // The scheduler records its steps in a store; a throwaway one keeps the project's
    // state untouched.
    let scratch = std::env::temp_dir().join(format!(
        "froyo-run-{}-{}",
        std::process::id(),
        crate::state::now_ms()
    ));
    std::fs::create_dir_all(&scratch).map_err(|e| Error::Io {
        path: scratch.clone(),
        source: e,
    })?;
    let result = (|| {
        let store = SqliteStore::open(&scratch.join("run.db"))?;
        let run = store.begin_run(RunKind::Run, Some(&plan.playbook))?;
        let progress =
            super::apply::Progress::new(false, plan.hosts.iter().map(|h| h.units.len()).sum());
        let report = crate::apply::apply(
            &engine,
            &store,
            &plan,
            run,
            &ApplyOptions::default(),
            &progress,
        );
        progress.done();
        say!(
            "Run: {} changed, {} unchanged, {} failed, {} skipped.",
            report.count(Outcome::Changed),
            report.count(Outcome::Unchanged),
            report.count(Outcome::Failed),
            report.count(Outcome::Skipped)
        );
        Ok::<_, Error>(report.failed())
    })();
    engine.close();
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(ExitCode::from(if result? { 1 } else { 0 }))
}
