//! One runner session: read frames, run each command on its own thread, answer, and
//! decide when to exit (stdin EOF, an `exit` frame, the idle or the total TTL).
//!
//! The main thread owns the lifecycle; a reader thread turns stdin into lines so the
//! main thread can wait for input and for its deadlines at once. Commands run on
//! threads of their own, at most `max_in_flight` at a time (the reader waits for a
//! free slot, which pushes back on the controller). Idempotency keys map to a shared
//! slot holding the first command's outcome; a repeat waits on that slot.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::Config;
use crate::error::OpError;
use crate::host::Host;
use crate::ops::{self, Ctx};
use crate::outbox::Outbox;
use crate::protocol::{
    Cmd, ControllerFrame, Done, ErrorClass, ErrorFrame, Event, EventKind, Ready, RunnerFrame,
    VERSION,
};

/// Lines longer than this are refused (a 16 MiB file in base64 is about 22 MiB).
pub const MAX_LINE: usize = 64 * 1024 * 1024;
/// How long `exit`, EOF or a TTL waits for running commands before killing them.
pub const EXIT_GRACE: Duration = Duration::from_secs(2);
const COMMAND_STACK: usize = 1024 * 1024;

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitReason {
    Eof,
    ExitFrame,
    IdleTtl,
    TotalTtl,
}

type Outcome = Result<Value, OpError>;

/// The outcome of the first command with a given idempotency key.
struct Slot {
    op: String,
    outcome: Mutex<Option<Outcome>>,
    ready: Condvar,
}

impl Slot {
    fn set(&self, outcome: &Outcome) {
        *lock(&self.outcome) = Some(outcome.clone());
        self.ready.notify_all();
    }

    fn wait(&self) -> Outcome {
        let mut guard = lock(&self.outcome);
        loop {
            if let Some(outcome) = guard.as_ref() {
                return outcome.clone();
            }
            guard = self.ready.wait(guard).unwrap_or_else(|p| p.into_inner());
        }
    }
}

struct Flight {
    running: usize,
    last_finished: Instant,
}

struct Shared {
    out: Outbox,
    host: Host,
    cancel: AtomicBool,
    flight: Mutex<Flight>,
    changed: Condvar,
    keys: Mutex<HashMap<String, Arc<Slot>>>,
}

/// Locks a mutex, ignoring poisoning: no code here panics while holding a lock, and
/// the release build aborts on panic anyway.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn reply(&self, id: u64, outcome: Outcome) {
        let frame = match outcome {
            Ok(result) => RunnerFrame::Done(Done { id, result }),
            Err(e) => RunnerFrame::Error(ErrorFrame {
                id,
                class: e.class,
                message: e.message,
            }),
        };
        self.out.send(&frame);
    }

    fn acquire(&self, max: usize) {
        let mut flight = lock(&self.flight);
        while flight.running >= max {
            flight = self.changed.wait(flight).unwrap_or_else(|p| p.into_inner());
        }
        flight.running += 1;
    }

    fn release(&self) {
        let mut flight = lock(&self.flight);
        flight.running -= 1;
        flight.last_finished = Instant::now();
        self.changed.notify_all();
    }

    fn snapshot(&self) -> (usize, Instant) {
        let flight = lock(&self.flight);
        (flight.running, flight.last_finished)
    }

    /// Waits until no command runs or `timeout` passes; returns whether all finished.
    fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut flight = lock(&self.flight);
        while flight.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            flight = self
                .changed
                .wait_timeout(flight, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }
}

enum Input {
    Line(Vec<u8>),
    TooLong,
    Eof,
}

