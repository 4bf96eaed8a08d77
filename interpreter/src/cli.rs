//! Command-line interface: argument parsing (clap), logging setup, and one module per
//! command. The only place that writes to stdout (data) and stderr (diagnostics, progress).

/// A line for people on stderr (`eprintln!`), or a JSON log line with `--log-format json`.
macro_rules! say {
    ($($arg:tt)*) => {
        froyo_telemetry::logs::message("INFO", "froyo::cli", &format!("{}\n", format_args!($($arg)*)))
    };
}

mod agent;
mod apply;
mod backup;
mod check;
mod completions;
mod dev;
mod doc;
mod drift;
mod events;
mod facts;
mod graph;
mod import;
mod init;
mod interrupt;
mod lsp;
mod man;
mod onboard;
mod plan;
mod policy;
mod repl;
mod run;
mod secret;
mod state;
mod worker;

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
    /// `text` (default) or `json`: one JSON object per line on stderr, for every log
    /// record, diagnostic and message. `FROYO_LOG` takes an `EnvFilter` directive.
    #[arg(long, global = true, value_name = "FORMAT", env = "FROYO_LOG_FORMAT", default_value = "text", value_parser = parse_log_format)]
    log_format: froyo_telemetry::LogFormat,
    /// Write the run's metrics to FILE at exit (Prometheus text format, written aside
    /// and renamed: node_exporter's textfile collector). `FROYO_PUSHGATEWAY=URL` pushes
    /// them to a Pushgateway instead or as well.
    #[arg(long, global = true, value_name = "FILE")]
    metrics_out: Option<PathBuf>,
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
    /// A run's event stream from the state (NDJSON); `--follow` one in progress.
    Events(events::EventsArgs),
    /// Apply hosts that `froyo apply --queue` published (the cluster profile), until
    /// Ctrl-C.
    Worker(worker::WorkerArgs),
    /// The cluster profile on one machine: `froyo dev up [--workers N]` starts a local
    /// nats-server and workers until Ctrl-C.
    Dev(dev::DevArgs),
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

fn parse_log_format(s: &str) -> Result<froyo_telemetry::LogFormat, String> {
    s.parse()
}

/// Prints diagnostics to stderr (one JSON log line each with `--log-format json`).
pub(crate) fn eprint_diagnostics(diags: &[Diagnostic]) {
    if froyo_telemetry::logs::json() {
        for d in diags {
            let level = if d.is_error() { "ERROR" } else { "WARN" };
            froyo_telemetry::logs::message_with(
                level,
                "froyo::diagnostic",
                &d.message,
                serde_json::json!({"diagnostic": d.to_json()}),
            );
        }
        return;
    }
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

/// Installs logging and, when the environment asks for them, the trace exporter.
fn init_tracing(cli: &Cli) -> Option<froyo_telemetry::traces::Traces> {
    use froyo_telemetry::traces::{self, Setup};
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "froyo=debug",
        (false, _) => "froyo=trace",
    };
    let (traces, extra, refused) = match traces::from_env() {
        Ok(Setup::On(t, layer)) => (Some(t), vec![layer], None),
        Ok(Setup::Off) => (None, Vec::new(), None),
        Err(why) => (None, Vec::new(), Some(why)),
    };
    froyo_telemetry::logs::init(
        &froyo_telemetry::LogSettings {
            format: cli.log_format,
            default_filter: default.into(),
            ansi: color(),
        },
        extra,
    );
    let say = |level: &str, m: String| {
        froyo_telemetry::logs::message(level, "froyo::telemetry", &format!("{m}\n"))
    };
    if let Some(why) = refused {
        say("WARN", format!("warning: {why}"));
    }
    // Which exporters are active, at -v (what OpenTofu's users could not tell).
    if cli.verbose > 0 && !cli.quiet {
        let traces = traces.as_ref().map_or_else(
            || "off (OTEL_TRACES_EXPORTER is not `otlp` or `console`)".to_owned(),
            |t| t.description.clone(),
        );
        let mut metrics = Vec::new();
        if let Some(p) = &cli.metrics_out {
            metrics.push(format!("file {}", p.display()));
        }
        if let Ok(u) = std::env::var("FROYO_PUSHGATEWAY")
            && !u.trim().is_empty()
        {
            metrics.push(format!("pushgateway {}", u.trim()));
        }
        let metrics = if metrics.is_empty() {
            "off".to_owned()
        } else {
            metrics.join(", ")
        };
        say(
            "INFO",
            format!("telemetry: traces {traces}; metrics {metrics}"),
        );
    }
    traces
}

