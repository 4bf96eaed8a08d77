//! `froyo graph FILE [--format json|dot|svg|png]`: the resource graph with labelled edges.
//! Unlike `check`, a playbook that reads `host.facts` gets them live from its targets.
//! Pictures are drawn by Graphviz's `dot`, run as a child process when it is installed.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, ValueEnum};

use super::{EvalArgs, eprint_diagnostics, write_stdout, write_stdout_bytes};
use crate::error::Error;
use crate::facts::{Facts, Sessions};
use crate::schema::Registry;
use crate::transport::Connector;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Json,
    Dot,
    /// The DOT drawn by Graphviz `dot -Tsvg`.
    Svg,
    /// The DOT drawn by Graphviz `dot -Tpng`.
    Png,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    #[command(flatten)]
    eval: EvalArgs,
    /// JSON (nodes, edges and where they came from), DOT, or a picture drawn by Graphviz.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
}

pub fn run(args: &GraphArgs) -> Result<ExitCode, Error> {
    let opts = args.eval.options();
    let r = crate::check::resolve(&opts)?;
    let runtime = super::runtime()?;
    // Sessions open only if the playbook reads facts.
    let sessions = Arc::new(Sessions::new(
        Connector::for_project(&r.project),
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
        Format::Svg => write_stdout_bytes(&draw(&checked.graph.to_dot(), "svg")?),
        Format::Png => write_stdout_bytes(&draw(&checked.graph.to_dot(), "png")?),
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders `dot_text` with Graphviz (`dot -T<format>`, the `dot` found on `PATH`).
fn draw(dot_text: &str, format: &str) -> Result<Vec<u8>, Error> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let missing = |message: String| Error::Graphviz {
        format: format.to_owned(),
        message,
    };
    let mut child = Command::new("dot")
        .arg(format!("-T{format}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => missing("`dot` is not on PATH".to_owned()),
            _ => missing(format!("cannot start `dot`: {e}")),
        })?;
    // `dot` reads all of its input before it writes, so writing first cannot deadlock.
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(dot_text.as_bytes()));
    let out = child
        .wait_with_output()
        .map_err(|e| missing(format!("`dot` failed: {e}")))?;
    if !out.status.success() || !matches!(written, Some(Ok(()))) {
        return Err(missing(format!(
            "`dot -T{format}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(out.stdout)
}
