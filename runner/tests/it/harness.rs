//! Test support: a spawned runner with helpers to send frames and wait for answers,
//! and self-cleaning scratch directories.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_froyo-runner");
/// Generous: a loaded CI machine must not turn a slow answer into a failure.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct Runner {
    child: Child,
    stdin: Option<ChildStdin>,
    frames: Receiver<Value>,
    /// Frames read while waiting for another command's answer.
    backlog: VecDeque<Value>,
    pub ready: Value,
}

impl Runner {
    pub fn start() -> Self {
        Self::start_with(BIN, &[])
    }

    pub fn start_with(program: impl AsRef<Path>, args: &[&str]) -> Self {
        let child = spawn_retrying(program.as_ref(), args);
        Self::attach(child)
    }

    fn attach(mut child: Child) -> Self {
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let frame: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("runner wrote non-JSON `{line}`: {e}"));
                if tx.send(frame).is_err() {
                    break;
                }
            }
        });
        let stdin = child.stdin.take();
        let mut runner = Self {
            child,
            stdin,
            frames: rx,
            backlog: VecDeque::new(),
            ready: Value::Null,
        };
        runner.ready = runner.next_frame().expect("a ready frame");
        assert_eq!(
            runner.ready["type"], "ready",
            "first frame: {}",
            runner.ready
        );
        runner
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(bytes).expect("write to runner");
        stdin.flush().expect("flush to runner");
    }

    pub fn send(&mut self, frame: &Value) {
        let mut line = frame.to_string();
        line.push('\n');
        self.send_raw(line.as_bytes());
    }

    pub fn send_cmd(&mut self, id: u64, op: &str, args: Value) {
        self.send(&json!({"type": "cmd", "id": id, "op": op, "args": args}));
    }

    /// The next frame, from the backlog first.
    pub fn next_frame(&mut self) -> Option<Value> {
        if let Some(frame) = self.backlog.pop_front() {
            return Some(frame);
        }
        self.frames.recv_timeout(WAIT).ok()
    }

    /// Every frame for `id` up to and including its `done` or `error`.
    pub fn collect(&mut self, id: u64) -> Vec<Value> {
        let mut mine = Vec::new();
        let mut others = VecDeque::new();
        let deadline = Instant::now() + WAIT;
        while let Some(frame) = self.backlog.pop_front() {
            if frame["id"] == id {
                let last = frame["type"] == "done" || frame["type"] == "error";
                mine.push(frame);
                if last {
                    self.backlog.extend(others);
                    return mine;
                }
            } else {
                others.push_back(frame);
            }
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = self
                .frames
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer for command {id}; got {mine:?}"));
            if frame["id"] == id {
                let last = frame["type"] == "done" || frame["type"] == "error";
                mine.push(frame);
                if last {
                    self.backlog.extend(others);
                    return mine;
                }
            } else {
                others.push_back(frame);
            }
        }
    }

    /// The final frame for `id`.
    pub fn answer(&mut self, id: u64) -> Value {
        self.collect(id).pop().expect("at least one frame")
    }

    /// Runs one command and returns its `result`, failing on an `error` frame.
    pub fn ok(&mut self, id: u64, op: &str, args: Value) -> Value {
        self.send_cmd(id, op, args);
        let frame = self.answer(id);
        assert_eq!(frame["type"], "done", "{op} failed: {frame}");
        frame["result"].clone()
    }

    /// Runs one command that must fail; returns `(class, message)`.
    pub fn err(&mut self, id: u64, op: &str, args: Value) -> (String, String) {
        self.send_cmd(id, op, args);
        let frame = self.answer(id);
        assert_eq!(frame["type"], "error", "{op} should fail: {frame}");
        (
            frame["class"].as_str().unwrap_or("").to_string(),
            frame["message"].as_str().unwrap_or("").to_string(),
        )
    }

    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the process to end on its own.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns the runner. A freshly copied executable can briefly fail with "text file
/// busy" while another test thread's fork still holds the copy's write handle.
fn spawn_retrying(program: &Path, args: &[&str]) -> Child {
    let mut tries = 0;
    loop {
        let spawned = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot start {}: {e}", program.display()),
        }
    }
}

/// A scratch directory, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("froyo-runner-it-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Self { path }
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// A path inside as a string, as op arguments want.
    pub fn p(&self, rel: &str) -> String {
        self.join(rel).to_string_lossy().into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    froyo_runner::encoding::sha256_hex(bytes)
}
