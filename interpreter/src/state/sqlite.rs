//! [`Store`] on one SQLite file (`.froyo/state.db`): WAL, so readers never block the
//! writer; `synchronous = NORMAL`, which keeps every committed transaction through a
//! crash of the process (`kill -9`) and may lose only the last ones on power loss.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value as Json;

use super::{
    Event, LockGuard, OnboardedTarget, PlanUnit, ResourceRecord, Result, Run, RunId, RunKind,
    RunStatus, Store, UnitRecord, lock, migrations, now_ms,
};
use crate::error::Error;

/// The SQLite store of one project.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating and migrating as needed) `.froyo/state.db` under `root`.
    pub fn open_project(root: &Path) -> Result<SqliteStore> {
        let dir = super::ensure_state_dir(root)?;
        SqliteStore::open(&dir.join("state.db"))
    }

    /// Opens (creating and migrating as needed) the database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let err = |e: String| Error::State {
            path: path.to_owned(),
            message: explain(path, e),
        };
        let fresh = !path.exists();
        let mut conn = Connection::open(path).map_err(|e| err(e.to_string()))?;
        if fresh {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| err(e.to_string()))?;
        // Switching a new database to WAL while another process does the same can be
        // refused at once with "database is locked" (SQLite does not wait there, to avoid a
        // deadlock): retry that for as long as the busy timeout.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let step = conn
                .pragma_update(None, "journal_mode", "WAL")
                .and_then(|()| conn.pragma_update(None, "synchronous", "NORMAL"))
                .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
                .map_err(|e| e.to_string())
                .and_then(|()| migrations::migrate(&mut conn));
            match step {
                Ok(()) => break,
                Err(e)
                    if e.contains("database is locked") && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(err(e)),
            }
        }
        Ok(SqliteStore {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `PRAGMA integrity_check`: `ok`, or what is wrong.
    pub fn integrity_check(&self) -> Result<String> {
        self.with(|c| c.query_row("PRAGMA integrity_check", [], |r| r.get(0)))
    }

    /// Checks that `from` is a sound SQLite database (`PRAGMA integrity_check`).
    pub fn check_backup(from: &Path) -> Result<()> {
        let ok = SqliteStore::open_readonly(from)?.integrity_check()?;
        if ok != "ok" {
            return Err(Error::State {
                path: from.to_owned(),
                message: format!("the backup is damaged: {ok}"),
            });
        }
        Ok(())
    }

    /// When the project's `.froyo/state.db` cannot be opened or fails its integrity check,
    /// renames it (with its `-wal` and `-shm` files) to `state.db.damaged-<ms>` so that a
    /// restore can start from an empty file; the damaged copy is kept, never deleted.
    /// Returns where it went, or `None` when the state is sound or absent.
    pub fn set_aside_if_damaged(root: &Path) -> Result<Option<PathBuf>> {
        let path = super::state_dir(root).join("state.db");
        if !path.exists() {
            return Ok(None);
        }
        // Only damage sets the file aside; any other failure (a lock held too long, a
        // permission) is reported as it is and the file stays where it is.
        // (The message alone: the path in the error may contain any word.)
        let damaged = |e: &Error| match e {
            Error::State { message, .. } => ["not a database", "malformed", "corrupt"]
                .iter()
                .any(|d| message.contains(d)),
            _ => false,
        };
        match SqliteStore::open(&path).and_then(|s| s.integrity_check()) {
            Ok(ok) if ok == "ok" => return Ok(None),
            Ok(_) => {}
            Err(e) if damaged(&e) => {}
            Err(e) => return Err(e),
        }
        let aside = path.with_extension(format!("db.damaged-{}", now_ms()));
        let with_suffix = |p: &Path, suffix: &str| {
            let mut s = p.as_os_str().to_owned();
            s.push(suffix);
            PathBuf::from(s)
        };
        for suffix in ["", "-wal", "-shm"] {
            let from = with_suffix(&path, suffix);
            if from.exists() {
                let to = with_suffix(&aside, suffix);
                std::fs::rename(&from, &to).map_err(|e| Error::State {
                    path: from.clone(),
                    message: format!("cannot set the damaged state aside: {e}"),
                })?;
            }
        }
        Ok(Some(aside))
    }

    /// Replaces the whole state with the backup at `from` (checked first). Needs the lock.
    pub fn restore(&self, from: &Path, _lock: &LockGuard) -> Result<()> {
        SqliteStore::check_backup(from)?;
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        conn.restore(
            rusqlite::MAIN_DB,
            from,
            None::<fn(rusqlite::backup::Progress)>,
        )
        .map_err(|e| Error::State {
            path: self.path.clone(),
            message: format!("restore from {}: {e}", from.display()),
        })?;
        migrations::migrate(&mut conn).map_err(|message| Error::State {
            path: self.path.clone(),
            message,
        })
    }

    fn open_readonly(path: &Path) -> Result<SqliteStore> {
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| Error::State {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        Ok(SqliteStore {
            path: path.to_owned(),
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn).map_err(|e| Error::State {
            path: self.path.clone(),
            message: explain(&self.path, e),
        })
    }
}

/// SQLite reports a full filesystem as "database or disk is full" or, when its WAL index
/// cannot grow, as a bare "disk I/O error": when the state's filesystem has (almost) no
/// room left, the message says so, since that is what the user has to fix.
pub(super) fn explain(path: &Path, e: impl std::fmt::Display) -> String {
    let m = e.to_string();
    if (m.contains("disk I/O error") || m.contains("disk is full")) && filesystem_full(path) {
        return format!(
            "no space left on the filesystem of the state ({m}); free some space and run again"
        );
    }
    m
}

/// Whether the filesystem holding `path` has less than 64 KiB available.
fn filesystem_full(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let dir = path.parent().unwrap_or(path);
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a NUL-terminated path; `out` is a valid, writable `statvfs` that the
    // call fills in (all-zero bytes are a valid value of the plain C struct).
    let mut out: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut out) };
    rc == 0 && u128::from(out.f_bavail) * u128::from(out.f_frsize) < 64 * 1024
}

fn json_text(v: &Json) -> String {
    v.to_string()
}

fn parse_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or(Json::Null)
}

