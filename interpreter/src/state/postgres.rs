//! [`Store`] on a PostgreSQL database shared by many controllers and projects (the
//! cluster profile). Each project lives in a schema of its own (`froyo_<name>_<hash>`),
//! so its tables and the SQLite store's have the same shape and the same queries; the
//! advisory-lock keys are derived from that schema name, so two projects on one database
//! never block each other (the Terraform pg-backend bug, hashicorp/terraform#22833).
//!
//! Locks are session-level advisory locks on a connection of their own, held for the
//! whole command and released when it closes (also when the process dies): the project
//! lock is an exclusive lock on the project's key; an apply takes that key shared plus an
//! exclusive key per target, so applies on disjoint hosts run side by side while two on
//! the same host cannot. Migrations run under one database-wide transaction lock.

use std::path::Path;

use froyo_cluster::pg::{Failure, Pg, deadpool_postgres, lock_key, tokio_postgres};
use serde_json::Value as Json;

use super::sqlite::{kind_str, parse_kind, parse_status};
use super::{
    Event, LockGuard, OnboardedTarget, PlanUnit, ResourceRecord, Result, Run, RunId, RunKind,
    RunStatus, Store, UnitRecord, lock, now_ms,
};
use crate::error::Error;

/// Every migration, oldest first; `schema_version` says how many have run. Never edit one
/// that has shipped: append a new one. The tables mirror the SQLite store's (same columns,
/// JSON kept as text so copies between the two are byte-identical).
const MIGRATIONS: &[&str] = &[
    // 1: the SQLite schema as of its version 2, plus who holds which lock.
    r#"
    CREATE TABLE targets (
        name        TEXT PRIMARY KEY,
        address     TEXT NOT NULL,
        first_seen  BIGINT NOT NULL,
        last_seen   BIGINT NOT NULL
    );
    CREATE TABLE runs (
        id          BIGSERIAL PRIMARY KEY,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        playbook    TEXT,
        pid         BIGINT NOT NULL,
        host        TEXT NOT NULL,
        started_ms  BIGINT NOT NULL,
        finished_ms BIGINT
    );
    CREATE TABLE plan_units (
        run_id      BIGINT NOT NULL REFERENCES runs(id),
        target      TEXT NOT NULL,
        resource    TEXT NOT NULL,
        kind        TEXT NOT NULL,
        summary     TEXT NOT NULL,
        status      TEXT NOT NULL,
        PRIMARY KEY (run_id, target, resource)
    );
    CREATE TABLE events (
        id          BIGSERIAL PRIMARY KEY,
        run_id      BIGINT NOT NULL REFERENCES runs(id),
        ts_ms       BIGINT NOT NULL,
        target      TEXT,
        resource    TEXT,
        kind        TEXT NOT NULL,
        data        TEXT NOT NULL
    );
    CREATE INDEX events_run ON events(run_id, id);
    -- Events are history: they are appended, never changed.
    CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'events are append-only'; END $$;
    CREATE TRIGGER events_no_change BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION events_append_only();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION events_append_only();
    CREATE TABLE resource_state (
        target        TEXT NOT NULL,
        resource      TEXT NOT NULL,
        type_name     TEXT NOT NULL,
        config        TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        run_id        BIGINT NOT NULL REFERENCES runs(id),
        applied_ms    BIGINT NOT NULL,
        PRIMARY KEY (target, resource)
    );
    CREATE TABLE pending_handlers (
        target      TEXT NOT NULL,
        handler     TEXT NOT NULL,
        notified_by TEXT NOT NULL,
        run_id      BIGINT NOT NULL REFERENCES runs(id),
        PRIMARY KEY (target, handler, notified_by)
    );
    CREATE TABLE facts (
        target       TEXT NOT NULL,
        name         TEXT NOT NULL,
        value        TEXT NOT NULL,
        collected_ms BIGINT NOT NULL,
        ttl_secs     BIGINT NOT NULL,
        PRIMARY KEY (target, name)
    );
    CREATE TABLE audit (
        id          BIGSERIAL PRIMARY KEY,
        ts_ms       BIGINT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE TABLE onboarded (
        name         TEXT PRIMARY KEY,
        address      TEXT NOT NULL,
        "user"       TEXT NOT NULL,
        fingerprint  TEXT NOT NULL,
        labels       TEXT NOT NULL,
        changes      TEXT NOT NULL,
        onboarded_ms BIGINT NOT NULL
    );
    -- Who holds each advisory lock, to name them to a process that is refused; the lock
    -- itself is the truth (a row left by a dead holder is overwritten by the next one).
    CREATE TABLE lock_holders (
        key          BIGINT PRIMARY KEY,
        pid          BIGINT NOT NULL,
        host         TEXT NOT NULL,
        command      TEXT NOT NULL,
        acquired_ms  BIGINT NOT NULL
    );
    "#,
    // 2: the work queue's claims (`apply --queue`, `froyo worker`): one row per (run,
    // host) published, the attempt that owns it (the JetStream delivery count of the
    // latest claim), and how it ended. Writes of a worker carry its attempt and are
    // refused once a later claim took the host (`state::fenced`).
    r#"
    CREATE TABLE work_claims (
        run_id       BIGINT NOT NULL REFERENCES runs(id),
        target       TEXT NOT NULL,
        attempt      BIGINT NOT NULL,
        worker       TEXT NOT NULL,
        status       TEXT NOT NULL,
        updated_ms   BIGINT NOT NULL,
        report       TEXT,
        PRIMARY KEY (run_id, target)
    );
    "#,
];

// Statements shared with the fenced writes of `state::claims`.
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (run_id, ts_ms, target, resource, kind, data)
     VALUES ($1, $2, $3, $4, $5, $6)";
pub(super) const SET_UNIT_STATUS: &str =
    "UPDATE plan_units SET status = $1 WHERE run_id = $2 AND target = $3 AND resource = $4";
pub(super) const PUT_RESOURCE: &str = "INSERT INTO resource_state
     (target, resource, type_name, config, config_sha256, run_id, applied_ms)
     VALUES ($1, $2, $3, $4, $5, $6, $7)
     ON CONFLICT (target, resource) DO UPDATE SET type_name = $3, config = $4,
         config_sha256 = $5, run_id = $6, applied_ms = $7";
pub(super) const ADD_PENDING: &str =
    "INSERT INTO pending_handlers (target, handler, notified_by, run_id)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
pub(super) const WITHDRAW_PENDING: &str =
    "DELETE FROM pending_handlers WHERE target = $1 AND handler = $2 AND notified_by = $3";
pub(super) const CLEAR_PENDING: &str =
    "DELETE FROM pending_handlers WHERE target = $1 AND handler = $2";
pub(super) const REMOVE_RESOURCE: &str =
    "DELETE FROM resource_state WHERE target = $1 AND resource = $2";

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// The schema of a project namespace: `froyo_` + its name cut to a plain identifier + a
/// hash of the exact name (so `web-1` and `web_1` stay apart), at most 63 bytes.
pub fn schema_of(namespace: &str) -> String {
    let plain: String = namespace
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(40)
        .collect();
    let hash = crate::util::sha256_hex(namespace.as_bytes());
    format!("froyo_{plain}_{}", &hash[..8])
}

/// The PostgreSQL store of one project (namespace) on one database.
#[derive(Debug)]
pub struct PgStore {
    pg: Pg,
    schema: String,
    namespace: String,
}

fn server_error(e: froyo_cluster::Error) -> Error {
    use froyo_cluster::Error as E;
    let (url, message, help) = match e {
        E::Url { url, message } => (
            url,
            format!("not a usable PostgreSQL URL: {message}"),
            "write it as postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE in `[state] url` of froyo.toml or FROYO_STATE_URL",
        ),
        E::Connect { url, message } => (
            url,
            format!("cannot reach the server: {message}"),
            "check that PostgreSQL runs and accepts this user from this machine; unset FROYO_STATE_URL (and `[state] url`) to use .froyo/state.db",
        ),
        E::Query { url, message } | E::Queue { url, message } => (
            url,
            message,
            "the state server refused a query; `froyo state migrate --to URL` copies a local state to a new server",
        ),
    };
    Error::StateServer {
        url,
        message,
        help: help.into(),
    }
}

impl PgStore {
    /// Connects to `url` and opens (creating and migrating as needed) the state of the
    /// project `namespace`.
    pub fn open(url: &str, namespace: &str) -> Result<PgStore> {
        let schema = schema_of(namespace);
        let app = format!("froyo {} (pid {})", namespace, std::process::id());
        let app: String = app.chars().take(60).collect();
        let pg = Pg::connect(url, &schema, &app).map_err(server_error)?;
        let store = PgStore {
            pg,
            schema,
            namespace: namespace.to_owned(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// The URL as it may be shown (no password).
    pub fn shown_url(&self) -> &str {
        self.pg.shown_url()
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Runs one future on the pool and waits for it.
    pub(super) fn run<T, Fut>(&self, f: impl FnOnce(deadpool_postgres::Pool) -> Fut) -> Result<T>
    where
        T: Send + 'static,
        Fut: std::future::Future<Output = std::result::Result<T, Failure>> + Send + 'static,
    {
        self.pg.run(f).map_err(server_error)
    }

    /// The schema version of this project's tables.
    pub fn version(&self) -> Result<i64> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            Ok(c.query_one("SELECT version FROM schema_version", &[])
                .await?
                .get(0))
        })
    }

    /// Brings the project's schema up to [`LATEST`] in one transaction under a
    /// database-wide advisory lock (two first opens at once must not both create it);
    /// refuses a schema written by a newer froyo.
    fn migrate(&self) -> Result<()> {
        let schema = self.schema.clone();
        let key = lock_key(&["froyo", "migrations"]);
        let outcome = self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
                .await?;
            tx.batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.schema_version (version BIGINT NOT NULL)"
            ))
            .await?;
            let current: i64 = tx
                .query_opt("SELECT version FROM schema_version", &[])
                .await?
                .map(|r| r.get(0))
                .unwrap_or(0);
            if current > LATEST {
                return Ok(Some(current));
            }
            for (i, sql) in MIGRATIONS
                .iter()
                .enumerate()
                .skip(usize::try_from(current).unwrap_or(0))
            {
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| Failure(format!("migration {}: {}", i + 1, Failure::from(e).0)))?;
            }
            tx.execute("DELETE FROM schema_version", &[]).await?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&LATEST],
            )
            .await?;
            tx.commit().await?;
            Ok(None)
        })?;
        match outcome {
            Some(newer) => Err(Error::StateServer {
                url: self.shown_url().to_owned(),
                message: format!(
                    "the state of `{}` has schema version {newer}, newer than this froyo understands ({LATEST})",
                    self.namespace
                ),
                help: "upgrade froyo".into(),
            }),
            None => Ok(()),
        }
    }

    fn project_key(&self) -> i64 {
        lock_key(&[&self.schema, "project"])
    }

    fn target_key(&self, target: &str) -> i64 {
        lock_key(&[&self.schema, "target", target])
    }

    /// Takes `shared` and `exclusive` keys on a connection of its own, records the holder
    /// of each, or says who holds the first one that is taken.
    fn take_locks(
        &self,
        command: &str,
        shared: &[i64],
        exclusive: &[(i64, Option<&str>)],
    ) -> Result<LockGuard> {
        let keys: Vec<i64> = exclusive.iter().map(|(k, _)| *k).collect();
        match self
            .pg
            .try_session_locks(shared, &keys)
            .map_err(server_error)?
        {
            Ok(held) => {
                let (pid, host, command) = (
                    i64::from(std::process::id()),
                    lock::hostname(),
                    command.to_owned(),
                );
                let all: Vec<i64> = shared.iter().copied().chain(keys).collect();
                // Holders of shared keys are not recorded: an exclusive taker that is
                // refused by one names whoever wrote last, which is one of them.
                self.run(move |pool| async move {
                    let c = pool.get().await?;
                    let now = now_ms();
                    for key in all {
                        c.execute(
                            "INSERT INTO lock_holders (key, pid, host, command, acquired_ms)
                             VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (key) DO UPDATE SET pid = $2, host = $3, command = $4,
                                 acquired_ms = $5",
                            &[&key, &pid, &host, &command, &now],
                        )
                        .await?;
                    }
                    Ok(())
                })?;
                Ok(LockGuard::held(Box::new(held)))
            }
            Err(key) => {
                let holder = self.run(move |pool| async move {
                    let c = pool.get().await?;
                    Ok(c.query_opt(
                        "SELECT pid, host, command, acquired_ms FROM lock_holders WHERE key = $1",
                        &[&key],
                    )
                    .await?
                    .map(|r| lock::LockHolder {
                        pid: u32::try_from(r.get::<_, i64>(0)).unwrap_or(0),
                        host: r.get(1),
                        command: r.get(2),
                        acquired_ms: r.get(3),
                        heartbeat_ms: r.get(3),
                    }))
                })?;
                let what = exclusive
                    .iter()
                    .find(|(k, _)| *k == key)
                    .and_then(|(_, t)| *t)
                    .map(|t| format!(" (target `{t}`)"))
                    .unwrap_or_default();
                Err(Error::Locked {
                    holder: match holder {
                        Some(h) => format!("{h}{what}"),
                        None => format!("another froyo process{what}"),
                    },
                })
            }
        }
    }
}

