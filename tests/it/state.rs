//! The state's contract: each test is one body run against both stores, SQLite
//! (`.froyo/state.db` in a temporary project) and PostgreSQL (a real server started with
//! `initdb` + `pg_ctl` in a temporary directory, each test in a namespace of its own).
//! Where a test must reach under the trait (tampering with a row, a dead process's pid)
//! it uses the backend's own SQL through [`Backend::exec`].

use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};

use froyo::state::{
    Event, PgStore, PlanUnit, ResourceRecord, RunKind, RunStatus, SqliteStore, Store, UnitRecord,
};
use froyo_cluster::pg::Pg;
use froyo_cluster::testing::PgServer;
use serde_json::json;

/// One PostgreSQL server for the tests running at a time; stopped (by PID) when the
/// last of them drops it.
pub fn pg_server() -> Arc<PgServer> {
    static SERVER: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());
    let mut slot = SERVER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = slot.upgrade() {
        return s;
    }
    let s = Arc::new(PgServer::start().expect("start PostgreSQL"));
    *slot = Arc::downgrade(&s);
    s
}

/// A namespace no other test uses.
pub fn fresh_namespace(what: &str) -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{what}-{}-{n}", std::process::id())
}

pub enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        root: PathBuf,
    },
    Postgres {
        server: Arc<PgServer>,
        namespace: String,
    },
}

impl Backend {
    fn all(what: &str) -> [Backend; 2] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        [
            Backend::Sqlite { _dir: dir, root },
            Backend::Postgres {
                server: pg_server(),
                namespace: fresh_namespace(what),
            },
        ]
    }

    fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite { .. } => "sqlite",
            Backend::Postgres { .. } => "postgres",
        }
    }

    fn open(&self) -> froyo::state::Result<Box<dyn Store + Send + Sync>> {
        Ok(match self {
            Backend::Sqlite { root, .. } => Box::new(SqliteStore::open_project(root)?),
            Backend::Postgres { server, namespace } => {
                Box::new(PgStore::open(&server.url(), namespace)?)
            }
        })
    }

    /// Runs `sql` (this backend's dialect) outside the store, like another program.
    fn exec(&self, sql: &str) -> Result<(), String> {
        match self {
            Backend::Sqlite { root, .. } => {
                let c = rusqlite::Connection::open(root.join(".froyo/state.db"))
                    .map_err(|e| e.to_string())?;
                c.execute_batch(sql).map_err(|e| e.to_string())
            }
            Backend::Postgres { server, namespace } => {
                let schema = froyo::state::PgStore::open(&server.url(), namespace)
                    .map_err(|e| e.to_string())?
                    .schema()
                    .to_owned();
                let pg =
                    Pg::connect(&server.url(), &schema, "froyo-test").map_err(|e| e.to_string())?;
                let sql = sql.to_owned();
                pg.run(move |pool| async move {
                    let c = pool.get().await?;
                    c.batch_execute(&sql).await?;
                    Ok(())
                })
                .map_err(|e| e.to_string())
            }
        }
    }
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    pid
}

fn each(what: &str, body: impl Fn(&Backend, &dyn Store)) {
    for b in Backend::all(what) {
        let store = b.open().unwrap_or_else(|e| panic!("{}: {e:?}", b.name()));
        body(&b, &*store);
    }
}

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    each("migrations", |b, _| {
        // Four processes (here threads with their own connections) opening at once.
        std::thread::scope(|s| {
            let opens: Vec<_> = (0..4).map(|_| s.spawn(|| b.open().map(drop))).collect();
            for o in opens {
                o.join().unwrap().unwrap();
            }
        });
        b.open().unwrap();
        let bump = match b {
            Backend::Sqlite { .. } => "PRAGMA user_version = 999",
            Backend::Postgres { .. } => "UPDATE schema_version SET version = 999",
        };
        b.exec(bump).unwrap();
        let err = b.open().map(drop).unwrap_err().to_string();
        assert!(err.contains("newer than this froyo"), "{}: {err}", b.name());
    });
}

#[test]
fn runs_events_and_units_round_trip_and_events_are_append_only() {
    each("events", |b, s| {
        let run = s.begin_run(RunKind::Apply, Some("site.star")).unwrap();
        let e = Event {
            ts_ms: 1_700_000_000_123,
            target: Some("local".into()),
            resource: Some("linux.file::file:/etc/motd".into()),
            kind: "apply.start".into(),
            data: json!({"op": "create", "ü": [1, 2]}),
        };
        s.append_event(run, &e).unwrap();
        assert_eq!(s.events(run).unwrap(), [e]);
        for tamper in ["UPDATE events SET kind = 'x'", "DELETE FROM events"] {
            let err = b.exec(tamper).unwrap_err();
            assert!(err.contains("append-only"), "{}: {err}", b.name());
        }
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
        assert_eq!(runs[0].pid, std::process::id());
    });
}

