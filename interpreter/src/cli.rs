//! Command-line interface: argument parsing (clap), logging setup, and one module per
//! command. The only place that writes to stdout (data) and stderr (diagnostics, progress).

mod agent;
mod apply;
mod backup;
mod check;
mod completions;
mod doc;
mod drift;
mod facts;
mod graph;
mod import;
mod init;
mod lsp;
mod man;
mod onboard;
mod plan;
mod policy;
mod repl;
mod run;
mod secret;
mod state;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::diag::Diagnostic;

#[derive(Debug, Parser)]
#[command(name = "froyo", version, about = "OpenFroyo: infrastructure as code with Starlark playbooks", long_about = None)]
pub struct Cli {
    /// More logging (-v: debug, -vv: trace); `RUST_LOG` wins.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate and validate a playbook (`.star`, `.cue` or a directory of `.cue`) offline;
    /// exit 1 on any error.
    #[command(visible_alias = "validate")]
    Check(check::CheckArgs),
    /// Print the resource graph (nodes by id, edges with their kind), or draw it (svg, png).
    Graph(graph::GraphArgs),
    /// List resource types and built-ins, or show one with its fields and docs.
    Doc(doc::DocArgs),
    /// Collect facts from targets (through their runner) and print them.
    Facts(facts::FactsArgs),
    /// Show what `apply` would change on each target (reads targets, changes nothing).
    Plan(plan::PlanArgs),
    /// Plan, confirm and apply a playbook (or a saved plan) to its targets.
    Apply(apply::ApplyArgs),
    /// Compare what the state says was applied with the targets; `--remediate` fixes it.
    Drift(drift::DriftArgs),
    /// Run a runbook: plan and apply without recording state or asking.
    Run(run::RunArgs),
    /// Create froyo.toml and .froyo/ (state database, SSH key, age identity).
    Init(init::InitArgs),
    /// Copy the project's state to FILE (a consistent hot copy).
    Backup(backup::BackupArgs),
    /// Replace the project's state with a backup.
    Restore(backup::BackupArgs),
    /// State tools: `froyo state migrate --to postgres://…` copies a SQLite state into
    /// PostgreSQL (the cluster profile).
    State(state::StateArgs),
    /// Policy tools: `froyo policy test [DIR]` runs the Rego unit tests.
    Policy(policy::PolicyArgs),
    /// Interactive Starlark with the playbook built-ins and live facts of the targets.
    Repl(repl::ReplArgs),
    /// Manage the project's encrypted secret store (`secrets.age`).
    Secret(secret::SecretArgs),
    /// First contact with hosts (`ssh`), and undoing it (`rollback`).
    Onboard(onboard::OnboardArgs),
    /// Serve the language server protocol on stdin/stdout (for editors).
    Lsp(lsp::LspArgs),
    /// Convert from another tool: `froyo import ansible PLAYBOOK|ROLE --out DIR`.
    Import(import::ImportArgs),
    /// The edge agent: `serve` on a device, and `apply`/`status`/`components`/`graph`/
    /// `stop-plan`/`stop`/`restart` against a running one (Keystone's formats).
    Agent(agent::AgentArgs),
    /// Print a shell completion script: `froyo completions bash|zsh|fish`.
    Completions(completions::CompletionsArgs),
    /// Man pages: `froyo.1` on stdout, or every page into DIR.
    Man(man::ManArgs),
}

/// Options shared by commands that evaluate a playbook.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The playbook: a `.star` file, a `.cue` file, or a directory of `.cue` files.
    file: PathBuf,
    /// More `.cue` files evaluated with the first as one CUE package (CUE input only).
    #[arg(value_name = "MORE.cue")]
    more: Vec<PathBuf>,
    /// Targets of the default play (top-level resources and `def main(host)`).
    #[arg(long, value_name = "SELECTOR")]
    on: Option<String>,
    /// A host var for every target, highest precedence (repeatable).
    #[arg(long = "var", value_name = "KEY=VALUE")]
    vars: Vec<String>,
}

impl EvalArgs {
    fn options(&self) -> crate::check::CheckOptions {
        crate::check::CheckOptions {
            file: self.file.clone(),
            more: self.more.clone(),
            on: self.on.clone(),
            vars: self.vars.clone(),
            ..Default::default()
        }
    }
}

/// Colour on stderr unless `NO_COLOR` is set or stderr is not a terminal.
pub(crate) fn color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stderr().is_terminal()
}

/// Prints diagnostics to stderr.
pub(crate) fn eprint_diagnostics(diags: &[Diagnostic]) {
    let color = color();
    let width = if std::io::stderr().is_terminal() {
        120
    } else {
        100
    };
    for d in diags {
        eprint!("{}", crate::diag::render(d, color, width));
    }
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "froyo=debug",
        (false, _) => "froyo=trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color())
        .try_init();
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose, cli.quiet);
    let result = match &cli.command {
        Command::Check(a) => check::run(a),
        Command::Graph(a) => graph::run(a),
        Command::Doc(a) => doc::run(a),
        Command::Facts(a) => facts::run(a),
        Command::Plan(a) => plan::run(a),
        Command::Apply(a) => apply::run(a),
        Command::Drift(a) => drift::run(a),
        Command::Run(a) => run::run(a),
        Command::Init(a) => init::run(a),
        Command::Backup(a) => backup::backup(a),
        Command::Restore(a) => backup::restore(a),
        Command::State(a) => state::run(a),
        Command::Policy(a) => policy::run(a),
        Command::Repl(a) => repl::run(a),
        Command::Secret(a) => secret::run(a),
        Command::Onboard(a) => onboard::run(a),
        Command::Lsp(a) => lsp::run(a),
        Command::Import(a) => import::run(a),
        Command::Agent(a) => agent::run(a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(1)
        }
    }
}

/// The async runtime for commands that talk to targets. Evaluation stays on the calling
/// thread and blocks on it when a playbook reads facts.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, crate::error::Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| crate::error::Error::Usage(format!("cannot start the async runtime: {e}")))
}

/// The project of the current directory (the nearest ancestor with `froyo.toml`).
pub(crate) fn cwd_project() -> Result<crate::project::Project, crate::error::Error> {
    let cwd = std::env::current_dir().map_err(|e| crate::error::Error::Io {
        path: ".".into(),
        source: e,
    })?;
    crate::project::Project::discover_dir(&cwd)
}

/// Writes bytes (a PNG) to stdout; a closed pipe is not an error.
pub(crate) fn write_stdout_bytes(bytes: &[u8]) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|_| out.flush());
}

/// Writes to stdout; a closed pipe (`froyo graph … | head`) is not an error.
pub(crate) fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}
