//! `froyo graph FILE [--format dot|json]`: the resource graph with labelled edges.

use std::process::ExitCode;

use clap::{Args, ValueEnum};

use super::{EvalArgs, eprint_diagnostics, write_stdout};
use crate::error::Error;

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
    let checked = crate::check::check(&args.eval.options())?;
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
