//! A network namespace a test creates (the host's own network and firewall are never
//! touched), deleted on drop, with helpers to run commands and sockets inside it.

use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A network namespace of this test process, deleted on drop (also when the test fails).
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// `froyo-TAG-PID`, its loopback up. One name per process and tag: a second run
    /// deletes its own leftover (after a kill -9) without touching another concurrent
    /// run's namespace.
    pub fn new(tag: &str) -> Netns {
        let name = format!("froyo-{tag}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh(&["ip", "netns", "add", &name]);
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `argv` inside the namespace and returns its stdout; panics on failure.
    pub fn exec(&self, argv: &[&str]) -> String {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(argv);
        sh(&full)
    }

    /// A command that runs `program` inside the namespace (`ip netns exec` execs it, so
    /// the child's PID is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `f` on a thread that has joined the namespace (setns affects only the calling
    /// thread), so sockets it opens live in the namespace.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in(&self.name, f)
    }

    /// A TCP connection to `addr` from inside the namespace.
    pub fn connect(&self, addr: SocketAddr) -> std::io::Result<()> {
        connect_in(&self.name, addr)
    }
}

/// [`Netns::run`] by the namespace's name.
pub fn run_in<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{name}");
    std::thread::spawn(move || {
        use std::os::fd::AsRawFd;
        unsafe extern "C" {
            fn setns(fd: i32, nstype: i32) -> i32;
        }
        const CLONE_NEWNET: i32 = 0x4000_0000;
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a valid namespace fd; it changes only this thread's network
        // namespace, and the thread ends after `f`.
        let rc = unsafe { setns(file.as_raw_fd(), CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .unwrap()
}

/// A TCP connection to `addr` from inside namespace `name`.
pub fn connect_in(name: &str, addr: SocketAddr) -> std::io::Result<()> {
    run_in(name, move || {
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map(drop)
    })
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Runs `argv` and returns its stdout; panics on failure.
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
