//! A whole state copied between SQLite and PostgreSQL, table by table with every id kept
//! (runs, events, audit rows keep their numbers), and proved by a row count and a sha256
//! per table computed on both sides from the rows in primary-key order. The copy commits
//! only when every table matches. Used by `froyo state migrate --to` (SQLite → PostgreSQL)
//! and by the PostgreSQL store's `backup` (PostgreSQL → a SQLite file).
//!
//! Both sides hold only integers and text (JSON is stored as text), so the encoding is
//! exact; text is ordered by bytes on both sides (`COLLATE "C"` in PostgreSQL).

use std::path::Path;

use froyo_cluster::pg::{Failure, tokio_postgres};
use sha2::{Digest, Sha256};
use tokio_postgres::types::ToSql;

use super::{PgStore, Result, SqliteStore, migrations};
use crate::error::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Int,
    Text,
}

/// A copied table: its columns (quoted where PostgreSQL needs it) and its key.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Ty)],
    key: &'static [&'static str],
}

use Ty::{Int, Text};

/// Every table of the state, parents before children (foreign keys). The writer lock
/// of SQLite and the lock holders of PostgreSQL are not state and are not copied.
const TABLES: &[Table] = &[
    Table {
        name: "targets",
        columns: &[
            ("name", Text),
            ("address", Text),
            ("first_seen", Int),
            ("last_seen", Int),
        ],
        key: &["name"],
    },
    Table {
        name: "runs",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("status", Text),
            ("playbook", Text),
            ("pid", Int),
            ("host", Text),
            ("started_ms", Int),
            ("finished_ms", Int),
        ],
        key: &["id"],
    },
    Table {
        name: "work_claims",
        columns: &[
            ("run_id", Int),
            ("target", Text),
            ("attempt", Int),
            ("worker", Text),
            ("status", Text),
            ("updated_ms", Int),
            ("report", Text),
        ],
        key: &["run_id", "target"],
    },
    Table {
        name: "plan_units",
        columns: &[
            ("run_id", Int),
            ("target", Text),
            ("resource", Text),
            ("kind", Text),
            ("summary", Text),
            ("status", Text),
        ],
        key: &["run_id", "target", "resource"],
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("run_id", Int),
            ("ts_ms", Int),
            ("target", Text),
            ("resource", Text),
            ("kind", Text),
            ("data", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "resource_state",
        columns: &[
            ("target", Text),
            ("resource", Text),
            ("type_name", Text),
            ("config", Text),
            ("config_sha256", Text),
            ("run_id", Int),
            ("applied_ms", Int),
        ],
        key: &["target", "resource"],
    },
    Table {
        name: "pending_handlers",
        columns: &[
            ("target", Text),
            ("handler", Text),
            ("notified_by", Text),
            ("run_id", Int),
        ],
        key: &["target", "handler", "notified_by"],
    },
    Table {
        name: "facts",
        columns: &[
            ("target", Text),
            ("name", Text),
            ("value", Text),
            ("collected_ms", Int),
            ("ttl_secs", Int),
        ],
        key: &["target", "name"],
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int),
            ("ts_ms", Int),
            ("actor", Text),
            ("action", Text),
            ("detail", Text),
        ],
        key: &["id"],
    },
    Table {
        name: "onboarded",
        columns: &[
            ("name", Text),
            ("address", Text),
            ("\"user\"", Text),
            ("fingerprint", Text),
            ("labels", Text),
            ("changes", Text),
            ("onboarded_ms", Int),
        ],
        key: &["name"],
    },
];

/// Tables whose `id` comes from a sequence (PostgreSQL) / AUTOINCREMENT (SQLite).
const SERIAL: &[&str] = &["runs", "events", "audit"];

/// One cell.
#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Int(i64),
    Text(String),
}

type Rows = Vec<Vec<V>>;

/// A table's row count and checksum, the same on both sides after a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSum {
    pub table: &'static str,
    pub rows: u64,
    pub sha256: String,
}

fn sum(table: &'static str, rows: &Rows) -> TableSum {
    let mut h = Sha256::new();
    for row in rows {
        for v in row {
            match v {
                V::Null => h.update(b"N"),
                V::Int(i) => h.update(format!("I{i};")),
                V::Text(t) => {
                    h.update(format!("T{}:", t.len()));
                    h.update(t.as_bytes());
                }
            }
        }
        h.update(b"\n");
    }
    TableSum {
        table,
        rows: rows.len() as u64,
        sha256: format!("{:x}", h.finalize()),
    }
}

