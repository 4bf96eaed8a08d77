//! `froyo worker --queue URL [--concurrency N] [--state URL]`: applies hosts of runs that
//! `froyo apply --queue` published, from this directory's project, until SIGINT or SIGTERM
//! (hosts in progress finish first).

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use crate::error::Error;
use crate::queue::worker::WorkerOptions;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The work queue, `nats://HOST:PORT` (else `FROYO_QUEUE_URL`, else `[queue] url`).
    #[arg(long, value_name = "URL")]
    queue: Option<String>,
    /// Hosts applied at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Resources applied at once on one host.
    #[arg(long, default_value_t = 4)]
    per_host: usize,
    /// The shared state, `postgres://…` (else the project's `[state] url` or
    /// `FROYO_STATE_URL`).
    #[arg(long, value_name = "URL")]
    state: Option<String>,
}

pub fn run(args: &WorkerArgs) -> Result<ExitCode, Error> {
    let project = super::cwd_project()?;
    let Some(settings) = crate::queue::settings(&project, args.queue.as_deref())? else {
        return Err(Error::Queue {
            message: "no work queue given".into(),
            help: "pass `--queue nats://HOST:PORT`, set FROYO_QUEUE_URL, or `[queue] url` in froyo.toml".into(),
        });
    };
    let state = crate::queue::shared_state(&project, args.state.as_deref())?;
    let queue = crate::queue::connect(&settings, &state)?;
    let runtime = super::runtime()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        runtime.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            stop.store(true, Ordering::SeqCst);
        });
    }
    let name = format!("{}:{}", crate::state::hostname(), std::process::id());
    say!(
        "froyo worker {name}: taking work from {} for `{}` (state {}), {} host(s) at once",
        queue.shown_url(),
        state.namespace(),
        state.shown_url(),
        args.concurrency.max(1)
    );
    crate::queue::worker::serve(
        project,
        state,
        &queue,
        runtime.handle().clone(),
        WorkerOptions {
            concurrency: args.concurrency,
            per_host: args.per_host,
            name,
        },
        &stop,
        &|line| say!("{line}"),
    );
    say!("froyo worker: stopped");
    Ok(ExitCode::SUCCESS)
}
