//! The command line: `serve` runs the agent; the other verbs (Keystone's `keystonectl`)
//! talk to a running one. The only place that writes to stdout. `froyo agent ARGS`
//! execs this binary with the same arguments.

use std::io::Write;
use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::agent::{Agent, PlanSource};
use crate::client::{self, Client};
use crate::error::{AgentError, Result};
use crate::layout::Layout;

#[derive(Debug, Parser)]
#[command(name = "froyo agent", version, about = "OpenFroyo's edge agent: supervises the components of a Keystone-format plan", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the agent: serve the API and supervise the plan in effect.
    Serve(ServeArgs),
    /// Apply a deployment plan (TOML) on the agent.
    Apply {
        plan: PathBuf,
        /// Show what would stop and start; change nothing.
        #[arg(long)]
        dry: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// The plan in effect, its status and its components.
    Status(Conn),
    /// Components with state, pid, readiness and restarts.
    Components(Conn),
    /// The dependency graph and its start layers.
    Graph(Conn),
    /// Stop every component of the plan (it is not resumed on the next start).
    StopPlan(Conn),
    /// Stop one component.
    Stop {
        name: String,
        #[arg(long)]
        dry: bool,
        #[command(flatten)]
        conn: Conn,
    },
    /// Sign a plan into a desired-state document for `serve --pull` (writes OUT and
    /// OUT.minisig).
    Publish {
        plan: PathBuf,
        /// minisign secret key (`minisign -G`); an encrypted one reads its password
        /// from FROYO_SIGNING_PASSWORD.
        #[arg(long, value_name = "SECRET_KEY")]
        key: PathBuf,
        /// Where the document goes (its signature beside it, `.minisig`).
        #[arg(long, value_name = "OUT")]
        out: PathBuf,
        /// The sequence (default: above the document at OUT, and at least the unix time).
        #[arg(long)]
        sequence: Option<u64>,
        /// How long devices accept it (a Go duration: `720h`, `90m`).
        #[arg(long, value_name = "DURATION", default_value = "720h")]
        expires: String,
    },
    /// Restart one component and what depends on it.
    Restart {
        name: String,
        #[arg(long)]
        dry: bool,
        #[command(flatten)]
        conn: Conn,
    },
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address of the HTTP API; beyond loopback a bearer token is required.
    #[arg(long = "http", value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: String,
    /// Where components, artifacts, logs and the journal live.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/froyo-agent")]
    data_dir: PathBuf,
    /// A plan to apply once started (after resuming the plan in effect).
    #[arg(long, value_name = "PLAN")]
    apply: Option<PathBuf>,
    /// SIGTERM → SIGKILL grace when stopping a component (`10s`, `500ms`).
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    grace: String,
    /// minisign public keys (one per line, or `minisign.pub` files concatenated): every
    /// artifact must then carry a `sig_uri` signature by one of them.
    #[arg(long, value_name = "KEYS")]
    trust: Option<PathBuf>,
    /// Pull mode: the URL of a signed desired-state document (`froyo agent publish`),
    /// fetched every `--pull-interval` with `If-None-Match`; needs `--trust`.
    #[arg(long, value_name = "URL")]
    pull: Option<String>,
    /// How often pull mode polls (±20 % jitter).
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pull_interval: String,
    /// Log level of the agent's own log on stderr (error, warn, info, debug, trace).
    #[arg(long, default_value = "info")]
    log_level: String,
}

#[derive(Debug, Args)]
struct Conn {
    /// The agent's base URL.
    #[arg(
        long = "agent",
        env = "FROYO_AGENT_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    agent: String,
    /// Bearer token (the agent's `api.token`).
    #[arg(long, env = "FROYO_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print the agent's JSON answer.
    #[arg(long)]
    json: bool,
}