#[test]
fn a_dead_runs_status_becomes_interrupted() {
    each("reap", |b, s| {
        let mine = s.begin_run(RunKind::Apply, None).unwrap();
        let dead = s.begin_run(RunKind::Apply, None).unwrap();
        b.exec(&format!(
            "UPDATE runs SET pid = {} WHERE id = {}",
            dead_pid(),
            dead.0
        ))
        .unwrap();
        assert_eq!(s.reap_interrupted().unwrap(), [dead], "{}", b.name());
        let runs = s.runs(10).unwrap();
        let status = |id| runs.iter().find(|r| r.id == id).unwrap().status;
        assert_eq!(status(dead), RunStatus::Interrupted);
        assert_eq!(status(mine), RunStatus::Running);
    });
}

#[test]
fn the_lock_admits_one_writer() {
    each("lock", |b, s| {
        let guard = s.lock("apply").unwrap();
        // Another process (here another store, with its own connections) is refused.
        let other = b.open().unwrap();
        let msg = other.lock("apply").unwrap_err().to_string();
        assert!(
            msg.contains("`froyo apply`") && msg.contains(&format!("pid {}", std::process::id())),
            "{}: {msg}",
            b.name()
        );
        drop(guard);
        // Released on drop: the next writer gets it.
        drop(other.lock("drift").unwrap());
        // An apply's lock on its targets keeps out a whole-project writer too.
        let apply = s.lock_targets("apply", &["web".into()]).unwrap();
        assert!(other.lock("restore").is_err(), "{}", b.name());
        drop(apply);
        drop(other.lock("restore").unwrap());
    });
}

#[test]
fn resources_are_stored_without_sensitive_text() {
    each("secrets", |b, s| {
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
        // The same through the transactional path an apply takes.
        let other = ResourceRecord {
            resource: "g".into(),
            ..record.clone()
        };
        s.put_plan_units(
            run,
            &[PlanUnit {
                target: "local".into(),
                resource: "g".into(),
                kind: "create".into(),
                summary: String::new(),
                status: "planned".into(),
            }],
        )
        .unwrap();
        s.record_unit(
            run,
            &UnitRecord {
                target: "local",
                resource: "g",
                status: "ok",
                record: Some(&other),
                notified: &[],
                withdrawn: &[],
            },
        )
        .unwrap();
        let back = s.resources(Some("local")).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].config["content"]["$content"]["sha256"], "ab");
        assert!(!back[0].config.to_string().contains("hunter2"));
        assert!(s.resources(Some("other")).unwrap().is_empty());
        // What another program reading the store's raw storage would see.
        let leaked = match b {
            Backend::Sqlite { root, .. } => {
                b.exec("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
                let raw = std::fs::read(root.join(".froyo/state.db")).unwrap();
                raw.windows(7).any(|w| w == b"hunter2")
            }
            Backend::Postgres { .. } => b
                .exec(
                    "DO $$ BEGIN IF EXISTS (SELECT 1 FROM resource_state WHERE config LIKE '%hunter2%')
                     THEN RAISE EXCEPTION 'leaked'; END IF; END $$",
                )
                .is_err(),
        };
        assert!(!leaked, "{}: a secret reached the store", b.name());
        s.remove_resource("local", "f").unwrap();
        s.remove_resource("local", "g").unwrap();
        assert!(s.resources(None).unwrap().is_empty());
    });
}

#[test]
fn facts_expire_pending_handlers_persist() {
    each("facts", |_, s| {
        s.put_fact("web", "os.basic", &json!({"family": "debian"}), 60)
            .unwrap();
        s.put_fact("web", "hw.cpu", &json!({"count": 2}), 0)
            .unwrap();
        s.put_fact("web", "forever", &json!(1), u64::MAX).unwrap();
        assert_eq!(
            s.fact("web", "os.basic").unwrap(),
            Some(json!({"family": "debian"}))
        );
        assert_eq!(
            s.fact("web", "hw.cpu").unwrap(),
            None,
            "TTL 0 is already stale"
        );
        s.forget_facts("web").unwrap();
        assert_eq!(s.fact("web", "os.basic").unwrap(), None);
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
    });
}

