//! `froyo events [--run N] [--follow]`: a run's event stream (`docs/events.md`) read back
//! from the state: the same lines `apply --json` printed, or, with `--follow`, those of a
//! run in progress in another process as they are recorded.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use crate::error::Error;
use crate::state::{RunId, RunStatus, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The run (its number in `Apply: … (run #N …)`); default: the latest.
    #[arg(long, value_name = "N")]
    run: Option<i64>,
    /// Keep printing events as they are recorded until the run ends (waits for run N to
    /// begin if it has not yet).
    #[arg(long, short = 'f')]
    follow: bool,
}

/// How often the state is read again while following.
const POLL: Duration = Duration::from_millis(100);

pub fn run(args: &EventsArgs) -> Result<ExitCode, Error> {
    let project = super::cwd_project()?;
    let store = SqliteStore::open_project(&project.root)?;
    let run = loop {
        let found = match args.run {
            Some(n) => store.run(RunId(n))?,
            None => store.runs(1)?.into_iter().next(),
        };
        match (found, args.run) {
            (Some(r), _) => break r,
            (None, Some(_)) if args.follow => std::thread::sleep(POLL),
            (None, Some(n)) => {
                return Err(Error::Usage(format!(
                    "the state has no run #{n} (`froyo events` without --run shows the latest)"
                )));
            }
            (None, None) => {
                return Err(Error::Usage(
                    "the state has no runs yet: `froyo apply` records one".into(),
                ));
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let mut emit = |line: &str| writeln!(out, "{line}").and_then(|()| out.flush()).is_ok();
    if !emit(&crate::events::version_line()) {
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = 0;
    loop {
        // The status is read before the events: every event of a run that has ended is
        // recorded before its status changes, so the last read below misses none.
        let status = store.run(run.id)?.map(|r| (r.status, r.pid));
        for (id, e) in store.events_after(run.id, last)? {
            last = id;
            if !emit(&crate::events::line(Some(run.id), &e)) {
                // The reader went away (`froyo events | head`).
                return Ok(ExitCode::SUCCESS);
            }
        }
        let running = matches!(status, Some((RunStatus::Running, pid)) if alive(pid));
        if !args.follow || !running {
            break;
        }
        std::thread::sleep(POLL);
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether the process of a run still exists (on this machine).
fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}