impl Store for PgStore {
    fn lock(&self, command: &str) -> Result<LockGuard> {
        self.take_locks(command, &[], &[(self.project_key(), None)])
    }

    fn lock_targets(&self, command: &str, targets: &[String]) -> Result<LockGuard> {
        let mut keys: Vec<(i64, Option<&str>)> = targets
            .iter()
            .map(|t| (self.target_key(t), Some(t.as_str())))
            .collect();
        // One order for everyone, so two takers never each hold a part the other wants.
        keys.sort_by_key(|(k, _)| *k);
        keys.dedup_by_key(|(k, _)| *k);
        self.take_locks(command, &[self.project_key()], &keys)
    }

    fn begin_run(&self, kind: RunKind, playbook: Option<&str>) -> Result<RunId> {
        let (kind, playbook, host) = (
            kind_str(kind),
            playbook.map(str::to_owned),
            lock::hostname(),
        );
        let pid = i64::from(std::process::id());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let row = c
                .query_one(
                    "INSERT INTO runs (kind, status, playbook, pid, host, started_ms)
                     VALUES ($1, 'running', $2, $3, $4, $5) RETURNING id",
                    &[&kind, &playbook, &pid, &host, &now_ms()],
                )
                .await?;
            Ok(RunId(row.get(0)))
        })
    }

    fn finish_run(&self, run: RunId, status: RunStatus) -> Result<()> {
        let status = status.as_str();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(
                "UPDATE runs SET status = $1, finished_ms = $2 WHERE id = $3",
                &[&status, &now_ms(), &run.0],
            )
            .await?;
            Ok(())
        })
    }

    fn runs(&self, limit: usize) -> Result<Vec<Run>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT id, kind, status, playbook, started_ms, finished_ms, pid FROM runs
                     ORDER BY id DESC LIMIT $1",
                    &[&limit],
                )
                .await?;
            Ok(rows.iter().map(run_row).collect())
        })
    }

    fn reap_interrupted(&self) -> Result<Vec<RunId>> {
        let host = lock::hostname();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let running = tx
                .query(
                    "SELECT id, pid FROM runs WHERE status = 'running' AND host = $1 FOR UPDATE",
                    &[&host],
                )
                .await?;
            let mut reaped = Vec::new();
            for r in running {
                let (id, pid): (i64, i64) = (r.get(0), r.get(1));
                // Only a run of this machine can be known dead; others wait for their host.
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    tx.execute(
                        "UPDATE runs SET status = 'interrupted' WHERE id = $1",
                        &[&id],
                    )
                    .await?;
                    reaped.push(RunId(id));
                }
            }
            tx.commit().await?;
            Ok(reaped)
        })
    }

    fn append_event(&self, run: RunId, e: &Event) -> Result<()> {
        let e = e.clone();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(
                INSERT_EVENT,
                &[
                    &run.0,
                    &e.ts_ms,
                    &e.target,
                    &e.resource,
                    &e.kind,
                    &e.data.to_string(),
                ],
            )
            .await?;
            Ok(())
        })
    }

    fn events(&self, run: RunId) -> Result<Vec<Event>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT ts_ms, target, resource, kind, data FROM events WHERE run_id = $1 ORDER BY id",
                    &[&run.0],
                )
                .await?;
            Ok(rows.iter().map(event_row).collect())
        })
    }

    fn events_after(&self, run: RunId, after: i64) -> Result<Vec<(i64, Event)>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    "SELECT ts_ms, target, resource, kind, data, id FROM events
                     WHERE run_id = $1 AND id > $2 ORDER BY id",
                    &[&run.0, &after],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(5), event_row(r))).collect())
        })
    }

    fn run(&self, run: RunId) -> Result<Option<Run>> {
        PgStore::run(self, move |pool| async move {
            let c = pool.get().await?;
            let row = c
                .query_opt(
                    "SELECT id, kind, status, playbook, started_ms, finished_ms, pid FROM runs
                     WHERE id = $1",
                    &[&run.0],
                )
                .await?;
            Ok(row.as_ref().map(run_row))
        })
    }

    fn put_plan_units(&self, run: RunId, units: &[PlanUnit]) -> Result<()> {
        let units = units.to_vec();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            let st = tx
                .prepare(
                    "INSERT INTO plan_units (run_id, target, resource, kind, summary, status)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (run_id, target, resource) DO UPDATE
                     SET kind = $4, summary = $5, status = $6",
                )
                .await?;
            for u in &units {
                tx.execute(
                    &st,
                    &[
                        &run.0,
                        &u.target,
                        &u.resource,
                        &u.kind,
                        &u.summary,
                        &u.status,
                    ],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn set_unit_status(
        &self,
        run: RunId,
        target: &str,
        resource: &str,
        status: &str,
    ) -> Result<()> {
        let (target, resource, status) =
            (target.to_owned(), resource.to_owned(), status.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(SET_UNIT_STATUS, &[&status, &run.0, &target, &resource])
                .await?;
            Ok(())
        })
    }

    fn plan_units(&self, run: RunId) -> Result<Vec<PlanUnit>> {
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    r#"SELECT target, resource, kind, summary, status FROM plan_units
                       WHERE run_id = $1 ORDER BY target COLLATE "C", resource COLLATE "C""#,
                    &[&run.0],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| PlanUnit {
                    target: r.get(0),
                    resource: r.get(1),
                    kind: r.get(2),
                    summary: r.get(3),
                    status: r.get(4),
                })
                .collect())
        })
    }

    fn put_resource(&self, r: &ResourceRecord) -> Result<()> {
        let r = r.clone();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            put_resource(&**c, &r).await?;
            Ok(())
        })
    }

    fn remove_resource(&self, target: &str, resource: &str) -> Result<()> {
        let (target, resource) = (target.to_owned(), resource.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(REMOVE_RESOURCE, &[&target, &resource]).await?;
            Ok(())
        })
    }

    fn resources(&self, target: Option<&str>) -> Result<Vec<ResourceRecord>> {
        let target = target.map(str::to_owned);
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    r#"SELECT target, resource, type_name, config, config_sha256, run_id, applied_ms
                       FROM resource_state WHERE $1::text IS NULL OR target = $1
                       ORDER BY target COLLATE "C", resource COLLATE "C""#,
                    &[&target],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| ResourceRecord {
                    target: r.get(0),
                    resource: r.get(1),
                    type_name: r.get(2),
                    config: parse_json(r.get(3)),
                    config_sha256: r.get(4),
                    run: RunId(r.get(5)),
                    applied_ms: r.get(6),
                })
                .collect())
        })
    }

    fn add_pending(&self, target: &str, handler: &str, by: &str, run: RunId) -> Result<()> {
        let (target, handler, by) = (target.to_owned(), handler.to_owned(), by.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            add_pending(&**c, &target, &handler, &by, run).await?;
            Ok(())
        })
    }

    fn clear_pending(&self, target: &str, handler: &str) -> Result<()> {
        let (target, handler) = (target.to_owned(), handler.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(CLEAR_PENDING, &[&target, &handler]).await?;
            Ok(())
        })
    }

    fn pending(&self, target: &str) -> Result<Vec<(String, String)>> {
        let target = target.to_owned();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    r#"SELECT handler, notified_by FROM pending_handlers WHERE target = $1
                       ORDER BY handler COLLATE "C", notified_by COLLATE "C""#,
                    &[&target],
                )
                .await?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn record_unit(&self, run: RunId, u: &UnitRecord<'_>) -> Result<()> {
        let (target, resource, status) = (
            u.target.to_owned(),
            u.resource.to_owned(),
            u.status.to_owned(),
        );
        let record = u.record.cloned();
        let notified = u.notified.to_vec();
        let withdrawn = u.withdrawn.to_vec();
        self.run(move |pool| async move {
            let mut c = pool.get().await?;
            let tx = c.transaction().await?;
            if let Some(r) = &record {
                put_resource(&*tx, r).await?;
            }
            tx.execute(SET_UNIT_STATUS, &[&status, &run.0, &target, &resource])
                .await?;
            for handler in &notified {
                add_pending(&*tx, &target, handler, &resource, run).await?;
            }
            for handler in &withdrawn {
                tx.execute(WITHDRAW_PENDING, &[&target, handler, &resource])
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    fn touch_target(&self, name: &str, address: &str) -> Result<()> {
        let (name, address) = (name.to_owned(), address.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(
                "INSERT INTO targets (name, address, first_seen, last_seen) VALUES ($1, $2, $3, $3)
                 ON CONFLICT (name) DO UPDATE SET address = $2, last_seen = $3",
                &[&name, &address, &now_ms()],
            )
            .await?;
            Ok(())
        })
    }

    fn put_fact(&self, target: &str, name: &str, value: &Json, ttl_secs: u64) -> Result<()> {
        let (target, name, value) = (target.to_owned(), name.to_owned(), value.to_string());
        let ttl = i64::try_from(ttl_secs).unwrap_or(i64::MAX);
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(
                "INSERT INTO facts (target, name, value, collected_ms, ttl_secs)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (target, name) DO UPDATE
                 SET value = $3, collected_ms = $4, ttl_secs = $5",
                &[&target, &name, &value, &now_ms(), &ttl],
            )
            .await?;
            Ok(())
        })
    }

    fn fact(&self, target: &str, name: &str) -> Result<Option<Json>> {
        let (target, name) = (target.to_owned(), name.to_owned());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            // In numeric: a TTL near i64::MAX must not overflow the sum.
            let row = c
                .query_opt(
                    "SELECT value FROM facts WHERE target = $1 AND name = $2
                     AND collected_ms::numeric + ttl_secs::numeric * 1000 > ($3::bigint)::numeric",
                    &[&target, &name, &now_ms()],
                )
                .await?;
            Ok(row.map(|r| parse_json(r.get(0))))
        })
    }

    fn forget_facts(&self, target: &str) -> Result<()> {
        let target = target.to_owned();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute("DELETE FROM facts WHERE target = $1", &[&target])
                .await?;
            Ok(())
        })
    }

    fn audit(&self, action: &str, detail: &Json) -> Result<()> {
        let actor = format!(
            "{}@{} (pid {})",
            std::env::var("USER").unwrap_or_else(|_| "?".into()),
            lock::hostname(),
            std::process::id()
        );
        let (action, detail) = (action.to_owned(), detail.to_string());
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(
                "INSERT INTO audit (ts_ms, actor, action, detail) VALUES ($1, $2, $3, $4)",
                &[&now_ms(), &actor, &action, &detail],
            )
            .await?;
            Ok(())
        })
    }

    fn put_onboarded(&self, t: &OnboardedTarget) -> Result<()> {
        let labels = serde_json::to_string(&t.labels).unwrap_or_default();
        let changes = t.changes.to_string();
        let t = t.clone();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute(
                r#"INSERT INTO onboarded (name, address, "user", fingerprint, labels, changes, onboarded_ms)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (name) DO UPDATE SET address = $2, "user" = $3, fingerprint = $4,
                       labels = $5, changes = $6, onboarded_ms = $7"#,
                &[&t.name, &t.address, &t.user, &t.fingerprint, &labels, &changes, &now_ms()],
            )
            .await?;
            Ok(())
        })
    }

    fn onboarded(&self) -> Result<Vec<OnboardedTarget>> {
        self.run(|pool| async move {
            let c = pool.get().await?;
            let rows = c
                .query(
                    r#"SELECT name, address, "user", fingerprint, labels, changes FROM onboarded
                       ORDER BY name COLLATE "C""#,
                    &[],
                )
                .await?;
            Ok(rows
                .iter()
                .map(|r| OnboardedTarget {
                    name: r.get(0),
                    address: r.get(1),
                    user: r.get(2),
                    fingerprint: r.get(3),
                    labels: serde_json::from_str(r.get(4)).unwrap_or_default(),
                    changes: serde_json::from_str(r.get(5)).unwrap_or(Json::Null),
                })
                .collect())
        })
    }

    fn remove_onboarded(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.run(move |pool| async move {
            let c = pool.get().await?;
            c.execute("DELETE FROM onboarded WHERE name = $1", &[&name])
                .await?;
            Ok(())
        })
    }

    /// A SQLite file with the whole state, read in one snapshot (`REPEATABLE READ`):
    /// `froyo state migrate --to` brings it back into any PostgreSQL database.
    fn backup(&self, to: &Path) -> Result<()> {
        super::copy::postgres_to_sqlite(self, to).map(drop)
    }
}

