//! The OpenFroyo micro-runner: a small static program the controller starts on a
//! target (over SSH, or locally) to run primitive ops, driven by JSON frames over
//! stdio. See `PROTOCOL.md` for the wire contract and [`protocol`] for its types.
//!
//! The controller depends on this crate for [`protocol`] only; the rest is the
//! runner itself: [`session`] (frames, concurrency, lifecycle), [`ops`] (one file
//! per op family) and the small helpers they share.

pub mod config;
pub mod encoding;
pub mod error;
pub mod host;
pub mod ops;
pub mod protocol;
pub mod session;

mod atomic;
mod meta;
mod outbox;

use std::io::{self, Write};

pub use config::{Config, Invocation};
pub use session::ExitReason;

/// Runs the runner on this process's stdin and stdout against the real host.
pub fn run(config: &Config) -> ExitReason {
    if config.unlink {
        unlink_self();
    }
    let reason = session::serve(config, host::Host::default(), io::stdin(), io::stdout());
    log(&format!("exiting: {reason:?}"));
    reason
}

/// Deletes the runner's own executable, so nothing is left on the target however the
/// session ends. The running process keeps its mapped image.
fn unlink_self() {
    match std::env::current_exe().and_then(|exe| std::fs::remove_file(&exe).map(|()| exe)) {
        Ok(exe) => log(&format!("removed `{}`", exe.display())),
        Err(e) => log(&format!("cannot remove own executable: {e}")),
    }
}

/// A line on stderr, the runner's free-form log. Unlike `eprintln!`, a closed stderr
/// is ignored rather than a panic.
pub(crate) fn log(message: &str) {
    let _ = writeln!(
        io::stderr(),
        "froyo-runner[{}]: {message}",
        std::process::id()
    );
}
