//! The controller's side of the runner protocol: one session per target, many commands
//! in flight over one byte stream, answered by id.
//!
//! Transport-agnostic: it takes the runner's stdout and stdin as async streams, whether
//! they are a local child's pipes or an SSH channel. When the stream ends (the runner
//! died, the connection dropped) every pending command fails with a clear error at once,
//! so nothing hangs.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use froyo_runner::protocol::{Cmd, ControllerFrame, ErrorClass, Ready, RunnerFrame};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex, oneshot};

use super::TargetError;

type Pending =
    Arc<std::sync::Mutex<Option<HashMap<u64, oneshot::Sender<Result<Value, CallError>>>>>>;

/// A failed command.
#[derive(Debug, Clone, thiserror::Error)]
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
        let mut lines = BufReader::new(stdout).lines();
        let first = tokio::time::timeout(timeout, lines.next_line())
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
        let first = first
            .ok_or_else(|| TargetError::new(target, "the runner exited before it was ready"))?;
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
        let pending: Pending = Arc::new(std::sync::Mutex::new(Some(HashMap::new())));
        let reader = tokio::spawn(dispatch(target.to_owned(), lines, pending.clone()));
        tracing::debug!(target, pid = ready.pid, version = %ready.version, "runner ready");
        Ok(Session {
            target: target.to_owned(),
            ready,
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
                Some(map) => map.insert(id, tx),
                None => {
                    return Err(CallError::Session(format!(
                        "the session to `{}` is closed",
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
                self.forget(id);
                Err(CallError::Session(format!(
                    "`{op}` on `{}` timed out after {}s",
                    self.target,
                    timeout.as_secs()
                )))
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Some(map) = self
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
async fn dispatch<R: AsyncRead + Unpin>(
    target: String,
    mut lines: tokio::io::Lines<BufReader<R>>,
    pending: Pending,
) {
    let reason = loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                let (id, result) = match serde_json::from_str::<RunnerFrame>(&line) {
                    Ok(RunnerFrame::Done(d)) => (d.id, Ok(d.result)),
                    Ok(RunnerFrame::Error(e)) if e.id != 0 => (
                        e.id,
                        Err(CallError::Op {
                            class: e.class,
                            message: e.message,
                        }),
                    ),
                    Ok(RunnerFrame::Error(e)) => {
                        tracing::warn!(target = %target, "runner rejected a frame: {}", e.message);
                        continue;
                    }
                    Ok(RunnerFrame::Event(ev)) => {
                        tracing::trace!(target = %target, id = ev.id, kind = ?ev.kind, "runner event");
                        continue;
                    }
                    Ok(RunnerFrame::Ready(_)) => continue,
                    Err(e) => {
                        tracing::warn!(target = %target, "unreadable frame from the runner: {e}");
                        continue;
                    }
                };
                let tx = pending
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_mut()
                    .and_then(|m| m.remove(&id));
                if let Some(tx) = tx {
                    let _ = tx.send(result);
                }
            }
            Ok(None) => break format!("the runner on `{target}` exited (connection closed)"),
            Err(e) => break format!("the connection to `{target}` failed: {e}"),
        }
    };
    let rest = pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .unwrap_or_default();
    for (_, tx) in rest {
        let _ = tx.send(Err(CallError::Session(reason.clone())));
    }
}
