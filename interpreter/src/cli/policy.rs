//! `froyo policy test [DIR]`: runs the Rego unit tests (`test_` rules) of a policy
//! directory, like `opa test`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::write_stdout;
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
}

pub fn run(args: &PolicyArgs) -> Result<ExitCode, Error> {
    let PolicyCommand::Test { dir, all } = &args.command;
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
