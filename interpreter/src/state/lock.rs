//! The single-writer lock: one row in the `lock` table naming the process that holds it,
//! kept fresh by a heartbeat. A second writer is refused with the holder's name; a lock
//! whose process is gone (same machine) or whose heartbeat stopped is taken over.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::now_ms;
use crate::error::Error;

/// How often the holder refreshes its heartbeat.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A heartbeat older than this means the holder is gone (e.g. its machine died).
const STALE_MS: i64 = 30_000;

/// Who holds the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub command: String,
    pub acquired_ms: i64,
    pub heartbeat_ms: i64,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let age = (super::now_ms() - self.acquired_ms).max(0) / 1000;
        write!(
            f,
            "`froyo {}` (pid {} on {}, for {age}s)",
            self.command, self.pid, self.host
        )
    }
}

/// Holds the lock until dropped.
#[derive(Debug)]
pub struct LockGuard {
    inner: Inner,
    /// The holder that was taken over because it was stale, if any.
    pub took_over: Option<LockHolder>,
}

#[derive(Debug)]
enum Inner {
    /// The `lock` row of a SQLite state, kept fresh by a heartbeat thread.
    Sqlite {
        path: PathBuf,
        token: String,
        stop: Arc<AtomicBool>,
        heartbeat: Option<std::thread::JoinHandle<()>>,
    },
    /// Another backend's lock, released when this is dropped (PostgreSQL: the
    /// connection that holds the advisory locks).
    Held(#[allow(dead_code)] Box<dyn std::fmt::Debug + Send + Sync>),
}

impl LockGuard {
    /// A lock held by `holder` until the guard is dropped.
    pub(crate) fn held(holder: Box<dyn std::fmt::Debug + Send + Sync>) -> LockGuard {
        LockGuard {
            inner: Inner::Held(holder),
            took_over: None,
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Inner::Sqlite {
            path,
            token,
            stop,
            heartbeat,
        } = &mut self.inner
        else {
            return;
        };
        stop.store(true, Ordering::Relaxed);
        if let Some(h) = heartbeat.take() {
            h.thread().unpark();
            let _ = h.join();
        }
        if let Ok(conn) = open(path) {
            let _ = conn.execute("DELETE FROM lock WHERE token = ?1", [&*token]);
        }
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    Ok(conn)
}

/// This machine's name, to tell whether a holder's pid can be checked here.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// Whether `holder` no longer holds the lock in any meaningful way.
fn stale(holder: &LockHolder, now: i64) -> bool {
    (holder.host == hostname() && !alive(holder.pid)) || now - holder.heartbeat_ms > STALE_MS
}

/// Takes the lock of the database at `path` for `command`.
pub fn acquire(path: &Path, command: &str) -> Result<LockGuard, Error> {
    let err = |e: rusqlite::Error| Error::State {
        path: path.to_owned(),
        message: format!("lock: {}", super::sqlite::explain(path, e)),
    };
    let mut conn = open(path).map_err(err)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    let holder = tx
        .query_row(
            "SELECT pid, host, command, acquired_ms, heartbeat_ms FROM lock WHERE id = 1",
            [],
            |r| {
                Ok(LockHolder {
                    pid: r.get(0)?,
                    host: r.get(1)?,
                    command: r.get(2)?,
                    acquired_ms: r.get(3)?,
                    heartbeat_ms: r.get(4)?,
                })
            },
        )
        .optional()
        .map_err(err)?;
    let now = now_ms();
    let took_over = match holder {
        Some(h) if !stale(&h, now) => {
            return Err(Error::Locked {
                holder: h.to_string(),
            });
        }
        other => other,
    };
    let pid = std::process::id();
    let token = format!(
        "{pid}-{now}-{}",
        crate::util::sha256_hex(format!("{pid}{now}{command}").as_bytes())
    );
    tx.execute(
        "INSERT OR REPLACE INTO lock (id, pid, host, command, token, acquired_ms, heartbeat_ms)
         VALUES (1, ?1, ?2, ?3, ?4, ?5, ?5)",
        params![pid, hostname(), command, token, now],
    )
    .map_err(err)?;
    tx.commit().map_err(err)?;
    if let Some(h) = &took_over {
        tracing::warn!("took over a stale lock held by {h}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    let heartbeat = {
        let (stop, path, token) = (stop.clone(), path.to_owned(), token.clone());
        std::thread::Builder::new()
            .name("froyo-lock-heartbeat".into())
            .spawn(move || {
                let Ok(conn) = open(&path) else { return };
                while !stop.load(Ordering::Relaxed) {
                    std::thread::park_timeout(HEARTBEAT);
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let _ = conn.execute(
                        "UPDATE lock SET heartbeat_ms = ?1 WHERE token = ?2",
                        params![now_ms(), token],
                    );
                }
            })
            .ok()
    };
    Ok(LockGuard {
        inner: Inner::Sqlite {
            path: path.to_owned(),
            token,
            stop,
            heartbeat,
        },
        took_over,
    })
}
