//! The controller's side of the runner protocol: one session per target, many commands
//! in flight over one byte stream, answered by id.
//!
//! Transport-agnostic: it takes the runner's stdout and stdin as async streams, whether
//! they are a local child's pipes or an SSH channel. When the stream ends (the runner
//! died, the connection dropped) every pending command fails with a clear error at once,
//! so nothing hangs. A frame is at most [`MAX_FRAME`] bytes: a longer line from the
//! target (a compromised host, a runner gone wrong) ends the session instead of growing
//! the controller's memory, and so does a line that is not a frame.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use froyo_runner::protocol::{Cmd, ControllerFrame, ErrorClass, Ready, RunnerFrame};
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, oneshot};

use super::TargetError;

/// The longest line the controller reads from a runner: the runner's own limit
/// (a 16 MiB `file.read` in base64 is about 22 MiB).
pub const MAX_FRAME: usize = froyo_runner::session::MAX_LINE;

/// One line read from a runner by [`read_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameLine {
    /// A complete line, without its newline (the last line may lack one).
    Line(Vec<u8>),
    /// More than the limit arrived before a newline; nothing more was buffered.
    TooLong,
}

/// Reads the next line of at most `max` bytes from `reader`, holding no more than
/// `max` bytes however long the line is; `None` at the end of the stream.
pub async fn read_frame<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<FrameLine>> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok((!line.is_empty()).then_some(FrameLine::Line(line)));
        }
        let (chunk, used, complete) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], i + 1, true),
            None => (buf, buf.len(), false),
        };
        if line.len() + chunk.len() > max {
            return Ok(Some(FrameLine::TooLong));
        }
        line.extend_from_slice(chunk);
        reader.consume(used);
        if complete {
            return Ok(Some(FrameLine::Line(line)));
        }
    }
}

/// What the dispatcher does with one line from the runner.
#[derive(Debug, Clone, PartialEq)]
pub enum Routed {
    /// The outcome of command `id`.
    Outcome(u64, Result<Value, CallError>),
    /// An `error` frame with id 0: the runner could not read one of our frames.
    Rejected(String),
    /// Progress of a running command (`event`), or a repeated `ready`.
    Ignored(RunnerFrame),
    /// Not a runner frame (logged and skipped).
    Unreadable(String),
}

/// Decodes one line from the runner ([`read_frame`]) and says where it goes.
pub fn route(line: &[u8]) -> Routed {
    match serde_json::from_slice::<RunnerFrame>(line) {
        Ok(RunnerFrame::Done(d)) => Routed::Outcome(d.id, Ok(d.result)),
        Ok(RunnerFrame::Error(e)) if e.id != 0 => Routed::Outcome(
            e.id,
            Err(CallError::Op {
                class: e.class,
                message: e.message,
            }),
        ),
        Ok(RunnerFrame::Error(e)) => Routed::Rejected(e.message),
        Ok(other) => Routed::Ignored(other),
        Err(e) => Routed::Unreadable(e.to_string()),
    }
}

/// The calls waiting for their answer while the session is open; once it is lost, why.
type Pending =
    Arc<std::sync::Mutex<Result<HashMap<u64, oneshot::Sender<Result<Value, CallError>>>, String>>>;

/// A failed command.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The runner ran the op and it failed.
    #[error("{message}")]
    Op { class: ErrorClass, message: String },
    /// The session is gone (runner exited, connection lost) or the call timed out.
    #[error("{0}")]
    Session(String),
}

impl CallError {
    pub fn class(&self) -> ErrorClass {
        match self {
            CallError::Op { class, .. } => *class,
            CallError::Session(_) => ErrorClass::Transient,
        }
    }
}

/// A live runner on one target.
pub struct Session {
    pub target: String,
    pub ready: Ready,
    /// The longest one op of a provider may take (`[transport] op_timeout`).
    pub op_timeout: Duration,
    writer: Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    pending: Pending,
    next_id: AtomicU64,
    round_trips: AtomicU64,
    reader: tokio::task::JoinHandle<()>,
    /// Keeps the transport alive (child process, SSH connection) and closes it on drop.
    _keepalive: Box<dyn Send + Sync>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("target", &self.target)
            .field("pid", &self.ready.pid)
            .finish()
    }
}

