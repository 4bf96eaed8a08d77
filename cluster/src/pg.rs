//! PostgreSQL from synchronous code. The engine's `Store` trait is synchronous (the
//! SQLite store is plain blocking calls), so a [`Pg`] owns a small Tokio runtime of its
//! own, a connection pool (deadpool) on it, and runs each query as a task it waits for.
//! It never blocks on another runtime's thread, so it works from a plain thread and from
//! inside the engine's runtime alike.
//!
//! Session-level advisory locks need a connection that stays open for as long as the lock
//! is held and that nobody else uses: [`Pg::try_session_locks`] opens one outside the pool.
//!
//! Invariant: a password in a URL never reaches an error, a log line or a trace; the URL
//! is shown only through [`redact_url`].

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;
pub use {deadpool_postgres, tokio_postgres};

use crate::Error;
use crate::rt::Rt;

/// How long connecting may take before the server counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in the pool (the engine applies a few resources at once).
const POOL_SIZE: usize = 8;

/// A query's failure, before [`Pg`] adds which server it was.
#[derive(Debug)]
pub struct Failure(pub String);

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Failure {
        match e.as_db_error() {
            Some(db) => {
                let mut msg = format!("{}: {}", db.severity(), db.message());
                if let Some(detail) = db.detail() {
                    msg.push_str(&format!(" ({detail})"));
                }
                Failure(msg)
            }
            None => Failure(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for Failure {
    fn from(e: deadpool_postgres::PoolError) -> Failure {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => Failure(other.to_string()),
        }
    }
}

/// `url` with the password (if any) replaced by `***`; also what is shown of a URL that
/// does not parse.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_owned(),
    };
    // A password may also come as `?password=…`.
    let tail = tail
        .split('&')
        .map(|kv| match kv.split_once("password=") {
            Some((k, _)) => format!("{k}password=***"),
            None => kv.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&");
    format!("{scheme}://{authority}{tail}")
}

/// The password written in `url`, to mask it out of any message that might echo it.
pub(crate) fn password_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let userinfo = authority.rsplit_once('@')?.0;
    Some(userinfo.split_once(':')?.1.to_owned()).filter(|p| !p.is_empty())
}

/// Whether `url` names a PostgreSQL server (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// A signed 64-bit advisory-lock key for `parts`: sha256 over the parts, each followed by
/// a NUL, so distinct lists never meet (`["a", "bc"]` ≠ `["ab", "c"]`). Callers put their
/// namespace first: two projects on one database then never share a key.
pub fn lock_key(parts: &[&str]) -> i64 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    let d = h.finalize();
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// A pool of connections to one PostgreSQL database, usable from synchronous code.
pub struct Pg {
    rt: Arc<Rt>,
    pool: Pool,
    config: tokio_postgres::Config,
    /// The URL as it may be shown.
    shown: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("url", &self.shown).finish()
    }
}

impl Pg {
    /// Connects to `url`; every connection runs with `search_path` set to `schema` (which
    /// must be a plain identifier) and `application_name` to `app`. Fails at once when the
    /// URL is malformed or the server cannot be reached.
    pub fn connect(url: &str, schema: &str, app: &str) -> Result<Pg, Error> {
        let shown = redact_url(url);
        if !is_postgres_url(url) {
            return Err(Error::Url {
                url: shown,
                message: "it must start with postgres:// or postgresql://".into(),
            });
        }
        if !schema
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(Error::Url {
                url: shown,
                message: format!("`{schema}` is not a plain schema name"),
            });
        }
        let mask = |msg: String| match password_of(url) {
            Some(p) => msg.replace(&p, "***"),
            None => msg,
        };
        let mut config = tokio_postgres::Config::from_str(url).map_err(|e| Error::Url {
            url: shown.clone(),
            message: mask(e.to_string()),
        })?;
        config
            .connect_timeout(CONNECT_TIMEOUT)
            .application_name(app)
            .options(format!("-c search_path={schema}"));
        let rt = Rt::new("froyo-pg").map_err(|message| Error::Connect {
            url: shown.clone(),
            message,
        })?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = {
            let _entered = rt.handle().enter();
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .create_timeout(Some(CONNECT_TIMEOUT))
                .wait_timeout(Some(Duration::from_secs(60)))
                .build()
                .map_err(|e| Error::Connect {
                    url: shown.clone(),
                    message: e.to_string(),
                })?
        };
        let pg = Pg {
            rt,
            pool,
            config,
            shown,
        };
        // Reach the server now, so a wrong URL is one clear error and not the first query's.
        pg.run(|pool| async move {
            drop(pool.get().await?);
            Ok(())
        })
        .map_err(|e| Error::Connect {
            url: pg.shown.clone(),
            message: mask(match e {
                Error::Query { message, .. } => message,
                other => other.to_string(),
            }),
        })?;
        Ok(pg)
    }

    /// The URL as it may be shown (no password).
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// Runs the future `f` makes from the pool and waits for its result.
    pub fn run<T, Fut>(&self, f: impl FnOnce(Pool) -> Fut) -> Result<T, Error>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<T, Failure>> + Send + 'static,
    {
        let fut = f(self.pool.clone());
        let result = self
            .rt
            .block(fut)
            .unwrap_or_else(|| Err(Failure("the query's task ended early".into())));
        result.map_err(|Failure(message)| Error::Query {
            url: self.shown.clone(),
            message,
        })
    }

    /// Opens a connection of its own and takes on it, without waiting, a shared
    /// session-level advisory lock on each of `shared`, then an exclusive one on each of
    /// `exclusive`. `Ok(Err(key))`: `key` is held elsewhere in a conflicting mode (the
    /// connection is closed, so nothing stays taken). The locks last until the returned
    /// [`SessionLock`] is dropped, or until its process dies and the server sees the
    /// connection close.
    pub fn try_session_locks(
        &self,
        shared: &[i64],
        exclusive: &[i64],
    ) -> Result<Result<SessionLock, i64>, Error> {
        let config = self.config.clone();
        let (shared, exclusive) = (shared.to_vec(), exclusive.to_vec());
        let taken = self.run(move |_| async move {
            let (client, conn) = config.connect(NoTls).await?;
            let conn = tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::warn!("the lock connection to PostgreSQL ended: {e}");
                }
            });
            let keys = shared
                .iter()
                .map(|k| (*k, true))
                .chain(exclusive.iter().map(|k| (*k, false)));
            for (key, is_shared) in keys {
                let sql = if is_shared {
                    "SELECT pg_try_advisory_lock_shared($1)"
                } else {
                    "SELECT pg_try_advisory_lock($1)"
                };
                let got: bool = client.query_one(sql, &[&key]).await?.get(0);
                if !got {
                    drop(client);
                    let _ = conn.await;
                    return Ok(Err(key));
                }
            }
            Ok(Ok((client, conn)))
        })?;
        Ok(taken.map(|(client, conn)| SessionLock {
            client: Some(client),
            conn: Some(conn),
            rt: self.rt.clone(),
        }))
    }
}

