//! `froyo policy test [DIR]`: runs the Rego unit tests (`test_` rules) of a policy
//! directory, like `opa test`; `froyo policy input FILE`: prints the input document the
//! policies see for a playbook (to write rules against, or to feed `opa eval -i`).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::{EvalArgs, eprint_diagnostics, write_stdout};
use crate::error::Error;

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run the `test_` rules of the `.rego` files under DIR (default `policies/`).
    Test {
        dir: Option<PathBuf>,
        /// Print every test, not only failures (`opa test -v`; `-v` is the global log level here).
        #[arg(long)]
        all: bool,
    },
    /// Print the policy input document of a playbook (`froyo check`'s, as JSON).
    Input {
        #[command(flatten)]
        eval: EvalArgs,
    },
}

pub fn run(args: &PolicyArgs) -> Result<ExitCode, Error> {
    let (dir, all) = match &args.command {
        PolicyCommand::Test { dir, all } => (dir, all),
        PolicyCommand::Input { eval } => return input(eval),
    };
    let dir = dir.clone().unwrap_or_else(|| PathBuf::from("policies"));
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "`{}` is not a directory of .rego files",
            dir.display()
        )));
    }
    let results = crate::policy::run_tests(&dir)?;
    let mut out = String::new();
    for r in &results {
        if !r.passed || *all {
            out.push_str(&format!(
                "{}: {} {}{}\n",
                r.file,
                r.name,
                if r.passed { "PASS" } else { "FAIL" },
                r.error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ));
        }
    }
    let failed = results.iter().filter(|r| !r.passed).count();
    if results.is_empty() {
        out.push_str("no tests found (rules named test_… in *_test.rego)\n");
    } else if failed == 0 {
        out.push_str(&format!("PASS: {}/{}\n", results.len(), results.len()));
    } else {
        out.push_str(&format!("FAIL: {failed}/{} failed\n", results.len()));
    }
    write_stdout(&out);
    Ok(if failed == 0 && !results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `froyo policy input FILE`: the document `input` of the policies, after evaluation and
/// validation (exit 1, with the diagnostics, when those fail).
fn input(eval: &EvalArgs) -> Result<ExitCode, Error> {
    let opts = eval.options();
    let r = crate::check::resolve(&opts)?;
    let registry = crate::schema::Registry::for_project(&r.project)?;
    let checked = crate::check::check_with(
        &r.project,
        &r.inventory,
        registry,
        &opts.file,
        &opts.more,
        r.on,
        None,
    );
    if checked.has_errors() {
        eprint_diagnostics(&checked.diagnostics);
        return Ok(ExitCode::from(1));
    }
    let doc = crate::policy::input(&checked.graph, &r.inventory, None);
    write_stdout(&format!(
        "{}\n",
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    ));
    Ok(ExitCode::SUCCESS)
}