pub(super) fn kind_str(k: RunKind) -> &'static str {
    match k {
        RunKind::Plan => "plan",
        RunKind::Apply => "apply",
        RunKind::Drift => "drift",
        RunKind::Run => "run",
    }
}

pub(super) fn parse_kind(s: &str) -> RunKind {
    match s {
        "plan" => RunKind::Plan,
        "drift" => RunKind::Drift,
        "run" => RunKind::Run,
        _ => RunKind::Apply,
    }
}

pub(super) fn parse_status(s: &str) -> RunStatus {
    match s {
        "succeeded" => RunStatus::Succeeded,
        "failed" => RunStatus::Failed,
        "interrupted" => RunStatus::Interrupted,
        _ => RunStatus::Running,
    }
}

/// A `runs` row of `SELECT id, kind, status, playbook, started_ms, finished_ms, pid`.
fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: RunId(r.get(0)?),
        kind: parse_kind(&r.get::<_, String>(1)?),
        status: parse_status(&r.get::<_, String>(2)?),
        playbook: r.get(3)?,
        started_ms: r.get(4)?,
        finished_ms: r.get(5)?,
        pid: r.get(6)?,
    })
}

impl Store for SqliteStore {
    fn lock(&self, command: &str) -> Result<LockGuard> {
        lock::acquire(&self.path, command)
    }

    fn begin_run(&self, kind: RunKind, playbook: Option<&str>) -> Result<RunId> {
        self.with(|c| {
            c.execute(
                "INSERT INTO runs (kind, status, playbook, pid, host, started_ms)
                 VALUES (?1, 'running', ?2, ?3, ?4, ?5)",
                params![
                    kind_str(kind),
                    playbook,
                    std::process::id(),
                    lock::hostname(),
                    now_ms()
                ],
            )?;
            Ok(RunId(c.last_insert_rowid()))
        })
    }

