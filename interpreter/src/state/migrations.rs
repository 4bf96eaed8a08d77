//! The state database's schema, as an ordered list of migrations: `PRAGMA user_version`
//! says how many have run, and each runs once, in its own transaction.

use rusqlite::Connection;

/// Every migration, oldest first. Never edit one that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    r#"
    CREATE TABLE targets (
        name        TEXT PRIMARY KEY,
        address     TEXT NOT NULL,
        first_seen  INTEGER NOT NULL,
        last_seen   INTEGER NOT NULL
    );
    CREATE TABLE runs (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        kind        TEXT NOT NULL,
        status      TEXT NOT NULL,
        playbook    TEXT,
        pid         INTEGER NOT NULL,
        host        TEXT NOT NULL,
        started_ms  INTEGER NOT NULL,
        finished_ms INTEGER
    );
    CREATE TABLE plan_units (
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        target      TEXT NOT NULL,
        resource    TEXT NOT NULL,
        kind        TEXT NOT NULL,
        summary     TEXT NOT NULL,
        status      TEXT NOT NULL,
        PRIMARY KEY (run_id, target, resource)
    );
    CREATE TABLE events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        ts_ms       INTEGER NOT NULL,
        target      TEXT,
        resource    TEXT,
        kind        TEXT NOT NULL,
        data        TEXT NOT NULL
    );
    CREATE INDEX events_run ON events(run_id, id);
    -- Events are history: they are appended, never changed.
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TABLE resource_state (
        target        TEXT NOT NULL,
        resource      TEXT NOT NULL,
        type_name     TEXT NOT NULL,
        config        TEXT NOT NULL,
        config_sha256 TEXT NOT NULL,
        run_id        INTEGER NOT NULL REFERENCES runs(id),
        applied_ms    INTEGER NOT NULL,
        PRIMARY KEY (target, resource)
    );
    CREATE TABLE pending_handlers (
        target      TEXT NOT NULL,
        handler     TEXT NOT NULL,
        notified_by TEXT NOT NULL,
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        PRIMARY KEY (target, handler, notified_by)
    );
    CREATE TABLE facts (
        target      TEXT NOT NULL,
        name        TEXT NOT NULL,
        value       TEXT NOT NULL,
        collected_ms INTEGER NOT NULL,
        ttl_secs    INTEGER NOT NULL,
        PRIMARY KEY (target, name)
    );
    CREATE TABLE audit (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms       INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        detail      TEXT NOT NULL
    );
    CREATE TABLE lock (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        pid         INTEGER NOT NULL,
        host        TEXT NOT NULL,
        command     TEXT NOT NULL,
        token       TEXT NOT NULL,
        acquired_ms INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL
    );
    "#,
    // 2: targets onboarded with `froyo onboard ssh` (user, host key, labels, and what
    // onboarding changed, so `onboard rollback` can undo exactly that).
    r#"
    CREATE TABLE onboarded (
        name        TEXT PRIMARY KEY,
        address     TEXT NOT NULL,
        user        TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        labels      TEXT NOT NULL,
        changes     TEXT NOT NULL,
        onboarded_ms INTEGER NOT NULL
    );
    "#,
    // 3: the work queue's claims, as the PostgreSQL state has them (its migration 2). A
    // solo SQLite state never writes them; the table is here so that a backup of a
    // cluster state (`froyo state backup`, PostgreSQL → SQLite) and its restore are whole.
    r#"
    CREATE TABLE work_claims (
        run_id      INTEGER NOT NULL REFERENCES runs(id),
        target      TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        worker      TEXT NOT NULL,
        status      TEXT NOT NULL,
        updated_ms  INTEGER NOT NULL,
        report      TEXT,
        PRIMARY KEY (run_id, target)
    );
    "#,
];

/// The schema version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`LATEST`]; refuses one written by a newer froyo.
pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let current: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if current > LATEST {
        return Err(format!(
            "the database has schema version {current}, newer than this froyo understands ({LATEST}); upgrade froyo"
        ));
    }
    for (i, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(current).unwrap_or(0))
    {
        // IMMEDIATE takes the write lock first, and the version is read again under it:
        // two processes opening a new database at once (an apply and a `froyo` next to
        // it) must not both run the same step.
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        let now: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| e.to_string())?;
        if now > i64::try_from(i).unwrap_or(i64::MAX) {
            continue;
        }
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {}: {e}", i + 1))?;
        tx.pragma_update(
            None,
            "user_version",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        )
        .map_err(|e| e.to_string())?;
        tx.commit().map_err(|e| e.to_string())?;
    }
    Ok(())
}