fn columns(t: &Table) -> String {
    t.columns
        .iter()
        .map(|(c, _)| *c)
        .collect::<Vec<_>>()
        .join(", ")
}

fn order_pg(t: &Table) -> String {
    t.key
        .iter()
        .map(|k| {
            let ty = t.columns.iter().find(|(c, _)| c == k).map(|(_, ty)| *ty);
            if ty == Some(Text) {
                format!("{k} COLLATE \"C\"")
            } else {
                (*k).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn state_err(path: &Path, message: String) -> Error {
    Error::State {
        path: path.to_owned(),
        message,
    }
}

/// Every table of the SQLite file at `path`, read in one snapshot.
fn read_sqlite(conn: &rusqlite::Connection) -> rusqlite::Result<Vec<Rows>> {
    let mut all = Vec::new();
    for t in TABLES {
        let mut st = conn.prepare(&format!(
            "SELECT {} FROM {} ORDER BY {}",
            columns(t),
            t.name,
            t.key.join(", ")
        ))?;
        let rows = st.query_map([], |r| {
            (0..t.columns.len())
                .map(|i| {
                    Ok(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => V::Null,
                        rusqlite::types::ValueRef::Integer(n) => V::Int(n),
                        rusqlite::types::ValueRef::Text(s) => {
                            V::Text(String::from_utf8_lossy(s).into_owned())
                        }
                        other => {
                            return Err(rusqlite::Error::InvalidColumnType(
                                i,
                                t.columns[i].0.to_owned(),
                                other.data_type(),
                            ));
                        }
                    })
                })
                .collect::<rusqlite::Result<Vec<V>>>()
        })?;
        all.push(rows.collect::<rusqlite::Result<Rows>>()?);
    }
    Ok(all)
}

async fn read_pg(
    c: &impl tokio_postgres::GenericClient,
) -> std::result::Result<Vec<Rows>, Failure> {
    let mut all = Vec::new();
    for t in TABLES {
        let rows = c
            .query(
                &format!(
                    "SELECT {} FROM {} ORDER BY {}",
                    columns(t),
                    t.name,
                    order_pg(t)
                ),
                &[],
            )
            .await?;
        all.push(
            rows.iter()
                .map(|r| {
                    t.columns
                        .iter()
                        .enumerate()
                        .map(|(i, (_, ty))| match ty {
                            Int => r.get::<_, Option<i64>>(i).map_or(V::Null, V::Int),
                            Text => r.get::<_, Option<String>>(i).map_or(V::Null, V::Text),
                        })
                        .collect()
                })
                .collect(),
        );
    }
    Ok(all)
}

fn sums(tables: &[Rows]) -> Vec<TableSum> {
    TABLES
        .iter()
        .zip(tables)
        .map(|(t, rows)| sum(t.name, rows))
        .collect()
}

fn mismatch(from: &[TableSum], to: &[TableSum]) -> Option<String> {
    from.iter().zip(to).find(|(a, b)| a != b).map(|(a, b)| {
        format!(
            "table `{}`: {} rows ({}) copied as {} rows ({})",
            a.table,
            a.rows,
            &a.sha256[..12],
            b.rows,
            &b.sha256[..12]
        )
    })
}

/// Copies the SQLite state at `from` into `to`, which must hold no state yet; returns
/// the per-table counts and checksums, equal on both sides.
pub fn sqlite_to_postgres(from: &Path, to: &PgStore) -> Result<Vec<TableSum>> {
    // Opening it migrates an older file to this froyo's schema first.
    drop(SqliteStore::open(from)?);
    let mut conn =
        rusqlite::Connection::open_with_flags(from, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|e| state_err(from, e.to_string()))?;
    let tables = {
        let tx = conn
            .transaction()
            .map_err(|e| state_err(from, e.to_string()))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| state_err(from, e.to_string()))?;
        if version != migrations::LATEST {
            return Err(state_err(
                from,
                format!("schema version {version}, expected {}", migrations::LATEST),
            ));
        }
        read_sqlite(&tx).map_err(|e| state_err(from, e.to_string()))?
    };
    let expected = sums(&tables);
    let namespace = to.namespace().to_owned();
    let copied = to.run(move |pool| async move {
        let mut c = pool.get().await?;
        let tx = c.transaction().await?;
        let mut present = 0i64;
        for t in TABLES {
            present += tx
                .query_one(&format!("SELECT count(*) FROM {}", t.name), &[])
                .await?
                .get::<_, i64>(0);
        }
        if present > 0 {
            return Err(Failure(format!(
                "the state of `{namespace}` on this server is not empty ({present} rows); \
                 copy into a new namespace (`[state] namespace`) or database"
            )));
        }
        for (t, rows) in TABLES.iter().zip(&tables) {
            let marks = (1..=t.columns.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ");
            let st = tx
                .prepare(&format!(
                    "INSERT INTO {} ({}) VALUES ({marks})",
                    t.name,
                    columns(t)
                ))
                .await?;
            for row in rows {
                let params: Vec<Box<dyn ToSql + Sync + Send>> = row
                    .iter()
                    .zip(t.columns)
                    .map(|(v, (_, ty))| -> Box<dyn ToSql + Sync + Send> {
                        match (v, ty) {
                            (V::Int(i), _) => Box::new(*i),
                            (V::Text(s), _) => Box::new(s.clone()),
                            (V::Null, Int) => Box::new(None::<i64>),
                            (V::Null, Text) => Box::new(None::<String>),
                        }
                    })
                    .collect();
                let refs: Vec<&(dyn ToSql + Sync)> = params
                    .iter()
                    .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                    .collect();
                tx.execute(&st, &refs).await?;
            }
        }
        for t in SERIAL {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', 'id'),
                         GREATEST((SELECT COALESCE(MAX(id), 0) FROM {t}), 1),
                         (SELECT count(*) > 0 FROM {t}))"
                ),
                &[],
            )
            .await?;
        }
        let copied = sums(&read_pg(&*tx).await?);
        if let Some(m) = mismatch(&expected, &copied) {
            // Dropping the transaction rolls the whole copy back.
            return Err(Failure(format!("the copy does not match the source: {m}")));
        }
        tx.commit().await?;
        Ok(copied)
    })?;
    Ok(copied)
}

