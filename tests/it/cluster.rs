//! The cluster profile against a real PostgreSQL (started by `state::pg_server`): lock
//! namespacing between projects on one database, `froyo apply` with `FROYO_STATE_URL`,
//! `froyo state migrate --to`, and the errors for a bad or unreachable state URL.

use std::path::Path;
use std::process::Command;

use froyo::state::{PgStore, RunKind, RunStatus, Store};

use crate::state::{fresh_namespace, pg_server};
use crate::{Run, repo};

/// `froyo ARGS` in `cwd` with the state at `url`.
fn froyo_at(cwd: &Path, url: &str, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("FROYO_STATE_URL", url)
        .env_remove("RUST_LOG")
        .output()
        .expect("run froyo");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Two projects on one database lock the same target name without meeting; within one
/// project an apply holds its targets against another apply on them, not on others, and
/// against whole-project writers (the Terraform pg-backend bug: keys shared across
/// projects, hashicorp/terraform#22833).
#[test]
fn advisory_locks_are_namespaced_by_project_and_target() {
    let server = pg_server();
    let (a, b) = (fresh_namespace("proj-a"), fresh_namespace("proj-b"));
    let a1 = PgStore::open(&server.url(), &a).unwrap();
    let a2 = PgStore::open(&server.url(), &a).unwrap();
    let b1 = PgStore::open(&server.url(), &b).unwrap();
    assert_ne!(a1.schema(), b1.schema());

    let web = vec!["web".to_owned(), "db".to_owned()];
    let held = a1.lock_targets("apply", &web).unwrap();
    // Project b: same target names, whole-project lock, all free.
    drop(b1.lock_targets("apply", &web).unwrap());
    drop(b1.lock("restore").unwrap());
    // Project a: an overlapping apply is refused and told who holds which target.
    let err = a2.lock_targets("apply", &["db".to_owned()]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("`froyo apply`") && msg.contains("target `db`"),
        "{msg}"
    );
    assert!(format!("{:?}", miette::Report::new(err)).contains("E-LOCKED"));
    // A disjoint apply goes on meanwhile; a whole-project writer waits for both.
    let other = a2.lock_targets("apply", &["cache".to_owned()]).unwrap();
    assert!(a2.lock("restore").is_err());
    drop(held);
    assert!(a2.lock("restore").is_err(), "the `cache` apply still runs");
    drop(other);
    drop(a2.lock("restore").unwrap());
}

/// The lock belongs to its connection: when the server ends the holder's session (what
/// happens when its process dies), the lock is free at once.
#[test]
fn a_lock_whose_session_ends_is_free() {
    let server = pg_server();
    let ns = fresh_namespace("session");
    let holder = PgStore::open(&server.url(), &ns).unwrap();
    let other = PgStore::open(&server.url(), &ns).unwrap();
    let held = holder.lock_targets("apply", &["web".to_owned()]).unwrap();
    assert!(other.lock_targets("apply", &["web".to_owned()]).is_err());
    // Another client ends the session holding this target's key (pg_locks shows a
    // bigint key as its high and low 32 bits).
    let key = froyo_cluster::pg::lock_key(&[holder.schema(), "target", "web"]);
    let pg = froyo_cluster::pg::Pg::connect(&server.url(), other.schema(), "killer").unwrap();
    let killed: i64 = pg
        .run(move |pool| async move {
            let c = pool.get().await?;
            Ok(c.query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_locks
                 WHERE locktype = 'advisory' AND objsubid = 1 AND granted
                 AND ((classid::bigint << 32) | objid::bigint) = $1",
                &[&key],
            )
            .await?
            .get(0))
        })
        .unwrap();
    assert_eq!(killed, 1);
    drop(other.lock_targets("apply", &["web".to_owned()]).unwrap());
    drop(held);
}

