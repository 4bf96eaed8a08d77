//! SIGINT and SIGTERM during `froyo apply`: the first signal stops new work (resources not
//! started yet are skipped, handlers stay pending, what runs finishes) and the run ends as
//! `interrupted` with exit code 128 + the signal; a second signal records the run as
//! interrupted and ends the process at once. Either way the next apply resumes: it reads
//! the targets again and runs what is pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::apply::Stop;
use crate::state::{RunId, RunStatus, Store};

/// Watches for the signals while an apply runs (on its own thread, for the process's life).
pub struct Interrupt {
    pub stop: Stop,
    signal: Arc<AtomicI32>,
}

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

fn name(signal: i32) -> &'static str {
    if signal == SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    }
}

impl Interrupt {
    /// From now on SIGINT and SIGTERM stop run `run` of `store` instead of killing the
    /// process.
    pub fn watch(store: Arc<dyn Store + Send + Sync>, run: RunId) -> Interrupt {
        let stop = Stop::new("the apply was interrupted");
        let signal = Arc::new(AtomicI32::new(0));
        let (flag, got) = (stop.clone(), signal.clone());
        let spawned = std::thread::Builder::new()
            .name("froyo-signals".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async move {
                    use tokio::signal::unix::{SignalKind, signal};
                    let (Ok(mut term), Ok(mut int)) = (
                        signal(SignalKind::terminate()),
                        signal(SignalKind::interrupt()),
                    ) else {
                        return;
                    };
                    loop {
                        let n = tokio::select! {
                            _ = int.recv() => SIGINT,
                            _ = term.recv() => SIGTERM,
                        };
                        if got.swap(n, Ordering::SeqCst) == 0 {
                            flag.raise();
                            eprintln!(
                                "froyo: {}: stopping — no new resource starts, what runs \
                                 finishes; send it again to stop at once",
                                name(n)
                            );
                            continue;
                        }
                        // At once: what runs is cut off with the process; its resource is
                        // read again by the next apply.
                        let _ = store.finish_run(run, RunStatus::Interrupted);
                        froyo_telemetry::traces::flush();
                        eprintln!(
                            "froyo: {}: stopped at once; run #{} recorded as interrupted",
                            name(n),
                            run.0
                        );
                        std::process::exit(128 + n);
                    }
                });
            });
        if spawned.is_err() {
            tracing::warn!("no signal watcher: SIGINT and SIGTERM end the apply at once");
        }
        Interrupt { stop, signal }
    }

    /// The signal that stopped the apply, if one did.
    pub fn signal(&self) -> Option<i32> {
        match self.signal.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    /// "SIGINT" / "SIGTERM".
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal().map(name)
    }
}