/// Advisory locks held on a connection of their own; dropping this closes the
/// connection, which releases them all.
pub struct SessionLock {
    client: Option<tokio_postgres::Client>,
    conn: Option<tokio::task::JoinHandle<()>>,
    rt: Arc<Rt>,
}

impl std::fmt::Debug for SessionLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionLock")
    }
}

impl Drop for SessionLock {
    fn drop(&mut self) {
        drop(self.client.take());
        // Wait (briefly) for the connection to close, so the next taker finds the locks
        // free; a dead server or a runtime shutting down must not hang the caller.
        if let Some(conn) = self.conn.take() {
            self.rt.block(async move {
                let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("postgres://froyo:s3cret@db:5432/state"),
            "postgres://froyo:***@db:5432/state"
        );
        assert_eq!(
            redact_url("postgresql://u@h/d?sslmode=disable&password=s3cret"),
            "postgresql://u@h/d?sslmode=disable&password=***"
        );
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
        assert_eq!(redact_url("s3cret"), "(not a URL)");
        assert_eq!(
            password_of("postgres://u:p%40ss@h/d").as_deref(),
            Some("p%40ss")
        );
    }

    #[test]
    fn lock_keys_are_namespaced() {
        assert_ne!(lock_key(&["a", "bc"]), lock_key(&["ab", "c"]));
        assert_ne!(
            lock_key(&["proj1", "target", "web"]),
            lock_key(&["proj2", "target", "web"])
        );
        assert_eq!(lock_key(&["x"]), lock_key(&["x"]));
    }

    #[test]
    fn malformed_and_unreachable_urls_are_clear_errors() {
        let err = Pg::connect("mysql://u:s3cret@h/d", "s", "t").unwrap_err();
        assert!(matches!(err, Error::Url { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let err = Pg::connect("postgres://u:s3cret@127.0.0.1:notaport/d", "s", "t").unwrap_err();
        assert!(matches!(err, Error::Url { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        // Port 1 on loopback: nothing listens there.
        let err = Pg::connect("postgres://u:s3cret@127.0.0.1:1/d", "s", "t").unwrap_err();
        assert!(matches!(err, Error::Connect { .. }), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
    }

    /// Against a real server: exclusive excludes everything, shared admits shared, and a
    /// lock ends with its connection.
    #[test]
    fn session_locks_exclude_and_end_with_their_connection() {
        let server = crate::testing::PgServer::start().unwrap();
        let pg = Pg::connect(&server.url(), "public", "froyo-test").unwrap();
        let k = lock_key(&["test", "x"]);
        let held = pg.try_session_locks(&[], &[k]).unwrap().unwrap();
        assert_eq!(pg.try_session_locks(&[], &[k]).unwrap().err(), Some(k));
        assert_eq!(pg.try_session_locks(&[k], &[]).unwrap().err(), Some(k));
        drop(held);
        let s1 = pg.try_session_locks(&[k], &[]).unwrap().unwrap();
        let s2 = pg.try_session_locks(&[k], &[]).unwrap().unwrap();
        assert_eq!(pg.try_session_locks(&[], &[k]).unwrap().err(), Some(k));
        drop((s1, s2));
        drop(pg.try_session_locks(&[], &[k]).unwrap().unwrap());
        let pid = server.pid();
        drop(server);
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists() || crate::testing::zombie(pid)
        );
    }
}
