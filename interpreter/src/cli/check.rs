//! `froyo check FILE`: evaluate + validate offline; exit 0 when clean, 1 on any error.

use std::process::ExitCode;

use clap::Args;

use super::{EvalArgs, eprint_diagnostics, write_stdout};
use crate::diag::Code;
use crate::error::Error;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// Print the diagnostics as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Report only what the policies find (errors that stop evaluation still show).
    #[arg(long)]
    policy_only: bool,
    /// Evaluate only the project's policies (`policies/*.rego`), not the bundled ones.
    #[arg(long)]
    no_bundled_policies: bool,
}

pub fn run(args: &CheckArgs) -> Result<ExitCode, Error> {
    let file = args.eval.file.display().to_string();
    let opts = crate::check::CheckOptions {
        no_bundled_policies: args.no_bundled_policies,
        ..args.eval.options()
    };
    let checked = match crate::check::check(&opts) {
        Ok(c) => c,
        Err(e) if args.json => {
            let out = serde_json::json!({"file": file, "ok": false, "resources": 0, "diagnostics": [e.to_diagnostic().to_json()]});
            write_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&out).unwrap_or_default()
            ));
            return Ok(ExitCode::from(1));
        }
        Err(e) => return Err(e),
    };
    if std::env::var_os("FROYO_TIMINGS").is_some() {
        let t = checked.timings;
        say!(
            "timings: eval {:.3}s (peak RSS {} MiB), CUE validation {:.3}s (peak RSS {} MiB), graph {:.3}s, policies {:.3}s",
            t.eval.as_secs_f64(),
            t.peak_rss_after_eval_kib / 1024,
            t.validate.as_secs_f64(),
            t.peak_rss_after_validate_kib / 1024,
            t.graph.as_secs_f64(),
            t.policy.as_secs_f64()
        );
    }
    let mut checked = checked;
    if args.policy_only && !checked.has_errors() {
        checked
            .diagnostics
            .retain(|d| matches!(d.code, Code::Policy | Code::PolicyWarn));
    }
    for p in &checked.prints {
        say!("{p}");
    }
    let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = checked.diagnostics.len() - errors;
    let resources = checked.graph.graph.node_count();
    if args.json {
        let out = serde_json::json!({
            "file": file,
            "ok": errors == 0,
            "resources": resources,
            "diagnostics": checked.diagnostics.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        });
        write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&out).unwrap_or_default()
        ));
    } else {
        eprint_diagnostics(&checked.diagnostics);
        let hosts: std::collections::BTreeSet<&str> =
            checked.graph.resources().map(|r| r.host.as_str()).collect();
        if errors == 0 {
            say!(
                "✓ {file}: {resources} resource{} on {} host{}{}",
                plural(resources),
                hosts.len(),
                plural(hosts.len()),
                if warnings > 0 {
                    format!(", {warnings} warning{}", plural(warnings))
                } else {
                    String::new()
                }
            );
        } else {
            say!(
                "✗ {file}: {errors} error{}, {warnings} warning{}",
                plural(errors),
                plural(warnings)
            );
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
