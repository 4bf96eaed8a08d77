//! The project's memory: what was applied where, every run and its events, facts with a
//! TTL, the audit trail and the single-writer lock. SQLite (`.froyo/state.db`, WAL) and
//! PostgreSQL (the cluster profile, `[state] url`) sit behind the [`Store`] trait;
//! [`open`] picks the project's.
//!
//! Invariant: nothing secret is written in clear. Configs are stored as the engine holds
//! them, where secrets are `$secret` references (never values), and [`redact`] drops the
//! text of sensitive content before anything reaches the database.

mod claims;
mod copy;
mod location;
mod lock;
mod migrations;
mod postgres;
mod sqlite;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

pub use claims::{Claim, Claimed, Fence, FencedStore};
pub use copy::{TableSum, postgres_to_sqlite, sqlite_to_postgres};
pub use location::{Location, STATE_URL_ENV, location, namespace, open, open_existing};
pub use lock::{LockGuard, LockHolder, hostname};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::error::Error;

pub type Result<T> = std::result::Result<T, Error>;

/// A run's database id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

/// What a run was started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunKind {
    Plan,
    Apply,
    Drift,
    Run,
}

/// How a run ended; `running` is also what an interrupted run stays as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    Interrupted,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Run {
    pub id: RunId,
    pub kind: RunKind,
    pub status: RunStatus,
    pub playbook: Option<String>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    pub pid: u32,
}

/// One step of a run, appended before and after it happens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// When it happened (milliseconds since the Unix epoch).
    pub ts_ms: i64,
    /// The host (target) it happened on.
    pub target: Option<String>,
    pub resource: Option<String>,
    /// The event type of the stream (`docs/events.md`): `resource_started`, `summary`, …
    pub kind: String,
    /// The type's own fields (an object).
    pub data: Json,
}

/// A target onboarded with `froyo onboard ssh`: how to reach it, the host key trusted on
/// first use, its labels, and what onboarding changed on it (for rollback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnboardedTarget {
    pub name: String,
    /// `host:port`.
    pub address: String,
    /// The user froyo logs in as from now on.
    pub user: String,
    /// `SHA256:…` of the host key recorded in `.froyo/known_hosts`.
    pub fingerprint: String,
    pub labels: std::collections::BTreeMap<String, String>,
    /// `{"user_created": bool, "sudoers": name|null, "sshd_dropin": name|null, …}`.
    pub changes: Json,
}

/// What the last successful apply of one resource left behind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    pub target: String,
    pub resource: String,
    pub type_name: String,
    /// The desired config as applied, passed through [`redact`].
    pub config: Json,
    pub config_sha256: String,
    pub run: RunId,
    pub applied_ms: i64,
}

/// One unit of a plan (a resource on a host) and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanUnit {
    pub target: String,
    pub resource: String,
    /// `create`, `update`, `delete`, `run`, `check`, `noop`, `unknown`, `skip`.
    pub kind: String,
    pub summary: String,
    /// `planned`, `ok`, `failed`, `skipped`.
    pub status: String,
}

/// What applying one unit did, recorded together by [`Store::record_unit`].
#[derive(Debug, Clone, Copy)]
pub struct UnitRecord<'a> {
    pub target: &'a str,
    pub resource: &'a str,
    /// The unit's new status in the run's plan (`ok`, `failed`, `skipped`).
    pub status: &'a str,
    /// The resource's new state, when it was applied.
    pub record: Option<&'a ResourceRecord>,
    /// The handlers it notified.
    pub notified: &'a [String],
    /// Handlers whose notification by this resource was recorded in advance (before its
    /// operations ran, so a process killed in between still leaves it pending) and that
    /// it did not notify after all: their rows are deleted.
    pub withdrawn: &'a [String],
}

/// The durable state of a project. One writer at a time ([`Store::lock`]).
pub trait Store {
    /// Takes the project's writer lock for `command`, or says who holds it.
    fn lock(&self, command: &str) -> Result<LockGuard>;

    /// The lock of a command that changes only `targets` (an apply): by default the
    /// project's writer lock; a shared store locks each target instead, so applies on
    /// disjoint targets run side by side.
    fn lock_targets(&self, command: &str, targets: &[String]) -> Result<LockGuard> {
        let _ = targets;
        self.lock(command)
    }

    /// Records a unit's status, the resource's new state and the handlers it notified
    /// in one transaction: a crash keeps all or none, so a change is never kept while
    /// the notification it sent is lost.
    fn record_unit(&self, run: RunId, unit: &UnitRecord<'_>) -> Result<()> {
        if let Some(r) = unit.record {
            self.put_resource(r)?;
        }
        self.set_unit_status(run, unit.target, unit.resource, unit.status)?;
        for h in unit.notified {
            self.add_pending(unit.target, h, unit.resource, run)?;
        }
        // Without a way to delete one notifier's row, a withdrawn intent stays pending:
        // the handler runs once more than needed, never once less.
        Ok(())
    }