fn out(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|_| o.flush());
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Serve(a) => serve(a),
        Command::Apply { plan, dry, conn } => {
            let abs = std::env::current_dir()
                .map(|d| d.join(&plan))
                .unwrap_or(plan);
            verb(
                &conn,
                "POST",
                "/v1/plan/apply",
                Some(serde_json::json!({"planPath": abs, "dry": dry})),
                client::show_apply,
            )
        }
        Command::Publish {
            plan,
            key,
            out: dest,
            sequence,
            expires,
        } => publish(plan, key, dest, sequence, &expires),
        Command::Status(c) => verb(&c, "GET", "/v1/plan/status", None, client::show_status),
        Command::Components(c) => verb(&c, "GET", "/v1/components", None, client::show_components),
        Command::Graph(c) => verb(&c, "GET", "/v1/plan/graph", None, client::show_graph),
        Command::StopPlan(c) => verb(&c, "POST", "/v1/plan/stop", None, client::show_orders),
        Command::Stop { name, dry, conn } => verb(
            &conn,
            "POST",
            &format!(
                "/v1/components/{name}:stop{}",
                if dry { "?dry=true" } else { "" }
            ),
            None,
            client::show_orders,
        ),
        Command::Restart { name, dry, conn } => verb(
            &conn,
            "POST",
            &format!(
                "/v1/components/{name}:restart{}",
                if dry { "?dry=true" } else { "" }
            ),
            None,
            client::show_orders,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprint!("{}", e.render());
            ExitCode::from(1)
        }
    }
}

