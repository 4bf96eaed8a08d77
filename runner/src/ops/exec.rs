//! `exec`: run a program on the target and capture its output, and the process
//! machinery the other ops reuse to call system tools (`ip`, `useradd`, `visudo`, …).
//!
//! Programs run directly from `argv` with a minimal environment; only the `shell`
//! argument goes through `/bin/sh -c`, which reads no rc files. Output is read by one
//! thread per stream that forwards chunks to the command's thread, which alone keeps
//! the buffers, emits events and watches the deadline, so every event of a command is
//! written before its `done` frame.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::OpError;
use crate::host::DEFAULT_PATH;
use crate::meta::abs_path;
use crate::ops::Ctx;
use crate::protocol::EventKind;
use crate::protocol::ops::{ExecArgs, ExecResult};

const DEFAULT_TIMEOUT_MS: u64 = 600_000;
const DEFAULT_MAX_OUTPUT: u64 = 1024 * 1024;
/// How long to keep reading after the program exited: a background grandchild may
/// hold the pipes open for much longer, and its output is not the command's.
const DRAIN_GRACE: Duration = Duration::from_millis(500);
const READ_CHUNK: usize = 64 * 1024;

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    pub argv: Vec<String>,
    /// Added to the minimal environment.
    pub env: BTreeMap<String, String>,
    pub cwd: PathBuf,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    /// Bytes kept per stream.
    pub max_output: usize,
}

impl Spec {
    /// A spec with the defaults the onboarding and facts ops use for system tools.
    pub fn tool(program: &Path, args: &[&str]) -> Self {
        let mut argv = vec![program.to_string_lossy().into_owned()];
        argv.extend(args.iter().map(|a| a.to_string()));
        Self {
            argv,
            env: BTreeMap::new(),
            cwd: PathBuf::from("/"),
            stdin: None,
            timeout: Duration::from_secs(120),
            max_output: DEFAULT_MAX_OUTPUT as usize,
        }
    }
}

/// How a program ended, and what it printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub truncated: bool,
    pub duration: Duration,
}

impl Output {
    /// Both streams, for error messages.
    pub fn combined(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&self.stderr));
        text.trim().to_string()
    }
}

/// The `exec` op.
pub fn exec(ctx: &Ctx, args: ExecArgs) -> Result<ExecResult, OpError> {
    let argv = match (args.argv, args.shell) {
        (Some(argv), None) if !argv.is_empty() => argv,
        (Some(_), None) => return Err(OpError::permanent("`argv` is empty")),
        (None, Some(script)) => vec!["/bin/sh".into(), "-c".into(), script],
        (Some(_), Some(_)) => {
            return Err(OpError::permanent(
                "give one of `argv` and `shell`, not both",
            ));
        }
        (None, None) => return Err(OpError::permanent("give one of `argv` and `shell`")),
    };
    for key in args.env.keys() {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(OpError::permanent(format!(
                "invalid environment variable name `{key}`"
            )));
        }
    }
    let cwd = match args.cwd {
        Some(cwd) => abs_path("cwd", &cwd)?,
        None => PathBuf::from("/"),
    };
    if !cwd.is_dir() {
        return Err(OpError::permanent(format!(
            "`cwd` `{}` is not a directory",
            cwd.display()
        )));
    }
    let timeout_ms = args.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    let spec = Spec {
        argv,
        env: args.env,
        cwd,
        stdin: args.stdin.map(String::into_bytes),
        timeout: Duration::from_millis(timeout_ms),
        max_output: usize::try_from(args.max_output.unwrap_or(DEFAULT_MAX_OUTPUT))
            .unwrap_or(usize::MAX),
    };
    let mut forward = |kind, data| (ctx.events)(kind, data);
    let sink: Option<&mut dyn FnMut(EventKind, String)> = if args.stream {
        Some(&mut forward)
    } else {
        None
    };
    let out = run(&spec, ctx.cancel, sink)?;
    Ok(ExecResult {
        rc: out.status.code(),
        signal: out.status.signal(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        truncated: out.truncated,
        duration_ms: u64::try_from(out.duration.as_millis()).unwrap_or(u64::MAX),
    })
}

/// Runs a system tool found on the host with [`Spec::tool`] defaults.
pub fn run_tool(program: &Path, args: &[&str], cancel: &AtomicBool) -> Result<Output, OpError> {
    run(&Spec::tool(program, args), cancel, None)
}

enum Msg {
    Chunk(EventKind, Vec<u8>),
    Eof,
}

/// SIGHUP, SIGINT, SIGQUIT and SIGTERM as programs expect to find them (default action),
/// whatever the runner inherited: a froyo started under `nohup` (SIGHUP ignored) must not
/// pass that on to the daemons its commands start, which could then not even trap it
/// (a shell cannot trap a signal ignored on entry). SIGPIPE std already resets.
const RESET_SIGNALS: [i32; 4] = [1, 2, 3, 15];

fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    // SAFETY: the closure runs in the child between fork and exec; it only calls
    // signal(2), which is async-signal-safe, with SIG_DFL (0), and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            for sig in RESET_SIGNALS {
                signal(sig, 0);
            }
            Ok(())
        });
    }
}

/// Runs `spec` to completion. `cancel` (the runner shutting down) kills the program
/// like a timeout does. With `on_event`, output chunks are passed on as they come.
pub fn run(
    spec: &Spec,
    cancel: &AtomicBool,
    mut on_event: Option<&mut dyn FnMut(EventKind, String)>,
) -> Result<Output, OpError> {
    let program = spec
        .argv
        .first()
        .ok_or_else(|| OpError::permanent("empty argv"))?;
    let mut cmd = Command::new(program);
    cmd.args(&spec.argv[1..])
        .env_clear()
        .env("PATH", DEFAULT_PATH)
        .env("LANG", "C.UTF-8")
        .envs(&spec.env)
        .current_dir(&spec.cwd)
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    default_signals(&mut cmd);
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;

    let (tx, rx) = mpsc::channel();
    if let Err(e) = start_io_threads(&mut child, spec.stdin.clone(), &tx) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(OpError::io_doing("starting an output reader thread", &e));
    }
    drop(tx);

    let mut out = Capture::new(spec.max_output);
    // A huge `timeout_ms` would overflow `Instant`: treat it as no deadline.
    let deadline = start.checked_add(spec.timeout);
    let mut poll = Duration::from_millis(1);
    let mut open_streams = 2;
    let mut exited: Option<(ExitStatus, Instant)> = None;
    loop {
        let wait = match exited {
            Some((_, at)) => (at + DRAIN_GRACE).saturating_duration_since(Instant::now()),
            None => poll,
        };
        let msg = if open_streams == 0 {
            // Both pipes are closed but the program still runs: nothing to receive.
            thread::sleep(wait);
            Err(RecvTimeoutError::Timeout)
        } else {
            rx.recv_timeout(wait)
        };
        match msg {
            Ok(Msg::Chunk(kind, bytes)) => out.push(kind, &bytes, on_event.as_deref_mut()),
            Ok(Msg::Eof) => open_streams -= 1,
            Err(RecvTimeoutError::Timeout) => poll = (poll * 2).min(Duration::from_millis(20)),
            Err(RecvTimeoutError::Disconnected) => open_streams = 0,
        }
        if exited.is_none() {
            match child.try_wait() {
                Ok(Some(status)) => exited = Some((status, Instant::now())),
                Ok(None) => {
                    let now = Instant::now();
                    let timed_out = deadline.is_some_and(|d| now >= d);
                    if timed_out || cancel.load(Ordering::Relaxed) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(if timed_out {
                            OpError::transient(format!(
                                "timed out after {} ms",
                                spec.timeout.as_millis()
                            ))
                        } else {
                            OpError::transient("killed: the runner is shutting down")
                        });
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    return Err(OpError::io_doing("waiting for the program", &e));
                }
            }
        }
        if let Some((status, at)) = exited
            && (open_streams == 0 || Instant::now() >= at + DRAIN_GRACE)
        {
            out.flush(on_event.as_deref_mut());
            return Ok(Output {
                status,
                stdout: out.stdout.data,
                stderr: out.stderr.data,
                truncated: out.stdout.truncated || out.stderr.truncated,
                duration: at.duration_since(start),
            });
        }
    }
}

fn spawn_error(program: &str, err: &io::Error) -> OpError {
    match err.kind() {
        io::ErrorKind::NotFound => OpError::permanent(format!("program not found: `{program}`")),
        io::ErrorKind::PermissionDenied => {
            OpError::permanent(format!("`{program}` cannot be executed: {err}"))
        }
        _ => OpError::io_doing(&format!("starting `{program}`"), err),
    }
}

fn start_io_threads(child: &mut Child, stdin: Option<Vec<u8>>, tx: &Sender<Msg>) -> io::Result<()> {
    if let (Some(mut pipe), Some(data)) = (child.stdin.take(), stdin) {
        thread::Builder::new()
            .name("exec-stdin".into())
            .spawn(move || {
                // A program that exits without reading its stdin is not an error.
                let _ = pipe.write_all(&data);
            })?;
    }
    if let Some(pipe) = child.stdout.take() {
        spawn_reader::<ChildStdout>(pipe, EventKind::Stdout, tx.clone())?;
    }
    if let Some(pipe) = child.stderr.take() {
        spawn_reader::<ChildStderr>(pipe, EventKind::Stderr, tx.clone())?;
    }
    Ok(())
}

