//! A test-only hook: `FROYO_AGENT_FAILPOINT=<step>` (or `<step>:<outcome>`) makes the
//! agent kill itself with SIGKILL right after journaling that step, so tests can prove
//! that a restart converges from any step. Unset, it costs one environment lookup per
//! journaled step.

pub fn hit(step: &str, outcome: &str) {
    let Ok(want) = std::env::var("FROYO_AGENT_FAILPOINT") else {
        return;
    };
    let matches = match want.split_once(':') {
        Some((s, o)) => s == step && o == outcome,
        None => want == step,
    };
    if matches {
        tracing::warn!("failpoint {step}:{outcome}: SIGKILL");
        // SAFETY: plain syscalls; the process ends here.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