/// Writes the whole PostgreSQL state `from` (one `REPEATABLE READ` snapshot) into a new
/// SQLite file `to`; returns the per-table counts and checksums, equal on both sides.
pub fn postgres_to_sqlite(from: &PgStore, to: &Path) -> Result<Vec<TableSum>> {
    if to.exists() {
        return Err(state_err(
            to,
            "the backup file already exists; choose a new name".into(),
        ));
    }
    let tables = from.run(|pool| async move {
        let mut c = pool.get().await?;
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let tables = read_pg(&*tx).await?;
        tx.commit().await?;
        Ok(tables)
    })?;
    let expected = sums(&tables);
    drop(SqliteStore::open(to)?);
    let mut conn = rusqlite::Connection::open(to).map_err(|e| state_err(to, e.to_string()))?;
    let err = |e: rusqlite::Error| state_err(to, e.to_string());
    let tx = conn.transaction().map_err(err)?;
    for (t, rows) in TABLES.iter().zip(&tables) {
        let marks = (1..=t.columns.len())
            .map(|i| format!("?{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut st = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({marks})",
                t.name,
                columns(t).replace('"', "")
            ))
            .map_err(err)?;
        for row in rows {
            let params: Vec<rusqlite::types::Value> = row
                .iter()
                .map(|v| match v {
                    V::Null => rusqlite::types::Value::Null,
                    V::Int(i) => rusqlite::types::Value::Integer(*i),
                    V::Text(s) => rusqlite::types::Value::Text(s.clone()),
                })
                .collect();
            st.execute(rusqlite::params_from_iter(params))
                .map_err(err)?;
        }
    }
    let copied = sums(&read_sqlite(&tx).map_err(err)?);
    if let Some(m) = mismatch(&expected, &copied) {
        drop(tx);
        let _ = std::fs::remove_file(to);
        return Err(state_err(
            to,
            format!("the copy does not match the source: {m}"),
        ));
    }
    tx.commit().map_err(err)?;
    Ok(copied)
}
