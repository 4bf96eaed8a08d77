//! `froyo doc [NAME]`: resource types with their fields, defaults and docs (from the CUE
//! schemas), and the core built-ins (from their doc comments).

pub(crate) mod markdown;

use std::fmt::Write as _;
use std::process::ExitCode;

use clap::Args;

use super::write_stdout;
use crate::error::Error;
use crate::schema::{Registry, ResourceType};

#[derive(Debug, Args)]
pub struct DocArgs {
    /// A resource type (`linux.file::file`) or a built-in (`resource`); all when omitted.
    name: Option<String>,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
    /// Write the providers' schemas as the CUE packages `froyo.dev/<provider>` under
    /// DIR/cue.mod (what `.cue` inputs import), so `cue vet` and editors agree with froyo.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "json"])]
    cue_module: Option<std::path::PathBuf>,
    /// Write the book's reference pages (built-ins, stdlib, resource types, the CLI) as
    /// Markdown into DIR: `froyo doc --markdown docs/book/src/reference`.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["name", "json", "cue_module"])]
    markdown: Option<std::path::PathBuf>,
}

pub fn run(args: &DocArgs) -> Result<ExitCode, Error> {
    if let Some(dir) = &args.markdown {
        // The built-in providers only: the pages must not depend on where this runs.
        use clap::CommandFactory;
        let written = markdown::write(dir, super::Cli::command())?;
        let list: Vec<String> = written
            .iter()
            .map(|p| format!("  {}\n", p.display()))
            .collect();
        write_stdout(&format!(
            "Wrote {} reference pages:\n{}",
            written.len(),
            list.concat()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    // The project of the current directory may add providers of its own.
    let reg = Registry::for_project(&super::cwd_project()?)?;
    if let Some(dir) = &args.cue_module {
        let written = crate::frontend_cue::write_module(reg, dir).map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
        let list: Vec<String> = written
            .iter()
            .map(|p| format!("  {}\n", p.display()))
            .collect();
        write_stdout(&format!(
            "Wrote {} file{} (import \"{}\" and the like):\n{}",
            written.len(),
            if written.len() == 1 { "" } else { "s" },
            crate::frontend_cue::import_path("linux.pkg"),
            list.concat()
        ));
        return Ok(ExitCode::SUCCESS);
    }
    let builtins = crate::eval::globals().documentation();
    match &args.name {
        None if args.json => {
            let types: Vec<_> = reg.types().map(|t| type_json(t)).collect();
            write_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&serde_json::json!({"types": types}))
                    .unwrap_or_default()
            ));
        }
        None => write_stdout(&overview(reg)),
        Some(name) => {
            if let (Some(t), true) = (reg.get(name), args.json) {
                write_stdout(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&type_json(t)).unwrap_or_default()
                ));
            } else {
                write_stdout(&page(reg, &builtins, name).map_err(Error::Usage)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The doc page of a resource type or a built-in of `builtins`, or why there is none.
pub(crate) fn page(
    reg: &Registry,
    builtins: &starlark::docs::DocModule,
    name: &str,
) -> Result<String, String> {
    if let Some(t) = reg.get(name) {
        Ok(type_page(t))
    } else if let Some(item) = builtins.members.get(name) {
        Ok(format!("{}\n", item.render_as_code(name)))
    } else {
        let mut names: Vec<&str> = reg.types().map(|t| t.name.as_str()).collect();
        names.extend(builtins.members.keys().map(String::as_str));
        let hint = crate::util::did_you_mean(name, names.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        Err(format!(
            "no resource type or built-in named `{name}`; {hint}`froyo doc` lists them all"
        ))
    }
}

fn overview(reg: &Registry) -> String {
    let mut out = String::from("Resource types (froyo doc TYPE for fields):\n\n");
    let width = reg.types().map(|t| t.name.len()).max().unwrap_or(0);
    for t in reg.types() {
        let _ = writeln!(out, "  {:width$}  {}", t.name, t.summary);
    }
    out.push_str("\nCore built-ins (froyo doc NAME): resource, handler, require, notify, play, select, targets,\ntemplate, asset, secret, fmt, changed, retry, unconverted\n");
    out
}

fn type_page(t: &ResourceType) -> String {
    let mut out = format!(
        "{}  ({} provider {})\n\n",
        t.name, t.provider, t.provider_version
    );
    if !t.doc.doc.is_empty() {
        let _ = writeln!(out, "{}\n", t.doc.doc);
    }
    let _ = writeln!(
        out,
        "Identity: `{}` (defaults to the resource name)\n\nFields:",
        t.identity
    );
    for f in &t.doc.fields {
        let req = if f.required {
            "required"
        } else if f.optional {
            "optional"
        } else {
            "has default"
        };
        let default = f
            .default
            .as_ref()
            .map(|d| format!(", default {d}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}  ({req}{default})\n      type: {}",
            f.name, f.cue_type
        );
        for line in f.doc.lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    out.push_str(
        "\nMeta keywords (every resource): when, tags, become, sensitive, retry, timeout, desc\n",
    );
    out
}

fn type_json(t: &ResourceType) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "provider": t.provider,
        "summary": t.summary,
        "doc": t.doc.doc,
        "identity": t.identity,
        "natural": t.natural,
        "fields": t.doc.fields,
    })
}