/// Serves one session: sends `ready`, answers commands until the session ends, then
/// gives running commands [`EXIT_GRACE`] before cancelling them.
pub fn serve<R, W>(config: &Config, host: Host, input: R, output: W) -> ExitReason
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    let start = Instant::now();
    let shared = Arc::new(Shared {
        out: Outbox::new(output),
        host,
        cancel: AtomicBool::new(false),
        flight: Mutex::new(Flight {
            running: 0,
            last_finished: start,
        }),
        changed: Condvar::new(),
        keys: Mutex::new(HashMap::new()),
    });
    shared.out.send(&RunnerFrame::Ready(Ready {
        version: VERSION.to_string(),
        pid: std::process::id(),
        arch: std::env::consts::ARCH.to_string(),
        os: std::env::consts::OS.to_string(),
        caps: ops::OPS.iter().map(|s| s.to_string()).collect(),
    }));

    let (tx, rx) = mpsc::sync_channel(16);
    let reader = thread::Builder::new()
        .name("stdin".into())
        .spawn(move || read_lines(input, &tx));
    let reason = match reader {
        Ok(_) => main_loop(config, &shared, &rx, start),
        Err(e) => {
            crate::log(&format!("cannot start the stdin reader: {e}"));
            ExitReason::Eof
        }
    };
    if !shared.wait_idle(EXIT_GRACE) {
        shared.cancel.store(true, Ordering::Relaxed);
        shared.wait_idle(Duration::from_millis(500));
    }
    reason
}

fn main_loop(
    config: &Config,
    shared: &Arc<Shared>,
    rx: &Receiver<Input>,
    start: Instant,
) -> ExitReason {
    let ttl_deadline = start + config.ttl;
    let mut last_input = start;
    loop {
        let now = Instant::now();
        if now >= ttl_deadline {
            return ExitReason::TotalTtl;
        }
        let (running, last_finished) = shared.snapshot();
        let idle_deadline = last_input.max(last_finished) + config.idle;
        if running == 0 && now >= idle_deadline {
            return ExitReason::IdleTtl;
        }
        // While commands run the idle clock is stopped; look again once a second.
        let next = if running == 0 {
            idle_deadline
        } else {
            now + Duration::from_secs(1)
        };
        match rx.recv_timeout(next.min(ttl_deadline).saturating_duration_since(now)) {
            Ok(Input::Line(line)) => {
                last_input = Instant::now();
                if handle_line(shared, &line, config.max_in_flight) {
                    return ExitReason::ExitFrame;
                }
            }
            Ok(Input::TooLong) => {
                last_input = Instant::now();
                bad_frame(shared, 0, &format!("line longer than {MAX_LINE} bytes"));
            }
            Ok(Input::Eof) | Err(RecvTimeoutError::Disconnected) => return ExitReason::Eof,
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Splits `input` into lines of at most [`MAX_LINE`] bytes without ever holding more
/// than that in memory.
fn read_lines<R: Read>(input: R, tx: &SyncSender<Input>) {
    split_lines(input, MAX_LINE, |line| {
        let msg = match line {
            Some(Line::Complete(l)) => Input::Line(l),
            Some(Line::TooLong) => Input::TooLong,
            None => Input::Eof,
        };
        tx.send(msg).is_ok()
    });
}

/// One line from [`split_lines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A line without its newline (the last one may lack one).
    Complete(Vec<u8>),
    /// A line longer than the limit; its bytes were dropped as they arrived.
    TooLong,
}

/// Splits `input` into lines of at most `max` bytes, never holding more than `max`
/// bytes of one line; calls `each` with every line and finally with `None` (end of
/// input, or a read error). Stops early when `each` returns false.
pub fn split_lines<R: Read>(input: R, max: usize, mut each: impl FnMut(Option<Line>) -> bool) {
    let mut reader = BufReader::with_capacity(64 * 1024, input);
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::log(&format!("cannot read stdin: {e}"));
                &[]
            }
        };
        if buf.is_empty() {
            if too_long {
                if !each(Some(Line::TooLong)) {
                    return;
                }
            } else if !line.is_empty() && !each(Some(Line::Complete(line))) {
                return;
            }
            each(None);
            return;
        }
        let (chunk, used, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if !too_long {
            if line.len() + chunk.len() > max {
                too_long = true;
                line = Vec::new();
            } else {
                line.extend_from_slice(chunk);
            }
        }
        reader.consume(used);
        if complete {
            let msg = if too_long {
                Line::TooLong
            } else {
                Line::Complete(std::mem::take(&mut line))
            };
            too_long = false;
            if !each(Some(msg)) {
                return;
            }
        }
    }
}

fn bad_frame(shared: &Shared, id: u64, why: &str) {
    shared.out.send(&RunnerFrame::Error(ErrorFrame {
        id,
        class: ErrorClass::Permanent,
        message: format!("bad frame: {why}"),
    }));
}

