//! `froyo dev up [--workers N]`: the cluster profile on one machine, for trying it. Starts
//! a `nats-server -js` in a temporary directory on a free loopback port and N `froyo
//! worker` processes against the project's state, prints the `apply --queue` line to use
//! (on stdout), and on Ctrl-C or SIGTERM stops every child by its PID (workers first, so
//! hosts in progress finish) and removes the directory.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};

use crate::error::Error;

#[derive(Debug, Args)]
pub struct DevArgs {
    #[command(subcommand)]
    command: DevCommand,
}

#[derive(Debug, Subcommand)]
enum DevCommand {
    /// Start a local nats-server and workers; Ctrl-C stops them all.
    Up(UpArgs),
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Worker processes.
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Hosts each worker applies at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

/// Where Debian and most distributions put `nats-server`, after `PATH`.
fn nats_server() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([
            "/usr/sbin".into(),
            "/usr/bin".into(),
            "/usr/local/bin".into(),
        ])
        .map(|d| d.join("nats-server"))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16, Error> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| Error::Usage(format!("no free loopback port: {e}")))
}

/// Sends `signal` to `pid`, waits up to `grace` for `child` to exit, then kills it.
fn stop(child: &mut Child, signal: &str, grace: Duration) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

pub fn run(args: &DevArgs) -> Result<ExitCode, Error> {
    let DevCommand::Up(up) = &args.command;
    let project = super::cwd_project()?;
    // The workers need the shared state; say so before starting anything.
    let state = crate::queue::shared_state(&project, None)?;
    let bin = nats_server().ok_or_else(|| Error::Queue {
        message: "`nats-server` is not installed (not on PATH, nor in /usr/sbin, /usr/bin)".into(),
        help: "install it: `apt-get install nats-server` (Debian, Ubuntu), or download it from https://nats.io/download/".into(),
    })?;
    let dir = tempfile::Builder::new()
        .prefix("froyo-dev-")
        .tempdir()
        .map_err(|e| Error::Usage(format!("cannot create a temporary directory: {e}")))?;
    let port = free_port()?;
    let log = |name: &str| {
        std::fs::File::create(dir.path().join(name)).map_err(|e| Error::Io {
            path: dir.path().join(name),
            source: e,
        })
    };
    let nats_log = log("nats-server.log")?;
    let mut nats = Command::new(&bin)
        .args(["-js", "-sd"])
        .arg(dir.path().join("jetstream"))
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(nats_log.try_clone().map_err(|e| Error::Io {
            path: dir.path().into(),
            source: e,
        })?)
        .stderr(nats_log)
        .spawn()
        .map_err(|e| Error::Queue {
            message: format!("cannot start `{}`: {e}", bin.display()),
            help: "check that nats-server runs: `nats-server --version`".into(),
        })?;
    let url = format!("nats://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline || nats.try_wait().ok().flatten().is_some() {
            stop(&mut nats, "TERM", Duration::from_secs(5));
            let log =
                std::fs::read_to_string(dir.path().join("nats-server.log")).unwrap_or_default();
            return Err(Error::Queue {
                message: format!("nats-server did not start: {}", log.trim()),
                help: "run it by hand to see why: `nats-server -js -a 127.0.0.1`".into(),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let exe = std::env::current_exe().map_err(|e| Error::Usage(format!("which froyo: {e}")))?;
    let mut workers: Vec<Child> = Vec::new();
    for i in 0..up.workers.max(1) {
        let spawned = log(&format!("worker{i}.log")).and_then(|l| {
            Command::new(&exe)
                .args(["worker", "--queue", &url, "--concurrency"])
                .arg(up.concurrency.max(1).to_string())
                .current_dir(&project.root)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(l)
                .spawn()
                .map_err(|e| Error::Io {
                    path: exe.clone(),
                    source: e,
                })
        });
        match spawned {
            Ok(c) => workers.push(c),
            Err(e) => {
                for w in &mut workers {
                    stop(w, "TERM", Duration::from_secs(20));
                }
                stop(&mut nats, "TERM", Duration::from_secs(5));
                return Err(e);
            }
        }
    }
    let pids: Vec<String> = workers.iter().map(|w| w.id().to_string()).collect();
    say!(
        "froyo dev up: nats-server (pid {}) on {url}, {} worker(s) (pid {}) on the state {} (`{}`); logs in {}",
        nats.id(),
        workers.len(),
        pids.join(", "),
        state.shown_url(),
        state.namespace(),
        dir.path().display()
    );
    drop(state);
    super::write_stdout(&format!("froyo apply PLAYBOOK --queue {url}\n"));
    say!("Ctrl-C stops them all.");

    // Until Ctrl-C or SIGTERM, or until a child dies on its own.
    let runtime = super::runtime()?;
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    runtime.spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            let _ = tx.send("no signal handler");
            return;
        };
        let why = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let _ = tx.send(why);
    });
    let why = loop {
        if let Ok(why) = rx.recv_timeout(Duration::from_millis(200)) {
            break why.to_owned();
        }
        if let Ok(Some(s)) = nats.try_wait() {
            break format!("nats-server exited ({s})");
        }
        if let Some((i, s)) = workers
            .iter_mut()
            .enumerate()
            .find_map(|(i, w)| w.try_wait().ok().flatten().map(|s| (i, s)))
        {
            break format!("worker {} exited ({s})", pids[i]);
        }
    };
    say!("froyo dev up: {why}; stopping the workers, then nats-server");
    for w in &mut workers {
        stop(w, "TERM", Duration::from_secs(30));
    }
    stop(&mut nats, "TERM", Duration::from_secs(10));
    drop(dir);
    say!("froyo dev up: stopped");
    Ok(ExitCode::SUCCESS)
}
