//! `froyo import ansible SOURCE --out DIR`: converts an Ansible playbook or role with the
//! `froyo-import` library and prints what it did (a summary, or the report as JSON).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::error::Error;

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    what: ImportWhat,
}

#[derive(Debug, Subcommand)]
enum ImportWhat {
    /// Convert an Ansible playbook (`site.yml`) or role directory into a froyo project.
    Ansible(AnsibleArgs),
}

#[derive(Debug, Args)]
pub struct AnsibleArgs {
    /// The playbook (a YAML list of plays) or a role directory (with `tasks/main.yml`).
    source: PathBuf,
    /// Where to write the project (created if missing; files of the same names are
    /// replaced).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Another directory to find roles in, after the playbook's `roles/` (repeatable).
    #[arg(long = "roles-path", value_name = "DIR")]
    roles_path: Vec<PathBuf>,
    /// Write the placeholders of unconverted tasks as warnings (W-IMPORT, skipped)
    /// instead of errors (E-IMPORT, failing `froyo check`).
    #[arg(long)]
    allow_unconverted: bool,
    /// Print the report (`import-report.json`) instead of the summary.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ImportArgs) -> Result<ExitCode, Error> {
    let ImportWhat::Ansible(a) = &args.what;
    let opts = froyo_import::Options {
        source: a.source.clone(),
        roles_path: a.roles_path.clone(),
        out: a.out.clone(),
        allow_unconverted: a.allow_unconverted,
    };
    let report = match froyo_import::import_ansible(&opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            return Ok(ExitCode::from(1));
        }
    };
    if a.json {
        super::write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let mut s = String::new();
    for u in &report.units {
        s.push_str(&format!(
            "{:<8} {:<32} {:>4}/{:<4} tasks converted ({:.1} %) → {}\n",
            u.kind,
            u.name,
            u.converted,
            u.tasks,
            u.coverage * 100.0,
            u.output
        ));
    }
    s.push_str(&format!(
        "Converted {} of {} tasks ({:.1} %) into {}; see IMPORT.md.\n",
        report.converted,
        report.tasks,
        report.coverage * 100.0,
        a.out.display()
    ));
    if report.converted < report.tasks {
        s.push_str(&format!(
            "{} placeholder(s) {} `froyo check` until rewritten by hand.\n",
            report.tasks - report.converted,
            if a.allow_unconverted {
                "warn in"
            } else {
                "fail"
            }
        ));
    }
    super::write_stdout(&s);
    Ok(ExitCode::SUCCESS)
}
