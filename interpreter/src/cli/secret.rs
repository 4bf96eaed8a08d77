//! `froyo secret set|get|list|rm`: manage the project's age-encrypted secret store
//! (`secrets.age`), read by playbooks as `secret("file://secrets.age#NAME")`.

use std::io::Read;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use super::write_stdout;
use crate::error::Error;
use crate::secrets::store;

#[derive(Debug, Args)]
pub struct SecretArgs {
    /// The store, relative to the project root.
    #[arg(long, global = true, default_value = store::DEFAULT_FILE, value_name = "FILE")]
    file: String,
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Set NAME to the value read from stdin (one trailing newline is dropped).
    Set { name: String },
    /// Print the value of NAME on stdout.
    Get { name: String },
    /// List the names in the store (never the values).
    List,
    /// Remove NAME.
    Rm { name: String },
}

fn usage(e: String) -> Error {
    Error::Usage(e)
}

pub fn run(args: &SecretArgs) -> Result<ExitCode, Error> {
    let project = super::cwd_project()?;
    let root = &project.root;
    let name_ok = |name: &str| -> Result<(), Error> {
        if store::valid_name(name) {
            Ok(())
        } else {
            Err(usage(format!(
                "`{name}` is not a secret name: use letters, digits, `_`, `-` and `.`"
            )))
        }
    };
    let mut secrets = store::load(root, &args.file).map_err(usage)?;
    match &args.command {
        SecretCommand::Set { name } => {
            name_ok(name)?;
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .map_err(|e| usage(format!("cannot read the value from stdin: {e}")))?;
            if value.ends_with('\n') {
                value.pop();
                if value.ends_with('\r') {
                    value.pop();
                }
            }
            if value.is_empty() {
                return Err(usage("the value on stdin is empty".into()));
            }
            let existed = secrets.insert(name.clone(), value).is_some();
            store::save(root, &args.file, &secrets).map_err(usage)?;
            audit(root, "secret.set", name, &args.file);
            say!(
                "{} `{name}` in {}.",
                if existed { "Updated" } else { "Added" },
                args.file
            );
        }
        SecretCommand::Get { name } => match secrets.get(name) {
            Some(v) => write_stdout(&format!("{v}\n")),
            None => return Err(usage(format!("`{}` has no secret `{name}`", args.file))),
        },
        SecretCommand::List => {
            let names: String = secrets.keys().map(|k| format!("{k}\n")).collect();
            write_stdout(&names);
        }
        SecretCommand::Rm { name } => {
            if secrets.remove(name).is_none() {
                return Err(usage(format!("`{}` has no secret `{name}`", args.file)));
            }
            store::save(root, &args.file, &secrets).map_err(usage)?;
            audit(root, "secret.rm", name, &args.file);
            say!("Removed `{name}` from {}.", args.file);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Records who changed which secret (the name, never the value) when the project has a
/// state database.
fn audit(root: &std::path::Path, what: &str, name: &str, file: &str) {
    if let Ok(project) = crate::project::Project::at(root.to_owned())
        && let Ok(Some(store)) = crate::state::open_existing(&project)
    {
        let _ = store.audit(what, &serde_json::json!({"name": name, "file": file}));
    }
}
