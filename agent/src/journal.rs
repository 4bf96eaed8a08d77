//! The journal: SQLite (WAL) under the data dir. Every deploy and each of its steps
//! (`fetch`, `install`, `stop`, `start`, `ready`, `rollback`, `commit`) is a row written
//! before the agent moves on, and the plan in effect is stored resolved, so a restarted
//! agent resumes it without its files.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{AgentError, Result};
use crate::resolve::ResolvedPlan;

pub struct Journal {
    conn: Connection,
    path: PathBuf,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deploys (
    id INTEGER PRIMARY KEY,
    plan_path TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    status TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS steps (
    id INTEGER PRIMARY KEY,
    deploy_id INTEGER NOT NULL,
    component TEXT NOT NULL,
    version TEXT NOT NULL,
    step TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS components (
    name TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    digest TEXT NOT NULL,
    pid INTEGER,
    state TEXT NOT NULL
);
";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Journal {
    pub fn open(path: &Path) -> Result<Self> {
        let err = |e: rusqlite::Error| AgentError::State {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(err)?;
        // One small connection: a 256 KiB page cache keeps the agent's memory flat.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-256;",
        )
        .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(Journal {
            conn,
            path: path.to_path_buf(),
        })
    }

    fn err(&self, e: rusqlite::Error) -> AgentError {
        AgentError::State {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    pub fn begin(&self, plan_path: &str) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO deploys (plan_path, started_at, status) VALUES (?1, ?2, 'applying')",
                params![plan_path, now_ms()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn step(
        &self,
        deploy: i64,
        component: &str,
        version: &str,
        step: &str,
        outcome: &str,
        detail: Option<&str>,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO steps (deploy_id, component, version, step, outcome, detail, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![deploy, component, version, step, outcome, detail, now_ms()],
            )
            .map_err(|e| self.err(e))?;
        crate::failpoint::hit(step, outcome);
        Ok(())
    }

    pub fn finish(&self, deploy: i64, status: &str, error: Option<&str>) -> Result<()> {
        self.conn
            .execute(
                "UPDATE deploys SET finished_at = ?1, status = ?2, error = ?3 WHERE id = ?4",
                params![now_ms(), status, error, deploy],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Records the plan in effect (resolved) and its status.
    pub fn save_plan(&self, plan: &ResolvedPlan, status: &str) -> Result<()> {
        let json = serde_json::to_string(plan).unwrap_or_default();
        self.set_meta("plan", &json)?;
        self.set_meta("plan_status", status)
    }

    /// Records the plan an apply is bringing in, until it finishes: a restarted agent
    /// re-applies it.
    pub fn set_pending(&self, plan: Option<&ResolvedPlan>) -> Result<()> {
        match plan {
            Some(p) => self.set_meta("pending", &serde_json::to_string(p).unwrap_or_default()),
            None => {
                self.conn
                    .execute("DELETE FROM meta WHERE key = 'pending'", [])
                    .map_err(|e| self.err(e))?;
                Ok(())
            }
        }
    }

    /// The plan of an apply that never finished (the agent died during it).
    pub fn pending(&self) -> Result<Option<ResolvedPlan>> {
        Ok(self
            .meta("pending")?
            .and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// The plan in effect when the agent last ran, and its status.
    pub fn load_plan(&self) -> Result<Option<(ResolvedPlan, String)>> {
        let Some(json) = self.meta("plan")? else {
            return Ok(None);
        };
        let status = self.meta("plan_status")?.unwrap_or_default();
        Ok(serde_json::from_str(&json).ok().map(|p| (p, status)))
    }

    pub fn set_component(
        &self,
        name: &str,
        version: &str,
        digest: &str,
        pid: Option<u32>,
        state: &str,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO components (name, version, digest, pid, state) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET version = excluded.version, digest = excluded.digest, pid = excluded.pid, state = excluded.state",
                params![name, version, digest, pid, state],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn remove_component(&self, name: &str) -> Result<()> {
        self.conn
            .execute("DELETE FROM components WHERE name = ?1", params![name])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Unfinished deploys (the agent died during them) are marked `interrupted`.
    pub fn close_interrupted(&self) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE deploys SET status = 'interrupted', finished_at = ?1 WHERE status = 'applying'",
                params![now_ms()],
            )
            .map_err(|e| self.err(e))
    }
}