/// The README's main job in the cluster profile: `examples/hello.star` (writing into this
/// test's own directory instead of /tmp/froyo-hello, which another test owns) applied
/// with the state on PostgreSQL, then applied again with nothing to do.
#[test]
fn apply_with_the_state_on_postgres_is_idempotent() {
    let server = pg_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let ns = fresh_namespace("hello");
    std::fs::write(
        proj.join("froyo.toml"),
        format!("[project]\nname = {ns:?}\n"),
    )
    .unwrap();
    let text = std::fs::read_to_string(repo().join("examples/hello.star"))
        .unwrap()
        .replace("/tmp/froyo-hello", &out.display().to_string());
    std::fs::write(proj.join("hello.star"), text).unwrap();
    let url = server.url_with_password("pg-s3cret");

    let first = froyo_at(&proj, &url, &["apply", "hello.star", "--yes"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("hello.txt")).unwrap(),
        "Hello from OpenFroyo!\n"
    );
    let second = froyo_at(&proj, &url, &["apply", "hello.star", "--yes"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("= 2 unchanged"), "{}", second.stdout);
    assert!(
        !proj.join(".froyo/state.db").exists(),
        "the state went to PostgreSQL, not SQLite"
    );
    // What the server holds: two successful apply runs, both resources, their events.
    let store = PgStore::open(&server.url(), &ns).unwrap();
    let runs = store.runs(10).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.iter()
            .all(|r| r.kind == RunKind::Apply && r.status == RunStatus::Succeeded)
    );
    assert_eq!(store.resources(Some("local")).unwrap().len(), 2);
    assert!(
        store
            .events(runs[1].id)
            .unwrap()
            .iter()
            .any(|e| e.kind == "resource_finished")
    );
    for run in [&first, &second] {
        assert!(!run.stderr.contains("pg-s3cret") && !run.stdout.contains("pg-s3cret"));
    }
}

/// A malformed URL and an unreachable server are E-STATE errors that never show the
/// password.
#[test]
fn a_bad_state_url_is_a_clear_error_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("froyo.toml"), "[project]\nname = \"x\"\n").unwrap();
    std::fs::copy(
        repo().join("examples/hello.star"),
        dir.path().join("hello.star"),
    )
    .unwrap();
    let port = froyo_cluster::testing::free_port();
    for url in [
        format!("postgres://froyo:pw-s3cret@127.0.0.1:{port}/postgres"),
        "postgres://froyo:pw-s3cret@127.0.0.1:notaport/postgres".to_owned(),
        "mysql://froyo:pw-s3cret@127.0.0.1/x".to_owned(),
    ] {
        let run = froyo_at(dir.path(), &url, &["apply", "hello.star", "--yes"]);
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        assert!(run.stderr.contains("E-STATE"), "{url}: {}", run.stderr);
        assert!(!run.stderr.contains("pw-s3cret"), "{url}: {}", run.stderr);
        assert!(
            run.stderr.contains("froyo:***@") || run.stderr.contains("(not a URL)"),
            "{}",
            run.stderr
        );
    }
}

/// `froyo state migrate --to`: a project applied in the solo profile moves to PostgreSQL
/// with its history and its state, and the next apply there has nothing to do.
#[test]
fn state_migrate_copies_a_sqlite_state_and_apply_goes_on_there() {
    let server = pg_server();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let proj = dir.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let ns = fresh_namespace("migrate");
    std::fs::write(
        proj.join("froyo.toml"),
        format!("[project]\nname = {ns:?}\n"),
    )
    .unwrap();
    let text = std::fs::read_to_string(repo().join("examples/hello.star"))
        .unwrap()
        .replace("/tmp/froyo-hello", &out.display().to_string());
    std::fs::write(proj.join("hello.star"), text).unwrap();
    let solo = crate::froyo(&proj, &["apply", "hello.star", "--yes"]);
    assert_eq!(solo.code, 0, "{}", solo.stderr);

    let url = server.url();
    let migrate = crate::froyo(&proj, &["state", "migrate", "--to", &url]);
    assert_eq!(migrate.code, 0, "{}\n{}", migrate.stdout, migrate.stderr);
    assert!(
        migrate.stderr.contains("count and checksum match"),
        "{}",
        migrate.stderr
    );
    let events_line = migrate
        .stdout
        .lines()
        .find(|l| l.starts_with("events "))
        .unwrap_or_else(|| panic!("{}", migrate.stdout));
    let sqlite = froyo::state::SqliteStore::open_project(&proj).unwrap();
    let pg = PgStore::open(&url, &ns).unwrap();
    let (a, b) = (sqlite.runs(10).unwrap(), pg.runs(10).unwrap());
    assert_eq!(a, b);
    assert_eq!(sqlite.events(a[0].id).unwrap(), pg.events(b[0].id).unwrap());
    assert_eq!(sqlite.resources(None).unwrap(), pg.resources(None).unwrap());
    assert!(
        events_line
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    // Again: the namespace is no longer empty, nothing is copied twice.
    let again = crate::froyo(&proj, &["state", "migrate", "--to", &url]);
    assert_eq!(again.code, 1, "{}", again.stderr);
    assert!(again.stderr.contains("not empty"), "{}", again.stderr);

    let next = froyo_at(&proj, &url, &["apply", "hello.star", "--yes"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert!(next.stdout.contains("= 2 unchanged"), "{}", next.stdout);
    assert_eq!(pg.runs(10).unwrap().len(), 2);
    assert_eq!(
        sqlite.runs(10).unwrap().len(),
        1,
        "the SQLite state stays as it was"
    );
}