fn spawn_reader<R: Read + Send + 'static>(
    mut pipe: R,
    kind: EventKind,
    tx: Sender<Msg>,
) -> io::Result<()> {
    thread::Builder::new()
        .name("exec-output".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if tx.send(Msg::Chunk(kind, buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(Msg::Eof);
        })?;
    Ok(())
}

/// One captured stream.
#[derive(Default)]
struct Stream {
    data: Vec<u8>,
    truncated: bool,
    /// The start of a UTF-8 sequence split across chunks, held back from events.
    pending: Vec<u8>,
}

struct Capture {
    max: usize,
    stdout: Stream,
    stderr: Stream,
}

impl Capture {
    fn new(max: usize) -> Self {
        Self {
            max,
            stdout: Stream::default(),
            stderr: Stream::default(),
        }
    }

    fn push(
        &mut self,
        kind: EventKind,
        bytes: &[u8],
        on_event: Option<&mut (dyn FnMut(EventKind, String) + '_)>,
    ) {
        let stream = if kind == EventKind::Stderr {
            &mut self.stderr
        } else {
            &mut self.stdout
        };
        let room = self.max.saturating_sub(stream.data.len());
        let kept = &bytes[..bytes.len().min(room)];
        if kept.len() < bytes.len() {
            stream.truncated = true;
        }
        stream.data.extend_from_slice(kept);
        if let Some(emit) = on_event {
            stream.pending.extend_from_slice(kept);
            let text = take_utf8(&mut stream.pending);
            if !text.is_empty() {
                emit(kind, text);
            }
        }
    }

    fn flush(&mut self, mut on_event: Option<&mut (dyn FnMut(EventKind, String) + '_)>) {
        for (kind, stream) in [
            (EventKind::Stdout, &mut self.stdout),
            (EventKind::Stderr, &mut self.stderr),
        ] {
            if let Some(emit) = on_event.as_deref_mut()
                && !stream.pending.is_empty()
            {
                emit(kind, String::from_utf8_lossy(&stream.pending).into_owned());
            }
            stream.pending.clear();
        }
    }
}

/// Decodes and removes the longest prefix of `buf` that does not end inside a UTF-8
/// sequence; invalid bytes become U+FFFD. An unfinished sequence at the end stays in
/// `buf` for the next chunk.
pub fn take_utf8(buf: &mut Vec<u8>) -> String {
    let mut end = buf.len();
    for back in 1..=buf.len().min(3) {
        let b = buf[buf.len() - back];
        if b & 0xC0 == 0x80 {
            continue; // A continuation byte: look further back for the lead byte.
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        if need > back {
            end = buf.len() - back;
        }
        break;
    }
    let text = String::from_utf8_lossy(&buf[..end]).into_owned();
    buf.drain(..end);
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_split_across_chunks_is_held_back() {
        let euro = "€".as_bytes(); // 3 bytes
        let mut buf = b"ab".to_vec();
        buf.extend_from_slice(&euro[..2]);
        assert_eq!(take_utf8(&mut buf), "ab");
        assert_eq!(buf, &euro[..2]);
        buf.extend_from_slice(&euro[2..]);
        buf.push(b'!');
        assert_eq!(take_utf8(&mut buf), "€!");
        assert!(buf.is_empty());
    }

    #[test]
    fn invalid_utf8_is_replaced_not_held() {
        let mut buf = vec![b'a', 0xFF, b'b'];
        assert_eq!(take_utf8(&mut buf), "a\u{FFFD}b");
        assert!(buf.is_empty());
    }

    #[test]
    fn capture_truncates_at_max() {
        let mut cap = Capture::new(4);
        cap.push(EventKind::Stdout, b"abc", None);
        cap.push(EventKind::Stdout, b"def", None);
        assert_eq!(cap.stdout.data, b"abcd");
        assert!(cap.stdout.truncated);
        assert!(!cap.stderr.truncated);
    }

    /// A runner that inherited an ignored SIGHUP (as under `nohup`) starts programs with
    /// it back at the default, so a daemon's `trap … HUP` works.
    #[test]
    fn programs_start_with_default_signal_actions() {
        unsafe extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        // SAFETY: sets this test process's SIGHUP to SIG_IGN (1), as nohup does; no
        // other test of this binary depends on SIGHUP.
        unsafe { signal(1, 1) };
        let spec = Spec::tool(
            Path::new("/bin/sh"),
            &["-c", "grep SigIgn /proc/self/status"],
        );
        let out = run(&spec, &AtomicBool::new(false), None).unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mask = u64::from_str_radix(text.split_whitespace().nth(1).unwrap(), 16).unwrap();
        assert_eq!(mask & 1, 0, "SIGHUP still ignored in the child: {text}");
    }
}