impl Session {
    /// Reads the `ready` frame (or the bootstrap's `FROYO-ERROR` line) and starts the
    /// dispatcher.
    pub async fn start(
        target: &str,
        stdout: Box<dyn AsyncRead + Send + Unpin>,
        stdin: Box<dyn AsyncWrite + Send + Unpin>,
        keepalive: Box<dyn Send + Sync>,
        timeout: Duration,
    ) -> Result<Session, TargetError> {
        let mut lines = BufReader::new(stdout);
        let first = tokio::time::timeout(timeout, read_frame(&mut lines, MAX_FRAME))
            .await
            .map_err(|_| {
                TargetError::new(
                    target,
                    format!("the runner did not start within {}s", timeout.as_secs()),
                )
            })?
            .map_err(|e| {
                TargetError::new(target, format!("reading from the runner failed: {e}"))
            })?;
        let first = match first {
            None => {
                return Err(TargetError::new(
                    target,
                    "the runner exited before it was ready",
                ));
            }
            Some(FrameLine::TooLong) => {
                return Err(TargetError::new(
                    target,
                    format!("the runner's first line is longer than {MAX_FRAME} bytes"),
                ));
            }
            Some(FrameLine::Line(l)) => String::from_utf8_lossy(&l).into_owned(),
        };
        if let Some(msg) = first.strip_prefix("FROYO-ERROR ") {
            return Err(TargetError::new(target, msg.to_owned()));
        }
        let ready = match serde_json::from_str::<RunnerFrame>(&first) {
            Ok(RunnerFrame::Ready(r)) => r,
            _ => {
                return Err(TargetError::new(
                    target,
                    format!("unexpected first line from the runner: {first:.200}"),
                ));
            }
        };
        let pending: Pending = Arc::new(std::sync::Mutex::new(Ok(HashMap::new())));
        let reader = tokio::spawn(dispatch(target.to_owned(), lines, pending.clone()));
        tracing::debug!(target, pid = ready.pid, version = %ready.version, "runner ready");
        Ok(Session {
            target: target.to_owned(),
            ready,
            op_timeout: crate::transport::Timeouts::default().op,
            writer: Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            round_trips: AtomicU64::new(0),
            reader,
            _keepalive: keepalive,
        })
    }

    /// Runs `op` on the target and waits for its result.
    #[tracing::instrument(name = "runner.call", skip_all, fields(target = %self.target, op = %op))]
    pub async fn call(&self, op: &str, args: Value, timeout: Duration) -> Result<Value, CallError> {
        self.call_keyed(op, args, None, timeout).await
    }

    /// [`Session::call`] with an idempotency key: a retry with the same key returns the
    /// first outcome instead of running the op again.
    pub async fn call_keyed(
        &self,
        op: &str,
        args: Value,
        key: Option<String>,
        timeout: Duration,
    ) -> Result<Value, CallError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            match p.as_mut() {
                Ok(map) => map.insert(id, tx),
                Err(reason) => {
                    return Err(CallError::Session(format!(
                        "the session to `{}` is closed: {reason}",
                        self.target
                    )));
                }
            };
        }
        let frame = ControllerFrame::Cmd(Cmd {
            id,
            op: op.to_owned(),
            args,
            idempotency_key: key,
        });
        let mut line = serde_json::to_vec(&frame).map_err(|e| CallError::Session(e.to_string()))?;
        line.push(b'\n');
        {
            let mut w = self.writer.lock().await;
            let sent = async {
                w.write_all(&line).await?;
                w.flush().await
            };
            if let Err(e) = sent.await {
                self.forget(id);
                return Err(CallError::Session(format!(
                    "sending to the runner on `{}` failed: {e}",
                    self.target
                )));
            }
        }
        self.round_trips.fetch_add(1, Ordering::Relaxed);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CallError::Session(format!(
                "the runner on `{}` went away",
                self.target
            ))),
            Err(_) => {
                // The target no longer answers (or the op outlived its limit): what it
                // does now is unknown, so the session ends here and later calls fail at
                // once instead of each waiting out the limit again.
                let reason = format!(
                    "`{op}` on `{}` timed out after {}s",
                    self.target,
                    timeout.as_secs()
                );
                fail_all(&self.pending, &reason);
                Err(CallError::Session(reason))
            }
        }
    }

    /// Why the session ended (the runner exited, the connection was lost, an op timed
    /// out), if it did.
    pub fn lost(&self) -> Option<String> {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .err()
            .cloned()
    }

    fn forget(&self, id: u64) {
        if let Ok(map) = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            map.remove(&id);
        }
    }

    /// Commands sent so far (each is one round trip).
    pub fn round_trips(&self) -> u64 {
        self.round_trips.load(Ordering::Relaxed)
    }

    /// Asks the runner to exit and waits briefly for it to close the stream.
    pub async fn close(self) {
        let mut line = serde_json::to_vec(&ControllerFrame::Exit).unwrap_or_default();
        line.push(b'\n');
        {
            let mut w = self.writer.lock().await;
            let _ = w.write_all(&line).await;
            let _ = w.flush().await;
            let _ = w.shutdown().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.reader).await;
    }
}