fn verb(
    conn: &Conn,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
    show: fn(&serde_json::Value) -> String,
) -> Result<ExitCode> {
    let c = Client::new(&conn.agent, conn.token.clone());
    let (status, v) = c.ok(method, path, body)?;
    if conn.json {
        out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        ));
    } else {
        out(&show(&v));
    }
    Ok(if status >= 400 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn publish(
    plan: PathBuf,
    key: PathBuf,
    dest: PathBuf,
    sequence: Option<u64>,
    expires: &str,
) -> Result<ExitCode> {
    let expires_in = crate::duration::parse(expires)
        .ok_or_else(|| AgentError::Usage(format!("--expires `{expires}` is not a duration")))?;
    let cwd = std::env::current_dir().map_err(|e| AgentError::io(std::path::Path::new("."), e))?;
    let p = crate::publish::publish(
        &crate::publish::PublishArgs {
            plan,
            key,
            out: dest.clone(),
            sequence,
            expires_in,
        },
        &cwd,
    )?;
    out(&format!(
        "published {} (sequence {}, {} components, {} artifacts checked, expires at {}), signature {}.minisig\n",
        dest.display(),
        p.sequence,
        p.components,
        p.artifacts,
        p.expires_at,
        dest.display()
    ));
    Ok(ExitCode::SUCCESS)
}

fn init_tracing(level: &str) {
    use tracing_subscriber::filter::LevelFilter;
    let lvl = level.parse::<LevelFilter>().unwrap_or(LevelFilter::INFO);
    let _ = tracing_subscriber::fmt()
        .with_max_level(lvl)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

fn is_loopback(addr: &str) -> bool {
    match addr.to_socket_addrs() {
        Ok(mut a) => a.all(|s| s.ip().is_loopback()),
        Err(_) => false,
    }
}

/// The bearer token in `api.token`, created (random, mode 0600) when missing.
fn token(layout: &Layout) -> Result<String> {
    let path = layout.token();
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(|e| AgentError::io(std::path::Path::new("/dev/urandom"), e))?;
    let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| AgentError::io(&path, e))?;
    f.write_all(t.as_bytes())
        .map_err(|e| AgentError::io(&path, e))?;
    Ok(t)
}

/// Holds `agent.lock` for the life of the process: one agent per data dir.
fn lock(layout: &Layout) -> Result<std::fs::File> {
    let path = layout.root.join("agent.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| AgentError::io(&path, e))?;
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(AgentError::Usage(format!(
            "another agent already runs on {} (it holds {})",
            layout.root.display(),
            path.display()
        )));
    }
    Ok(f)
}

fn serve(a: ServeArgs) -> Result<ExitCode> {
    init_tracing(&a.log_level);
    let grace = crate::duration::parse(&a.grace)
        .ok_or_else(|| AgentError::Usage(format!("--grace `{}` is not a duration", a.grace)))?;
    let layout = Layout::new(&a.data_dir).map_err(|e| AgentError::io(&a.data_dir, e))?;
    let _lock = lock(&layout)?;
    let token = if is_loopback(&a.http) {
        None
    } else {
        Some(token(&layout)?)
    };
    let pull_interval = crate::duration::parse(&a.pull_interval).ok_or_else(|| {
        AgentError::Usage(format!(
            "--pull-interval `{}` is not a duration",
            a.pull_interval
        ))
    })?;
    if let Some(u) = &a.pull
        && !u.starts_with("http://")
    {
        return Err(AgentError::Usage(format!(
            "--pull `{u}`: only http:// is supported yet (the agent links no TLS stack; the document is signed, so plain HTTP cannot forge it)"
        )));
    }
    if a.pull.is_some() && a.trust.is_none() {
        return Err(AgentError::Usage(
            "--pull needs --trust KEYS: an unsigned desired-state document is never applied".into(),
        ));
    }
    let cwd = std::env::current_dir().map_err(|e| AgentError::io(std::path::Path::new("."), e))?;
    let mut agent = Agent::new(layout.clone(), cwd)?;
    agent.grace = grace;
    if let Some(keys) = &a.trust {
        agent.trust = crate::trust::Trust::load(keys)?;
        tracing::info!(
            keys = agent.trust.key_count(),
            "trusting the signing keys of {}",
            keys.display()
        );
    }
    let agent = Arc::new(agent);
    let api = crate::api::Api::bind(&a.http, token)?;
    let bound = api
        .server
        .server_addr()
        .to_ip()
        .map(|s| format!("http://{s}"))
        .unwrap_or_else(|| a.http.clone());
    let addr_file = layout.root.join("agent.addr");
    let _ = std::fs::write(&addr_file, format!("{bound}\n"));
    tracing::info!(
        pid = std::process::id(),
        "froyo-agent {} listening on {bound}, data dir {}",
        env!("CARGO_PKG_VERSION"),
        layout.root.display()
    );
    crate::signals::on_terminate({
        let agent = agent.clone();
        move |sig| {
            tracing::info!("signal {sig}: stopping components");
            agent.shutdown();
            std::process::exit(0);
        }
    })
    .map_err(|e| AgentError::Usage(format!("cannot install signal handlers: {e}")))?;
    let boot_agent = agent.clone();
    let apply = a.apply.clone();
    // With trusted keys, the inbox is watched too (push mode), with or without --pull.
    let puller = (a.pull.is_some() || agent.trust.required())
        .then(|| crate::pull::Puller::new(agent.clone(), a.pull.clone(), pull_interval));
    std::thread::Builder::new()
        .name("boot".into())
        .spawn(move || {
            match boot_agent.boot_plan() {
                Ok(Some(plan)) => {
                    tracing::info!("resuming plan {}", plan.path);
                    if let Err(e) = boot_agent.apply(PlanSource::Resolved(plan), false) {
                        tracing::error!("{}", e.render().trim_end());
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!("{}", e.render().trim_end()),
            }
            if let Some(p) = apply {
                match boot_agent.apply(PlanSource::File(p), false) {
                    Ok(r) => tracing::info!("applied {}: {}", r.plan_path, r.status),
                    Err(e) => tracing::error!("{}", e.render().trim_end()),
                }
            }
            // Pull mode starts once the plan in effect is back.
            if let Some(p) = puller
                && let Err(e) = p.spawn()
            {
                tracing::error!("cannot start pull mode: {e}");
            }
        })
        .map_err(|e| AgentError::Usage(format!("cannot start: {e}")))?;
    api.serve(agent);
    Ok(ExitCode::SUCCESS)
}
