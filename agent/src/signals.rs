//! SIGTERM and SIGINT without blocking signals in any thread (children inherit the
//! mask): the handler writes the signal number to a pipe, a thread reads it and runs
//! the callback.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = PIPE_WRITE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; a full pipe just drops the byte.
        unsafe {
            libc::write(fd, (&b as *const u8).cast(), 1);
        }
    }
}

/// Calls `f(signal)` on a thread of its own at the first SIGTERM or SIGINT.
pub fn on_terminate(f: impl FnOnce(i32) + Send + 'static) -> std::io::Result<()> {
    let (r, w) = std::io::pipe()?;
    let w: OwnedFd = w.into();
    PIPE_WRITE.store(w.as_raw_fd(), Ordering::Relaxed);
    std::mem::forget(w);
    for sig in [libc::SIGTERM, libc::SIGINT] {
        // SAFETY: installing a handler that only calls write(2).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    std::thread::Builder::new()
        .name("signals".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            let mut r = r;
            let mut b = [0u8; 1];
            if r.read_exact(&mut b).is_ok() {
                f(i32::from(b[0]));
            }
        })?;
    Ok(())
}