/// Routes `done`/`error` frames to their callers until the stream ends, then fails the rest.
async fn dispatch<R: AsyncRead + Unpin>(target: String, mut lines: BufReader<R>, pending: Pending) {
    let reason = loop {
        match read_frame(&mut lines, MAX_FRAME).await {
            Ok(Some(FrameLine::Line(line))) => {
                let (id, result) = match route(&line) {
                    Routed::Outcome(id, result) => (id, result),
                    Routed::Rejected(message) => {
                        tracing::warn!(target = %target, "runner rejected a frame: {message}");
                        continue;
                    }
                    Routed::Ignored(RunnerFrame::Event(ev)) => {
                        tracing::trace!(target = %target, id = ev.id, kind = ?ev.kind, "runner event");
                        continue;
                    }
                    Routed::Ignored(_) => continue,
                    // A runner speaks only frames: anything else means the target is
                    // not running our runner (or is compromised), so its calls fail now
                    // rather than wait out their timeout.
                    Routed::Unreadable(e) => {
                        break format!(
                            "the runner on `{target}` sent a line that is not a frame ({e}); the session is closed"
                        );
                    }
                };
                let tx = pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .ok()
                    .and_then(|m| m.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Ok(Some(FrameLine::TooLong)) => {
                break format!(
                    "the runner on `{target}` sent a frame longer than {MAX_FRAME} bytes; the session is closed"
                );
            }
            Ok(None) => break format!("the runner on `{target}` exited (connection closed)"),
            Err(e) => break format!("the connection to `{target}` failed: {e}"),
        }
    };
    fail_all(&pending, &reason);
}

/// Ends the session for `reason`: every waiting call fails with it, and so does every
/// later one. The first reason stays.
fn fail_all(pending: &Pending, reason: &str) {
    let rest = {
        let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.is_err() {
            return;
        }
        std::mem::replace(&mut *p, Err(reason.to_owned())).unwrap_or_default()
    };
    for (_, tx) in rest {
        let _ = tx.send(Err(CallError::Session(reason.to_owned())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, DuplexStream, duplex};

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_refused_without_buffering_it() {
        let data = b"short\n0123456789abcdef\nnext";
        let mut r = BufReader::with_capacity(4, &data[..]);
        let line = |s: &str| Some(FrameLine::Line(s.as_bytes().to_vec()));
        assert_eq!(read_frame(&mut r, 8).await.unwrap(), line("short"));
        assert_eq!(
            read_frame(&mut r, 8).await.unwrap(),
            Some(FrameLine::TooLong)
        );
        let mut last = BufReader::with_capacity(3, &b"a\n\nlast"[..]);
        assert_eq!(read_frame(&mut last, 8).await.unwrap(), line("a"));
        assert_eq!(read_frame(&mut last, 8).await.unwrap(), line(""));
        assert_eq!(read_frame(&mut last, 8).await.unwrap(), line("last"));
        assert_eq!(read_frame(&mut last, 8).await.unwrap(), None);
    }

    /// A fake runner on in-memory pipes (the protocol client is transport-agnostic): it
    /// announces itself, waits for the first command, then sends `reply`.
    async fn session_answering(reply: Vec<u8>) -> Session {
        let (ctrl_out, mut runner_out) = duplex(64 * 1024);
        let (ctrl_in, mut runner_in): (DuplexStream, DuplexStream) = duplex(64 * 1024);
        tokio::spawn(async move {
            let ready = RunnerFrame::Ready(Ready {
                version: "0".into(),
                pid: 1,
                arch: "x86_64".into(),
                os: "linux".into(),
                caps: vec!["exec".into()],
            });
            runner_out
                .write_all(format!("{}\n", ready.to_line()).as_bytes())
                .await
                .unwrap();
            let mut b = [0u8; 1];
            while runner_in.read(&mut b).await.unwrap_or(0) == 1 && b[0] != b'\n' {}
            for chunk in reply.chunks(64 * 1024) {
                if runner_out.write_all(chunk).await.is_err() {
                    return;
                }
            }
            // Keep the stream open: only the frame itself may end the session.
            std::future::pending::<()>().await;
        });
        Session::start(
            "t",
            Box::new(ctrl_out),
            Box::new(ctrl_in),
            Box::new(()),
            Duration::from_secs(10),
        )
        .await
        .unwrap()
    }

    /// A compromised target that sends one endless line: the controller holds at most
    /// `MAX_FRAME` bytes of it, then fails the session (before, `lines()` grew without bound).
    #[tokio::test]
    async fn a_frame_longer_than_max_frame_ends_the_session() {
        let s = session_answering(vec![b'x'; MAX_FRAME + 1]).await;
        let e = s
            .call("exec", Value::Null, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
        assert_eq!(e.class(), ErrorClass::Transient);
    }

    /// A line that is not a frame (here not even UTF-8) ends the session at once with
    /// that reason: the caller does not wait out its timeout, and later calls fail too.
    #[tokio::test]
    async fn a_garbage_line_ends_the_session_with_its_reason() {
        let reply = b"\xff\xfe garbage\n{\"type\":\"done\",\"id\":1,\"result\":7}\n".to_vec();
        let s = session_answering(reply).await;
        let e = s
            .call("exec", Value::Null, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("not a frame"), "{e}");
        assert!(s.lost().is_some_and(|r| r.contains("not a frame")));
        let again = s
            .call("exec", Value::Null, Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(again.to_string().contains("is closed"), "{again}");
    }
}