    fn finish_run(&self, run: RunId, status: RunStatus) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET status = ?1, finished_ms = ?2 WHERE id = ?3",
                params![status.as_str(), now_ms(), run.0],
            )
            .map(drop)
        })
    }

    fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, kind, status, playbook, started_ms, finished_ms, pid FROM runs
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = st.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], run_row)?;
            rows.collect()
        })
    }

    fn reap_interrupted(&self) -> Result<Vec<RunId>> {
        let host = lock::hostname();
        self.with(|c| {
            let tx = c.transaction()?;
            let running: Vec<(i64, u32, String)> = {
                let mut st =
                    tx.prepare("SELECT id, pid, host FROM runs WHERE status = 'running'")?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let mut reaped = Vec::new();
            for (id, pid, h) in running {
                // Only a run of this machine can be known dead; others wait for their host.
                if h == host && !Path::new(&format!("/proc/{pid}")).exists() {
                    tx.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?1", [id])?;
                    reaped.push(RunId(id));
                }
            }
            tx.commit()?;
            Ok(reaped)
        })
    }

    fn append_event(&self, run: RunId, e: &Event) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO events (run_id, ts_ms, target, resource, kind, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    run.0,
                    e.ts_ms,
                    e.target,
                    e.resource,
                    e.kind,
                    json_text(&e.data)
                ],
            )
            .map(drop)
        })
    }

    fn events(&self, run: RunId) -> Result<Vec<Event>> {
        Ok(self
            .events_after(run, 0)?
            .into_iter()
            .map(|(_, e)| e)
            .collect())
    }

    fn events_after(&self, run: RunId, after: i64) -> Result<Vec<(i64, Event)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, ts_ms, target, resource, kind, data FROM events
                 WHERE run_id = ?1 AND id > ?2 ORDER BY id",
            )?;
            let rows = st.query_map(params![run.0, after], |r| {
                Ok((
                    r.get(0)?,
                    Event {
                        ts_ms: r.get(1)?,
                        target: r.get(2)?,
                        resource: r.get(3)?,
                        kind: r.get(4)?,
                        data: parse_json(&r.get::<_, String>(5)?),
                    },
                ))
            })?;
            rows.collect()
        })
    }

    fn run(&self, run: RunId) -> Result<Option<Run>> {
        self.with(|c| {
            c.query_row(
                "SELECT id, kind, status, playbook, started_ms, finished_ms, pid FROM runs
                 WHERE id = ?1",
                [run.0],
                run_row,
            )
            .optional()
        })
    }

    fn put_plan_units(&self, run: RunId, units: &[PlanUnit]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare(
                    "INSERT OR REPLACE INTO plan_units (run_id, target, resource, kind, summary, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?;
                for u in units {
                    st.execute(params![run.0, u.target, u.resource, u.kind, u.summary, u.status])?;
                }
            }
            tx.commit()
        })
    }

    fn set_unit_status(
        &self,
        run: RunId,
        target: &str,
        resource: &str,
        status: &str,
    ) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE plan_units SET status = ?1 WHERE run_id = ?2 AND target = ?3 AND resource = ?4",
                params![status, run.0, target, resource],
            )
            .map(drop)
        })
    }

    fn plan_units(&self, run: RunId) -> Result<Vec<PlanUnit>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT target, resource, kind, summary, status FROM plan_units WHERE run_id = ?1
                 ORDER BY target, resource",
            )?;
            let rows = st.query_map([run.0], |r| {
                Ok(PlanUnit {
                    target: r.get(0)?,
                    resource: r.get(1)?,
                    kind: r.get(2)?,
                    summary: r.get(3)?,
                    status: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }

    fn put_resource(&self, r: &ResourceRecord) -> Result<()> {
        let config = super::redact(&r.config);
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO resource_state
                 (target, resource, type_name, config, config_sha256, run_id, applied_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    r.target,
                    r.resource,
                    r.type_name,
                    json_text(&config),
                    r.config_sha256,
                    r.run.0,
                    r.applied_ms
                ],
            )
            .map(drop)
        })
    }

    fn remove_resource(&self, target: &str, resource: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM resource_state WHERE target = ?1 AND resource = ?2",
                params![target, resource],
            )
            .map(drop)
        })
    }

    fn resources(&self, target: Option<&str>) -> Result<Vec<ResourceRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT target, resource, type_name, config, config_sha256, run_id, applied_ms
                 FROM resource_state WHERE ?1 IS NULL OR target = ?1 ORDER BY target, resource",
            )?;
            let rows = st.query_map([target], |r| {
                Ok(ResourceRecord {
                    target: r.get(0)?,
                    resource: r.get(1)?,
                    type_name: r.get(2)?,
                    config: parse_json(&r.get::<_, String>(3)?),
                    config_sha256: r.get(4)?,
                    run: RunId(r.get(5)?),
                    applied_ms: r.get(6)?,
                })
            })?;
            rows.collect()
        })
    }

    fn add_pending(&self, target: &str, handler: &str, by: &str, run: RunId) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO pending_handlers (target, handler, notified_by, run_id)
                 VALUES (?1, ?2, ?3, ?4)",
                params![target, handler, by, run.0],
            )
            .map(drop)
        })
    }

    fn clear_pending(&self, target: &str, handler: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM pending_handlers WHERE target = ?1 AND handler = ?2",
                params![target, handler],
            )
            .map(drop)
        })
    }

    fn pending(&self, target: &str) -> Result<Vec<(String, String)>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT handler, notified_by FROM pending_handlers WHERE target = ?1
                 ORDER BY handler, notified_by",
            )?;
            let rows = st.query_map([target], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
    }

    fn record_unit(&self, run: RunId, u: &UnitRecord<'_>) -> Result<()> {
        let record = u.record.map(|r| (r, super::redact(&r.config)));
        self.with(|c| {
            let tx = c.transaction()?;
            if let Some((r, config)) = &record {
                tx.execute(
                    "INSERT OR REPLACE INTO resource_state
                     (target, resource, type_name, config, config_sha256, run_id, applied_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        r.target,
                        r.resource,
                        r.type_name,
                        json_text(config),
                        r.config_sha256,
                        r.run.0,
                        r.applied_ms
                    ],
                )?;
            }
            tx.execute(
                "UPDATE plan_units SET status = ?1 WHERE run_id = ?2 AND target = ?3 AND resource = ?4",
                params![u.status, run.0, u.target, u.resource],
            )?;
            for handler in u.notified {
                tx.execute(
                    "INSERT OR IGNORE INTO pending_handlers (target, handler, notified_by, run_id)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![u.target, handler, u.resource, run.0],
                )?;
            }
            for handler in u.withdrawn {
                tx.execute(
                    "DELETE FROM pending_handlers WHERE target = ?1 AND handler = ?2 AND notified_by = ?3",
                    params![u.target, handler, u.resource],
                )?;
            }
            tx.commit()
        })
    }

    fn touch_target(&self, name: &str, address: &str) -> Result<()> {
        let now = now_ms();
        self.with(|c| {
            c.execute(
                "INSERT INTO targets (name, address, first_seen, last_seen) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(name) DO UPDATE SET address = ?2, last_seen = ?3",
                params![name, address, now],
            )
            .map(drop)
        })
    }

    fn put_onboarded(&self, t: &OnboardedTarget) -> Result<()> {
        let labels = serde_json::to_string(&t.labels).unwrap_or_default();
        let changes = t.changes.to_string();
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO onboarded (name, address, user, fingerprint, labels, changes, onboarded_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![t.name, t.address, t.user, t.fingerprint, labels, changes, now_ms()],
            )
            .map(drop)
        })
    }

    fn onboarded(&self) -> Result<Vec<OnboardedTarget>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT name, address, user, fingerprint, labels, changes FROM onboarded ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| {
                let labels: String = r.get(4)?;
                let changes: String = r.get(5)?;
                Ok(OnboardedTarget {
                    name: r.get(0)?,
                    address: r.get(1)?,
                    user: r.get(2)?,
                    fingerprint: r.get(3)?,
                    labels: serde_json::from_str(&labels).unwrap_or_default(),
                    changes: serde_json::from_str(&changes).unwrap_or(Json::Null),
                })
            })?;
            rows.collect()
        })
    }

    fn remove_onboarded(&self, name: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM onboarded WHERE name = ?1", params![name])
                .map(drop)
        })
    }

    fn put_fact(&self, target: &str, name: &str, value: &Json, ttl_secs: u64) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO facts (target, name, value, collected_ms, ttl_secs)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    target,
                    name,
                    json_text(value),
                    now_ms(),
                    i64::try_from(ttl_secs).unwrap_or(i64::MAX)
                ],
            )
            .map(drop)
        })
    }

    fn fact(&self, target: &str, name: &str) -> Result<Option<Json>> {
        let now = now_ms();
        self.with(|c| {
            c.query_row(
                "SELECT value FROM facts WHERE target = ?1 AND name = ?2
                 AND collected_ms + ttl_secs * 1000 > ?3",
                params![target, name, now],
                |r| r.get::<_, String>(0),
            )
            .optional()
            .map(|v| v.map(|t| parse_json(&t)))
        })
    }

    fn forget_facts(&self, target: &str) -> Result<()> {
        self.with(|c| {
            c.execute("DELETE FROM facts WHERE target = ?1", [target])
                .map(drop)
        })
    }

    fn audit(&self, action: &str, detail: &Json) -> Result<()> {
        let actor = format!(
            "{}@{} (pid {})",
            std::env::var("USER").unwrap_or_else(|_| "?".into()),
            lock::hostname(),
            std::process::id()
        );
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (ts_ms, actor, action, detail) VALUES (?1, ?2, ?3, ?4)",
                params![now_ms(), actor, action, json_text(detail)],
            )
            .map(drop)
        })
    }

    fn backup(&self, to: &Path) -> Result<()> {
        if to.exists() {
            return Err(Error::State {
                path: to.to_owned(),
                message: "the backup file already exists; choose a new name".into(),
            });
        }
        let target = to.to_str().ok_or_else(|| Error::State {
            path: to.to_owned(),
            message: "the backup path is not UTF-8".into(),
        })?;
        // VACUUM INTO reads one consistent snapshot, whatever other connections write.
        self.with(|c| c.execute("VACUUM INTO ?1", [target]).map(drop))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open_project(dir.path()).unwrap();
        (dir, s)
    }

    /// The pid of a process that has exited.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    /// Two processes (here threads with their own connections) creating the same new
    /// database at once both succeed: a migration step runs once, under the write lock.
    #[test]
    fn concurrent_first_opens_migrate_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_owned();
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    let root = root.clone();
                    std::thread::spawn(move || SqliteStore::open_project(&root).map(drop))
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn migrations_run_once_and_a_newer_schema_is_refused() {
        let (dir, s) = store();
        let version: i64 = s
            .with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(version, migrations::LATEST);
        drop(s);
        let path = dir.path().join(".froyo/state.db");
        let again = SqliteStore::open(&path).unwrap();
        assert_eq!(again.integrity_check().unwrap(), "ok");
        again
            .with(|c| c.pragma_update(None, "user_version", 999))
            .unwrap();
        drop(again);
        let err = SqliteStore::open(&path).unwrap_err();
        assert!(err.to_string().contains("newer than this froyo"), "{err}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn runs_events_and_units_round_trip_and_events_are_append_only() {
        let (_d, s) = store();
        let run = s.begin_run(RunKind::Apply, Some("site.star")).unwrap();
        let e = Event {
            ts_ms: 1234,
            target: Some("local".into()),
            resource: Some("linux.file::file:/etc/motd".into()),
            kind: "operation_started".into(),
            data: json!({"op": "create"}),
        };
        s.append_event(run, &e).unwrap();
        assert_eq!(s.events(run).unwrap(), std::slice::from_ref(&e));
        let second = Event {
            kind: "summary".into(),
            ..e.clone()
        };
        s.append_event(run, &second).unwrap();
        let all = s.events_after(run, 0).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(s.events_after(run, all[0].0).unwrap(), [all[1].clone()]);
        assert_eq!(
            s.run(run).unwrap().map(|r| r.status),
            Some(RunStatus::Running)
        );
        assert_eq!(s.run(RunId(run.0 + 1)).unwrap(), None);
        let err = s
            .with(|c| c.execute("UPDATE events SET kind = 'x'", []))
            .unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        let unit = PlanUnit {
            target: "local".into(),
            resource: "r".into(),
            kind: "create".into(),
            summary: "create r".into(),
            status: "planned".into(),
        };
        s.put_plan_units(run, std::slice::from_ref(&unit)).unwrap();
        s.set_unit_status(run, "local", "r", "ok").unwrap();
        assert_eq!(s.plan_units(run).unwrap()[0].status, "ok");
        s.finish_run(run, RunStatus::Succeeded).unwrap();
        let runs = s.runs(10).unwrap();
        assert_eq!(runs[0].status, RunStatus::Succeeded);
        assert_eq!(runs[0].playbook.as_deref(), Some("site.star"));
    }

    #[test]
    fn a_dead_runs_status_becomes_interrupted() {
        let (_d, s) = store();
        let mine = s.begin_run(RunKind::Apply, None).unwrap();
        let dead = s.begin_run(RunKind::Apply, None).unwrap();
        s.with(|c| {
            c.execute(
                "UPDATE runs SET pid = ?1 WHERE id = ?2",
                params![dead_pid(), dead.0],
            )
        })
        .unwrap();
        assert_eq!(s.reap_interrupted().unwrap(), [dead]);
        let runs = s.runs(10).unwrap();
        let status = |id| runs.iter().find(|r| r.id == id).unwrap().status;
        assert_eq!(status(dead), RunStatus::Interrupted);
        assert_eq!(status(mine), RunStatus::Running);
    }

    #[test]
    fn the_lock_admits_one_writer_and_takes_over_a_dead_one() {
        let (_d, s) = store();
        let guard = s.lock("apply").unwrap();
        assert!(guard.took_over.is_none());
        let err = s.lock("apply").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`froyo apply`") && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(guard);
        // Released on drop: the next writer gets it.
        let guard = s.lock("drift").unwrap();
        drop(guard);
        // A holder whose process died (kill -9) is taken over.
        s.with(|c| {
            c.execute(
                "INSERT INTO lock (id, pid, host, command, token, acquired_ms, heartbeat_ms)
                 VALUES (1, ?1, ?2, 'apply', 't', ?3, ?3)",
                params![dead_pid(), lock::hostname(), now_ms()],
            )
        })
        .unwrap();
        let guard = s.lock("apply").unwrap();
        assert_eq!(
            guard.took_over.as_ref().map(|h| h.command.as_str()),
            Some("apply")
        );
        // A holder elsewhere with a fresh heartbeat is respected; a silent one is not.
        drop(guard);
        let other = |heartbeat: i64| {
            s.with(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO lock (id, pid, host, command, token, acquired_ms, heartbeat_ms)
                     VALUES (1, 1, 'elsewhere', 'apply', 't', ?1, ?1)",
                    [heartbeat],
                )
            })
            .unwrap();
        };
        other(now_ms());
        assert!(s.lock("apply").is_err());
        other(now_ms() - 60_000);
        assert!(s.lock("apply").is_ok());
    }

    #[test]
    fn resources_are_stored_without_sensitive_text() {
        let (dir, s) = store();
        let run = s.begin_run(RunKind::Apply, None).unwrap();
        let record = ResourceRecord {
            target: "local".into(),
            resource: "f".into(),
            type_name: "linux.file::file".into(),
            config: json!({"path": "/x", "content": {"$content": {"source": "template",
                "path": "t.j2", "sha256": "ab", "text": "TOKEN=hunter2", "sensitive": true}}}),
            config_sha256: "ab".into(),
            run,
            applied_ms: 1,
        };
        s.put_resource(&record).unwrap();
        let back = s.resources(Some("local")).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].config["content"]["$content"]["sha256"], "ab");
        assert!(s.resources(Some("other")).unwrap().is_empty());
        s.with(|c| c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)"))
            .unwrap();
        let raw = std::fs::read(dir.path().join(".froyo/state.db")).unwrap();
        assert!(
            !raw.windows(7).any(|w| w == b"hunter2"),
            "a secret reached the file"
        );
        s.remove_resource("local", "f").unwrap();
        assert!(s.resources(None).unwrap().is_empty());
    }

    #[test]
    fn facts_expire_pending_handlers_persist() {
        let (_d, s) = store();
        s.put_fact("web", "os.basic", &json!({"family": "debian"}), 60)
            .unwrap();
        s.put_fact("web", "hw.cpu", &json!({"count": 2}), 0)
            .unwrap();
        assert_eq!(
            s.fact("web", "os.basic").unwrap(),
            Some(json!({"family": "debian"}))
        );
        assert_eq!(
            s.fact("web", "hw.cpu").unwrap(),
            None,
            "TTL 0 is already stale"
        );
        let run = s.begin_run(RunKind::Apply, None).unwrap();
        s.add_pending("web", "restart nginx", "conf", run).unwrap();
        s.add_pending("web", "restart nginx", "conf", run).unwrap();
        assert_eq!(
            s.pending("web").unwrap(),
            [("restart nginx".to_owned(), "conf".to_owned())]
        );
        s.clear_pending("web", "restart nginx").unwrap();
        assert!(s.pending("web").unwrap().is_empty());
        s.touch_target("web", "127.0.0.1:2201").unwrap();
        s.audit("apply", &json!({"run": run.0})).unwrap();
    }

    #[test]
    fn backup_and_restore_round_trip() {
        let (dir, s) = store();
        let run = s.begin_run(RunKind::Apply, Some("a.star")).unwrap();
        let backup = dir.path().join("backup.db");
        s.backup(&backup).unwrap();
        assert!(
            s.backup(&backup).is_err(),
            "an existing file is not overwritten"
        );
        s.begin_run(RunKind::Apply, Some("b.star")).unwrap();
        assert_eq!(s.runs(10).unwrap().len(), 2);
        let guard = s.lock("restore").unwrap();
        s.restore(&backup, &guard).unwrap();
        let runs = s.runs(10).unwrap();
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), [run]);
        std::fs::write(dir.path().join("junk.db"), b"not a database at all").unwrap();
        assert!(s.restore(&dir.path().join("junk.db"), &guard).is_err());
        assert_eq!(s.runs(10).unwrap().len(), 1, "a bad backup changes nothing");
    }
}