    fn begin_run(&self, kind: RunKind, playbook: Option<&str>) -> Result<RunId>;
    fn finish_run(&self, run: RunId, status: RunStatus) -> Result<()>;
    fn runs(&self, limit: usize) -> Result<Vec<Run>>;
    /// Marks runs still `running` whose process is gone as `interrupted`; returns them.
    fn reap_interrupted(&self) -> Result<Vec<RunId>>;

    fn append_event(&self, run: RunId, event: &Event) -> Result<()>;
    fn events(&self, run: RunId) -> Result<Vec<Event>>;
    /// The events of `run` recorded after the one with id `after` (0: all), with their ids.
    fn events_after(&self, run: RunId, after: i64) -> Result<Vec<(i64, Event)>>;
    /// One run, if it exists.
    fn run(&self, run: RunId) -> Result<Option<Run>>;

    fn put_plan_units(&self, run: RunId, units: &[PlanUnit]) -> Result<()>;
    fn set_unit_status(&self, run: RunId, target: &str, resource: &str, status: &str)
    -> Result<()>;
    fn plan_units(&self, run: RunId) -> Result<Vec<PlanUnit>>;

    fn put_resource(&self, record: &ResourceRecord) -> Result<()>;
    fn remove_resource(&self, target: &str, resource: &str) -> Result<()>;
    /// Every recorded resource, of one target or all.
    fn resources(&self, target: Option<&str>) -> Result<Vec<ResourceRecord>>;

    /// Notifications that were sent but whose handler has not run yet.
    fn add_pending(&self, target: &str, handler: &str, notified_by: &str, run: RunId)
    -> Result<()>;
    fn clear_pending(&self, target: &str, handler: &str) -> Result<()>;
    /// `(handler, notified_by)` pairs pending on `target`.
    fn pending(&self, target: &str) -> Result<Vec<(String, String)>>;

    fn touch_target(&self, name: &str, address: &str) -> Result<()>;

    fn put_fact(&self, target: &str, name: &str, value: &Json, ttl_secs: u64) -> Result<()>;
    /// The fact if it was collected less than its TTL ago.
    fn fact(&self, target: &str, name: &str) -> Result<Option<Json>>;
    /// Drops the cached facts of `target` (something on it changed).
    fn forget_facts(&self, target: &str) -> Result<()>;

    fn audit(&self, action: &str, detail: &Json) -> Result<()>;

    /// Records (or replaces) a target onboarded with `froyo onboard ssh`.
    fn put_onboarded(&self, t: &OnboardedTarget) -> Result<()>;

    /// Every onboarded target, by name.
    fn onboarded(&self) -> Result<Vec<OnboardedTarget>>;

    /// Forgets an onboarded target (after `froyo onboard rollback`).
    fn remove_onboarded(&self, name: &str) -> Result<()>;

    /// A consistent copy of the whole state, taken while others may be writing.
    fn backup(&self, to: &std::path::Path) -> Result<()>;
}

/// The project's state directory (`.froyo/` under the root).
pub fn state_dir(root: &std::path::Path) -> PathBuf {
    root.join(".froyo")
}

/// Creates `.froyo/` private to the user (it holds the state, keys and caches).
pub fn ensure_state_dir(root: &std::path::Path) -> Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    let dir = state_dir(root);
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::State {
                path: dir.clone(),
                message: e.to_string(),
            })?;
    }
    Ok(dir)
}

/// A copy of `config` fit for the state and plan files: the text of sensitive content is
/// dropped (its sha256 stays, so changes are still noticed); `$secret` markers are
/// references and are kept.
pub fn redact(config: &Json) -> Json {
    match config {
        Json::Object(map) => {
            if let Some(Json::Object(c)) = map.get("$content")
                && c.get("sensitive") == Some(&Json::Bool(true))
            {
                let mut c = c.clone();
                c.remove("text");
                if let Some(vars) = c.get_mut("vars") {
                    *vars = redact(vars);
                }
                return serde_json::json!({ "$content": c });
            }
            Json::Object(map.iter().map(|(k, v)| (k.clone(), redact(v))).collect())
        }
        Json::Array(items) => Json::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn redaction_drops_sensitive_text_only() {
        let config = json!({
            "path": "/etc/app.env",
            "content": {"$content": {"source": "template", "path": "t.j2", "sha256": "ab",
                                     "text": "TOKEN=hunter2", "sensitive": true}},
            "other": {"$content": {"source": "asset", "path": "a", "sha256": "cd", "text": "public"}},
            "password": {"$secret": "env://PW"},
        });
        let r = redact(&config);
        assert!(!r.to_string().contains("hunter2"));
        assert_eq!(r["content"]["$content"]["sha256"], "ab");
        assert_eq!(r["other"]["$content"]["text"], "public");
        assert_eq!(r["password"], config["password"]);
    }
}