fn parse_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or(Json::Null)
}

async fn put_resource(
    c: &impl tokio_postgres::GenericClient,
    r: &ResourceRecord,
) -> std::result::Result<(), Failure> {
    let config = super::redact(&r.config).to_string();
    c.execute(
        PUT_RESOURCE,
        &[
            &r.target,
            &r.resource,
            &r.type_name,
            &config,
            &r.config_sha256,
            &r.run.0,
            &r.applied_ms,
        ],
    )
    .await?;
    Ok(())
}

async fn add_pending(
    c: &impl tokio_postgres::GenericClient,
    target: &str,
    handler: &str,
    by: &str,
    run: RunId,
) -> std::result::Result<(), Failure> {
    c.execute(ADD_PENDING, &[&target, &handler, &by, &run.0])
        .await?;
    Ok(())
}

/// A `runs` row (`id, kind, status, playbook, started_ms, finished_ms, pid`).
fn run_row(r: &tokio_postgres::Row) -> Run {
    Run {
        id: RunId(r.get(0)),
        kind: parse_kind(r.get(1)),
        status: parse_status(r.get(2)),
        playbook: r.get(3),
        started_ms: r.get(4),
        finished_ms: r.get(5),
        pid: u32::try_from(r.get::<_, i64>(6)).unwrap_or(0),
    }
}

/// An `events` row (`ts_ms, target, resource, kind, data`).
fn event_row(r: &tokio_postgres::Row) -> Event {
    Event {
        ts_ms: r.get(0),
        target: r.get(1),
        resource: r.get(2),
        kind: r.get(3),
        data: parse_json(r.get(4)),
    }
}
