//! `froyo graph FILE [--format dot|json]`: the resource graph with labelled edges.
//! Unlike `check`, a playbook that reads `host.facts` gets them live from its targets.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::{EvalArgs, eprint_diagnostics, write_stdout};
use crate::error::Error;
use crate::facts::{Facts, Sessions};
use crate::schema::Registry;
use crate::transport::Connector;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Dot,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    eval: EvalArgs,
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub fn run(args: &GraphArgs) -> Result<ExitCode, Error> {
    let opts = args.eval.options();
    let r = crate::check::resolve(&opts)?;
    let runtime = super::runtime()?;
    // Sessions open only if the playbook reads facts.
    let sessions = Arc::new(Sessions::new(
        Connector::for_project(&r.project.root),
        r.inventory.clone(),
        false,
    ));
    let facts = Arc::new(Facts::new(sessions.clone(), runtime.handle().clone()));
    let registry = Registry::for_project(&r.project)?;
    let checked = crate::check::check_with(
        &r.project,
        &r.inventory,
        registry,
        &opts.file,
        &opts.more,
        r.on,
        Some(facts),
    );
    runtime.block_on(sessions.close_all());
    eprint_diagnostics(&checked.diagnostics);
    if checked.has_errors() {
        return Ok(ExitCode::from(1));
    }
    match args.format {
        Format::Json => write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&checked.graph.to_json()).unwrap_or_default()
        )),
        Format::Dot => write_stdout(&checked.graph.to_dot()),
    }
    Ok(ExitCode::SUCCESS)
}