/// What one input line from the controller is.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Only whitespace: ignored.
    Blank,
    /// An `exit` frame.
    Exit,
    /// A command to run (its id is not 0).
    Cmd(Cmd),
    /// Not a valid frame: answered with a `bad frame` error under `id` (0 when the
    /// line names no command).
    Bad { id: u64, why: String },
}

/// Decodes one input line (without its newline); runs nothing.
pub fn decode_line(line: &[u8]) -> Decoded {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Decoded::Blank;
    }
    let bad = |id: u64, why: String| Decoded::Bad { id, why };
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return bad(0, e.to_string()),
    };
    // serde would also read internally tagged enums from arrays (`["exit"]`); the
    // protocol has objects only.
    if !value.is_object() {
        return bad(0, "expected a JSON object".into());
    }
    // A frame that names its command gets its error under that id, so the
    // controller's waiter for it is not left hanging.
    let id = value.get("id").and_then(Value::as_u64).unwrap_or(0);
    match serde_json::from_value::<ControllerFrame>(value) {
        Err(e) => bad(id, e.to_string()),
        Ok(ControllerFrame::Exit) => Decoded::Exit,
        Ok(ControllerFrame::Cmd(cmd)) if cmd.id == 0 => bad(0, "command id 0 is reserved".into()),
        Ok(ControllerFrame::Cmd(cmd)) => Decoded::Cmd(cmd),
    }
}

/// Handles one input line; returns true for an `exit` frame. Blank lines are ignored.
fn handle_line(shared: &Arc<Shared>, line: &[u8], max_in_flight: usize) -> bool {
    match decode_line(line) {
        Decoded::Blank => {}
        Decoded::Exit => return true,
        Decoded::Bad { id, why } => bad_frame(shared, id, &why),
        Decoded::Cmd(cmd) => start_command(shared, cmd, max_in_flight),
    }
    false
}

fn start_command(shared: &Arc<Shared>, cmd: Cmd, max_in_flight: usize) {
    let id = cmd.id;
    let (slot, first) = match &cmd.idempotency_key {
        None => (None, true),
        Some(key) => {
            let mut keys = lock(&shared.keys);
            match keys.get(key) {
                Some(slot) => (Some(Arc::clone(slot)), false),
                None => {
                    let slot = Arc::new(Slot {
                        op: cmd.op.clone(),
                        outcome: Mutex::new(None),
                        ready: Condvar::new(),
                    });
                    keys.insert(key.clone(), Arc::clone(&slot));
                    (Some(slot), true)
                }
            }
        }
    };
    if let Some(slot) = slot.as_ref().filter(|s| !first && s.op != cmd.op) {
        let msg = format!(
            "idempotency key was first used for `{}`, not `{}`",
            slot.op, cmd.op
        );
        shared.reply(id, Err(OpError::conflict(msg)));
        return;
    }
    shared.acquire(max_in_flight);
    let job_shared = Arc::clone(shared);
    let job_slot = slot.clone();
    let job = move || {
        let outcome = match (&job_slot, first) {
            (Some(slot), false) => slot.wait(),
            _ => {
                let outcome = run_op(&job_shared, cmd);
                if let Some(slot) = &job_slot {
                    slot.set(&outcome);
                }
                outcome
            }
        };
        job_shared.reply(id, outcome);
        job_shared.release();
    };
    let spawned = thread::Builder::new()
        .name(format!("cmd-{id}"))
        .stack_size(COMMAND_STACK)
        .spawn(job);
    if let Err(e) = spawned {
        let outcome = Err(OpError::io_doing("starting a command thread", &e));
        if let (Some(slot), true) = (&slot, first) {
            slot.set(&outcome);
        }
        shared.reply(id, outcome);
        shared.release();
    }
}

fn run_op(shared: &Shared, cmd: Cmd) -> Outcome {
    let id = cmd.id;
    let events = |kind: EventKind, data: String| {
        shared
            .out
            .send(&RunnerFrame::Event(Event { id, kind, data }))
    };
    let ctx = Ctx {
        id,
        host: &shared.host,
        cancel: &shared.cancel,
        events: &events,
    };
    ops::dispatch(&ctx, &cmd.op, cmd.args)
}