/// The change and the notification it sent are one transaction: when recording the
/// notification fails, the change is not kept either, so the next run sees the change
/// again and notifies again (a handler is never silently lost).
#[test]
fn a_change_and_its_notification_are_kept_together() {
    each("atomic", |b, s| {
        let run = s.begin_run(RunKind::Apply, None).unwrap();
        let record = ResourceRecord {
            target: "web".into(),
            resource: "conf".into(),
            type_name: "linux.file::file".into(),
            config: json!({"path": "/etc/app.conf"}),
            config_sha256: "cd".into(),
            run,
            applied_ms: 1,
        };
        let notified = ["restart app".to_owned()];
        let unit = || UnitRecord {
            target: "web",
            resource: "conf",
            status: "ok",
            record: Some(&record),
            notified: &notified,
            withdrawn: &[],
        };
        // A run that does not exist: the pending row's foreign key fails.
        let bad = froyo::state::RunId(run.0 + 1000);
        assert!(s.record_unit(bad, &unit()).is_err(), "{}", b.name());
        assert!(s.resources(Some("web")).unwrap().is_empty(), "{}", b.name());
        assert!(s.pending("web").unwrap().is_empty());
        s.record_unit(run, &unit()).unwrap();
        assert_eq!(s.resources(Some("web")).unwrap().len(), 1);
        assert_eq!(
            s.pending("web").unwrap(),
            [("restart app".to_owned(), "conf".to_owned())]
        );
        // A notification recorded in advance by another resource and not sent after all is
        // withdrawn with that resource's outcome; the one `conf` sent stays.
        s.add_pending("web", "restart app", "unit", run).unwrap();
        s.record_unit(
            run,
            &UnitRecord {
                target: "web",
                resource: "unit",
                status: "ok",
                record: None,
                notified: &[],
                withdrawn: &notified,
            },
        )
        .unwrap();
        assert_eq!(
            s.pending("web").unwrap(),
            [("restart app".to_owned(), "conf".to_owned())],
            "{}",
            b.name()
        );
    });
}

#[test]
fn backup_round_trips() {
    each("backup", |b, s| {
        let run = s.begin_run(RunKind::Apply, Some("a.star")).unwrap();
        s.append_event(
            run,
            &Event {
                ts_ms: 1_700_000_000_000,
                target: None,
                resource: None,
                kind: "run.start".into(),
                data: json!({}),
            },
        )
        .unwrap();
        // A cluster state's work-queue claims are part of its backup too.
        if let Backend::Postgres { server, namespace } = b {
            let pg = PgStore::open(&server.url(), namespace).unwrap();
            pg.queue_hosts(run, &["web".to_owned()]).unwrap();
            assert_eq!(
                pg.claim(run, "web", 1, "worker-a").unwrap(),
                froyo::state::Claimed::Owned
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let backup = dir.path().join("backup.db");
        s.backup(&backup).unwrap();
        assert!(
            s.backup(&backup).is_err(),
            "an existing file is not overwritten"
        );
        s.begin_run(RunKind::Apply, Some("b.star")).unwrap();
        assert_eq!(s.runs(10).unwrap().len(), 2);
        // Either backend's backup is a SQLite state, readable as one.
        let copy = SqliteStore::open(&backup).unwrap();
        assert_eq!(copy.integrity_check().unwrap(), "ok");
        assert_eq!(
            copy.runs(10)
                .unwrap()
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>(),
            [run]
        );
        assert_eq!(copy.events(run).unwrap().len(), 1);
        drop(copy);
        match b {
            Backend::Sqlite { root, .. } => {
                let s = SqliteStore::open_project(root).unwrap();
                let guard = s.lock("restore").unwrap();
                s.restore(&backup, &guard).unwrap();
                assert_eq!(s.runs(10).unwrap().len(), 1);
                std::fs::write(dir.path().join("junk.db"), b"not a database at all").unwrap();
                assert!(s.restore(&dir.path().join("junk.db"), &guard).is_err());
                assert_eq!(s.runs(10).unwrap().len(), 1, "a bad backup changes nothing");
            }
            Backend::Postgres { server, namespace } => {
                // Brought back into a new namespace, ids and all.
                let restored =
                    PgStore::open(&server.url(), &format!("{namespace}-restored")).unwrap();
                let sums = froyo::state::sqlite_to_postgres(&backup, &restored).unwrap();
                assert!(sums.iter().any(|t| t.table == "events" && t.rows == 1));
                assert!(sums.iter().any(|t| t.table == "work_claims" && t.rows == 1));
                let claims = restored.claims(run).unwrap();
                assert_eq!(
                    claims
                        .iter()
                        .map(|c| (c.target.as_str(), c.attempt, c.worker.as_str()))
                        .collect::<Vec<_>>(),
                    [("web", 1, "worker-a")]
                );
                assert_eq!(
                    restored
                        .runs(10)
                        .unwrap()
                        .iter()
                        .map(|r| r.id)
                        .collect::<Vec<_>>(),
                    [run]
                );
                // The next run continues the numbering.
                let next = restored.begin_run(RunKind::Apply, None).unwrap();
                assert_eq!(next.0, run.0 + 1);
                // A second copy into the same namespace is refused: it is not empty.
                let err = froyo::state::sqlite_to_postgres(&backup, &restored).unwrap_err();
                assert!(err.to_string().contains("not empty"), "{err}");
            }
        }
    });
}