impl Command {
    /// The command's name (metrics label, root span).
    fn name(&self) -> &'static str {
        match self {
            Command::Check(_) => "check",
            Command::Graph(_) => "graph",
            Command::Doc(_) => "doc",
            Command::Facts(_) => "facts",
            Command::Plan(_) => "plan",
            Command::Apply(_) => "apply",
            Command::Drift(_) => "drift",
            Command::Run(_) => "run",
            Command::Init(_) => "init",
            Command::Backup(_) => "backup",
            Command::Restore(_) => "restore",
            Command::Policy(_) => "policy",
            Command::Repl(_) => "repl",
            Command::Secret(_) => "secret",
            Command::Onboard(_) => "onboard",
            Command::Lsp(_) => "lsp",
            Command::Import(_) => "import",
            Command::Events(_) => "events",
            Command::State(_) => "state",
            Command::Agent(_) => "agent",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
            Command::Worker(_) => "worker",
            Command::Dev(_) => "dev",
        }
    }
}

/// The Pushgateway group of this process's metrics: project and playbook (never a run
/// id: the Pushgateway keeps every group forever).
static METRICS_GROUP: std::sync::Mutex<Option<(String, String)>> = std::sync::Mutex::new(None);

/// Names the project and playbook the metrics are pushed under.
pub(crate) fn set_metrics_group(project: &crate::project::Project, playbook: &str) {
    let name = project.settings.project.name.clone().unwrap_or_else(|| {
        project
            .root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let root = tracing::Span::current();
    root.record("project", name.as_str());
    root.record("playbook", playbook);
    *METRICS_GROUP.lock().unwrap_or_else(|e| e.into_inner()) = Some((name, playbook.to_owned()));
}

/// Writes `--metrics-out` and pushes to `FROYO_PUSHGATEWAY`; a failure is a warning,
/// never the command's outcome.
fn export_metrics(cli: &Cli) {
    let metrics = froyo_telemetry::metrics::global();
    let warn = |m: String| {
        froyo_telemetry::logs::message("WARN", "froyo::telemetry", &format!("warning: {m}\n"))
    };
    if let Some(path) = &cli.metrics_out
        && let Err(e) = metrics.write_textfile(path)
    {
        warn(format!(
            "cannot write the metrics to {}: {e}",
            path.display()
        ));
    }
    let Some(url) = std::env::var("FROYO_PUSHGATEWAY")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        return;
    };
    let group = METRICS_GROUP
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    // Only commands that plan or apply a playbook have a group to push under.
    let Some((project, playbook)) = group else {
        return;
    };
    if let Err(e) = metrics.push(
        url.trim(),
        &[("project", &project), ("playbook", &playbook)],
        std::time::Duration::from_secs(5),
    ) {
        warn(format!("cannot push the metrics to {url}: {e}"));
    }
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let traces = init_tracing(&cli);
    let started = std::time::Instant::now();
    let name = cli.command.name();
    // The command's root span; a CI job or scheduler parents it through TRACEPARENT.
    let root = tracing::info_span!(
        "froyo",
        otel.name = %format!("froyo {name}"),
        command = name,
        project = tracing::field::Empty,
        playbook = tracing::field::Empty,
        run = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(cx) = froyo_telemetry::traces::parent_from_env() {
        froyo_telemetry::traces::set_parent(&root, cx);
    }
    if let Some(t) = &traces
        && !matches!(
            cli.command,
            Command::Repl(_)
                | Command::Lsp(_)
                | Command::Apply(_)
                | Command::Worker(_)
                | Command::Dev(_)
        )
    {
        // Ctrl-C still ends the command, after what ended so far is exported. (An apply,
        // a worker and `dev up` stop on signals themselves and end as usual.)
        t.flush_on_interrupt();
    }
    let entered = root.enter();
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
        Command::Events(a) => events::run(a),
        Command::Worker(a) => worker::run(a),
        Command::Dev(a) => dev::run(a),
    };
    // `ExitCode` has no `PartialEq`; its `Debug` form tells success from failure.
    let succeeded =
        matches!(&result, Ok(code) if format!("{code:?}") == format!("{:?}", ExitCode::SUCCESS));
    if !succeeded {
        root.record("otel.status_code", "ERROR");
    }
    drop(entered);
    drop(root);
    froyo_telemetry::metrics::global().run(cli.command.name(), succeeded, started.elapsed());
    export_metrics(&cli);
    if let Some(t) = traces {
        t.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            if froyo_telemetry::logs::json() {
                froyo_telemetry::logs::message_with(
                    "ERROR",
                    "froyo::cli",
                    &e.to_string(),
                    serde_json::json!({"code": miette::Diagnostic::code(&e).map(|c| c.to_string())}),
                );
            } else {
                eprintln!("{:?}", miette::Report::new(e));
            }
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
