//! The cluster profile's work queue end to end, all real: PostgreSQL (`state::pg_server`),
//! `nats-server -js`, loopback sshd targets, `froyo worker` processes and `froyo apply
//! --queue`. Every host is applied exactly once (the events say so) with the same report
//! as the solo profile; a worker killed with SIGKILL in the middle of a host leaves it to
//! another, whose later attempt fences it, and no pending handler is lost.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use froyo::state::{PgStore, RunId, Store};
use froyo_cluster::testing::NatsServer;

use crate::Run;
use crate::sshd::{Project, Sshd, whoami};
use crate::state::{fresh_namespace, pg_server};

/// A `froyo` child in `cwd` with the state at `state`.
fn spawn(cwd: &Path, state: &str, args: &[&str], log: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env("FROYO_STATE_URL", state)
        .env_remove("RUST_LOG")
        .env_remove("FROYO_QUEUE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start froyo")
}

fn froyo_at(cwd: &Path, state: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_froyo"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("FROYO_QUEUE_URL");
    match state {
        Some(s) => cmd.env("FROYO_STATE_URL", s),
        None => cmd.env_remove("FROYO_STATE_URL"),
    };
    let out = cmd.output().expect("run froyo");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Stops a child by its PID (SIGTERM), returning whether it exited on its own in time.
fn stop(child: &mut Child) -> bool {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Workers stopped when the test ends, however it ends.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Three loopback sshd targets `t1`..`t3` in a project named `ns` with the queue's
/// `ack_wait` at 5 s (short, but long enough for heartbeats on a loaded machine), and a playbook writing under `out/<host>`: a config file that
/// notifies a handler, and after it a command taking `slow` seconds.
struct Fleet {
    _servers: Vec<Sshd>,
    p: Project,
    out: std::path::PathBuf,
}

fn fleet(dir: &Path, name: &str, ns: &str, slow: u32) -> Fleet {
    let p = Project::new(&dir.join(name));
    let servers: Vec<Sshd> = (0..3)
        .map(|i| Sshd::start(&dir.join(format!("{name}-sshd{i}")), &p.public_key()))
        .collect();
    let names = ["t1", "t2", "t3"];
    let named: Vec<(&str, &Sshd)> = names.iter().copied().zip(servers.iter()).collect();
    p.inventory(&named, &whoami());
    p.trust(&servers.iter().collect::<Vec<_>>());
    std::fs::write(
        p.root.join("froyo.toml"),
        format!("[project]\nname = {ns:?}\n\n[queue]\nack_wait = \"5s\"\n"),
    )
    .unwrap();
    let out = dir.join(format!("{name}-out"));
    std::fs::write(
        p.root.join("site.star"),
        format!(
            r#"
load("@stdlib//linux.star", "directory", "file", "command")
def main(host):
    d = directory("{out}/" + host.name, mode = "0755")
    conf = file("{out}/%s/app.conf" % host.name, content = "port = 80\n")
    require(conf, d)
    for i in range(3):
        require(file("{out}/%s/f%d.txt" % (host.name, i), content = "file %d on %s\n" % (i, host.name)), d)
    slow = command("slow", shell = "sleep {slow}; touch {out}/%s/slow" % host.name, creates = "{out}/%s/slow" % host.name)
    require(slow, conf)
    restart = handler("linux.exec::command", "restart app", shell = "echo restarted >> {out}/%s/restarts.log" % host.name)
    notify(conf, restart)
"#,
            out = out.display()
        ),
    )
    .unwrap();
    Fleet {
        _servers: servers,
        p,
        out,
    }
}

/// The stderr lines that say what changed, with timings and the output directory
/// redacted, sorted (hosts finish in any order).
fn changes(stderr: &str, out: &Path) -> Vec<String> {
    let mut lines: Vec<String> = stderr
        .lines()
        .filter(|l| l.starts_with("  ✓") || l.starts_with("  ✗") || l.starts_with("  ⊘"))
        .map(|l| {
            let l = l.replace(&out.display().to_string(), "OUT");
            l[..l.rfind(" (").unwrap_or(l.len())].to_owned()
        })
        .collect();
    lines.sort();
    lines
}

fn summary_counts(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("Apply: "))
        .unwrap_or_else(|| panic!("no summary in {stderr}"));
    line[..line.find(" in ").unwrap()].to_owned()
}

fn last_run(store: &PgStore) -> RunId {
    store.runs(1).unwrap()[0].id
}

/// How often each (host, resource) finished with each outcome in `run`.
fn finished(store: &PgStore, run: RunId) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = store
        .events(run)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "resource_finished")
        .map(|e| {
            (
                e.target.unwrap(),
                e.resource.unwrap(),
                e.data["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn three_hosts_two_workers_each_host_once_with_the_solo_report() {
    let pg = pg_server();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ns = fresh_namespace("queue");
    let url = pg.url();

    // The solo profile first, on a fleet of its own (names of the same length, so the
    // plans align alike): the reference report.
    let solo = fleet(dir.path(), "solo", &fresh_namespace("solo"), 0);
    let reference = froyo_at(
        &solo.p.root,
        None,
        &["apply", "--yes", "site.star", "--on", "role=test"],
    );
    assert_eq!(reference.code, 0, "{}", reference.stderr);

    let f = fleet(dir.path(), "clus", &ns, 0);
    let mut workers = Workers(
        (0..2)
            .map(|i| {
                spawn(
                    &f.p.root,
                    &url,
                    &["worker", "--queue", &nats.url(), "--concurrency", "2"],
                    &dir.path().join(format!("worker{i}.log")),
                )
            })
            .collect(),
    );
    let apply = [
        "apply",
        "--yes",
        "site.star",
        "--on",
        "role=test",
        "--queue",
    ];
    let first = froyo_at(
        &f.p.root,
        Some(&url),
        &[&apply[..], &[&nats.url()]].concat(),
    );
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    // Same plan, same progress lines, same counts as solo.
    assert_eq!(
        first.stdout.replace(&f.out.display().to_string(), "OUT"),
        reference
            .stdout
            .replace(&solo.out.display().to_string(), "OUT")
    );
    assert_eq!(
        changes(&first.stderr, &f.out),
        changes(&reference.stderr, &solo.out)
    );
    assert_eq!(
        summary_counts(&first.stderr),
        summary_counts(&reference.stderr)
    );
    assert!(
        summary_counts(&first.stderr).starts_with("Apply: 21 changed, 0 unchanged, 0 failed"),
        "{}",
        first.stderr
    );

    // The events: every resource of every host finished exactly once; every claim done.
    let store = PgStore::open(&url, &ns).unwrap();
    let run = last_run(&store);
    let done = finished(&store, run);
    assert_eq!(done.len(), 21, "{done:#?}");
    let mut keys: Vec<_> = done.iter().map(|(h, r, _)| (h, r)).collect();
    keys.dedup();
    assert_eq!(keys.len(), 21, "a resource finished twice: {done:#?}");
    let claims = store.claims(run).unwrap();
    assert_eq!(claims.len(), 3);
    assert!(
        claims.iter().all(|c| c.status == "done" && c.attempt == 1),
        "{claims:#?}"
    );
    for t in ["t1", "t2", "t3"] {
        assert_eq!(
            std::fs::read_to_string(f.out.join(t).join("restarts.log")).unwrap(),
            "restarted\n"
        );
    }

    // Again: nothing to do, the handler stays quiet.
    let second = froyo_at(
        &f.p.root,
        Some(&url),
        &[&apply[..], &[&nats.url()]].concat(),
    );
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        summary_counts(&second.stderr).starts_with("Apply: 0 changed, 18 unchanged, 0 failed"),
        "{}",
        second.stderr
    );
    for w in &mut workers.0 {
        assert!(stop(w), "a worker exits 0 on SIGTERM");
    }
}

#[test]
fn a_worker_killed_mid_host_leaves_it_to_another_and_no_handler_is_lost() {
    let pg = pg_server();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ns = fresh_namespace("kill");
    let url = pg.url();
    let f = fleet(dir.path(), "kill", &ns, 4);
    let mut workers = Workers(
        (0..2)
            .map(|i| {
                spawn(
                    &f.p.root,
                    &url,
                    &["worker", "--queue", &nats.url(), "--concurrency", "1"],
                    &dir.path().join(format!("worker{i}.log")),
                )
            })
            .collect(),
    );
    let apply = [
        "apply",
        "--yes",
        "site.star",
        "--on",
        "role=test",
        "--queue",
        &nats.url(),
    ]
    .map(str::to_owned);
    let controller = {
        let (root, url, apply) = (f.p.root.clone(), url.clone(), apply.clone());
        std::thread::spawn(move || {
            let args: Vec<&str> = apply.iter().map(String::as_str).collect();
            froyo_at(&root, Some(&url), &args)
        })
    };
    // Kill the worker of the first host whose config is written on the target (its
    // change may or may not be recorded yet) but whose slow command has not finished:
    // its handler is pending, its item not acked.
    let store = PgStore::open(&url, &ns).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let (victim, host) = loop {
        assert!(Instant::now() < deadline, "no host got half way");
        let found = store.runs(1).unwrap().first().and_then(|r| {
            store.claims(r.id).unwrap().into_iter().find(|c| {
                c.status == "running"
                    && f.out.join(&c.target).join("app.conf").exists()
                    && !f.out.join(&c.target).join("slow").exists()
            })
        });
        if let Some(c) = found {
            let pid: u32 = c.worker.rsplit(':').next().unwrap().parse().unwrap();
            break (pid, c.target);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let before = crate::fault_log::Recorded::of(&store);
    let status = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let i = workers.0.iter().position(|c| c.id() == victim).unwrap();
    let _ = workers.0[i].wait();
    // A second controller on the same hosts while the run goes on: refused per target.
    let args: Vec<&str> = apply.iter().map(String::as_str).collect();
    let overlapping = froyo_at(&f.p.root, Some(&url), &args);
    assert_eq!(overlapping.code, 1, "{}", overlapping.stderr);
    assert!(
        overlapping.stderr.contains("E-LOCKED") && overlapping.stderr.contains("`froyo apply`"),
        "{}",
        overlapping.stderr
    );

    let first = controller.join().unwrap();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let run = last_run(&store);
    let claims = store.claims(run).unwrap();
    assert!(claims.iter().all(|c| c.status == "done"), "{claims:#?}");
    let taken_over = claims.iter().find(|c| c.target == host).unwrap();
    assert!(taken_over.attempt >= 2, "{taken_over:?}");
    assert!(!taken_over.worker.ends_with(&format!(":{victim}")));
    // The killed host's config was changed by the first attempt (recorded, or killed
    // before the record); the second read it again and found it unchanged; the handler
    // it notified (pending since before the change) ran exactly once.
    let done = finished(&store, run);
    let conf: Vec<_> = done
        .iter()
        .filter(|(h, r, _)| *h == host && r.ends_with("app.conf]"))
        .map(|(_, _, o)| o.as_str())
        .collect();
    assert!(
        conf == ["changed", "unchanged"] || conf == ["unchanged"],
        "{done:#?}"
    );
    for t in ["t1", "t2", "t3"] {
        // At least once (a kill between a change and its record runs it again).
        let ran = std::fs::read_to_string(f.out.join(t).join("restarts.log")).unwrap();
        assert!(
            ran == "restarted\n" || ran == "restarted\nrestarted\n",
            "{t}: the handler ran once, or twice after the kill: {ran:?}"
        );
        assert!(f.out.join(t).join("slow").exists());
    }
    assert!(
        store.pending(&host).unwrap().is_empty(),
        "no notification left pending"
    );
    before.survived(
        &store,
        "queue::a_worker_killed_mid_host_…",
        "a cluster worker killed (SIGKILL) mid-host",
        "its host redelivered and finished by another worker, its handler ran, the run converged",
    );
    // Whether the killed attempt's slow command still finished on the target (the
    // runner's child may outlive its session) decides only changed vs unchanged.
    let counts: Vec<usize> = summary_counts(&first.stderr)
        .trim_start_matches("Apply: ")
        .split(", ")
        .map(|c| c.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts[0] + counts[1], 21, "{}", first.stderr);
    assert_eq!(counts[2..], [0, 0], "{}", first.stderr);

    let args: Vec<&str> = apply.iter().map(String::as_str).collect();
    let second = froyo_at(&f.p.root, Some(&url), &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        summary_counts(&second.stderr).starts_with("Apply: 0 changed, 18 unchanged, 0 failed"),
        "{}",
        second.stderr
    );
    for w in &mut workers.0 {
        if w.id() != victim {
            assert!(stop(w));
        }
    }
}

/// The queue needs a shared state: a project on SQLite is refused before anything runs.
#[test]
fn apply_queue_with_a_sqlite_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("froyo.toml"), "[project]\nname = \"x\"\n").unwrap();
    std::fs::write(
        dir.path().join("site.star"),
        "load(\"@stdlib//linux.star\", \"file\")\nfile(\"/tmp/froyo-never\", content = \"x\")\n",
    )
    .unwrap();
    let run = froyo_at(
        dir.path(),
        None,
        &[
            "apply",
            "--yes",
            "site.star",
            "--queue",
            "nats://127.0.0.1:1",
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("E-QUEUE"), "{}", run.stderr);
    assert!(run.stderr.contains("shared state"), "{}", run.stderr);
    assert!(run.stderr.contains("state migrate"), "{}", run.stderr);
    assert!(!Path::new("/tmp/froyo-never").exists());
    let worker = froyo_at(
        dir.path(),
        None,
        &["worker", "--queue", "nats://127.0.0.1:1"],
    );
    assert_eq!(worker.code, 1, "{}", worker.stderr);
    assert!(worker.stderr.contains("E-QUEUE"), "{}", worker.stderr);
}

/// The children of `pid` (by `/proc/*/stat`'s parent field).
fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after the last `)`.
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z'))
    })
}

/// `froyo dev up --workers 2`: a local nats-server and two workers; the printed `apply
/// --queue` line applies a playbook through them; SIGINT stops every child.
#[test]
fn dev_up_starts_a_queue_and_workers_and_sigint_stops_them_all() {
    use std::io::BufRead;
    let pg = pg_server();
    let dir = tempfile::tempdir().unwrap();
    let ns = fresh_namespace("devup");
    let root = dir.path().join("proj");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(
        root.join("froyo.toml"),
        format!("[project]\nname = {ns:?}\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    std::fs::write(
        root.join("site.star"),
        format!(
            "load(\"@stdlib//linux.star\", \"file\")\nfile({:?}, content = \"through dev up\\n\")\n",
            out.join("hello.txt").display().to_string()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(&out).unwrap();
    let url = pg.url();
    let dev = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["dev", "up", "--workers", "2"])
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .env("FROYO_STATE_URL", &url)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("dev.log")).unwrap())
        .spawn()
        .unwrap();
    // Killed if the test fails half way.
    let mut guard = Workers(vec![dev]);
    let dev = &mut guard.0[0];
    let mut line = String::new();
    std::io::BufReader::new(dev.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let log = || std::fs::read_to_string(dir.path().join("dev.log")).unwrap_or_default();
    let queue = line
        .trim()
        .strip_prefix("froyo apply PLAYBOOK --queue ")
        .unwrap_or_else(|| panic!("{line:?}\n{}", log()))
        .to_owned();
    assert!(queue.starts_with("nats://127.0.0.1:"), "{queue}");
    let children = children_of(dev.id());
    assert_eq!(children.len(), 3, "nats-server and 2 workers: {children:?}");

    let run = froyo_at(
        &root,
        Some(&url),
        &["apply", "--yes", "site.star", "--queue", &queue],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, log());
    assert!(run.stderr.contains("Apply: 1 changed"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("hello.txt")).unwrap(),
        "through dev up\n"
    );

    let status = Command::new("kill")
        .args(["-INT", &dev.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let code = loop {
        if let Some(s) = dev.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "dev up did not stop: {}", log());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{}", log());
    for pid in children {
        assert!(!alive(pid), "child {pid} of dev up still runs");
    }
    assert!(log().contains("stopped"), "{}", log());
}

/// Fencing on the real server: once delivery 2 claimed a host, every write that delivery
/// 1 attempts (events, unit outcomes, resource state, pending handlers) is refused with
/// E-FENCED and leaves nothing behind, while delivery 2 writes; a finished host is not
/// claimed again.
#[test]
fn a_superseded_attempt_cannot_write() {
    use froyo::state::{Claimed, Event, Fence, FencedStore, RunKind, UnitRecord};
    let pg = pg_server();
    let ns = fresh_namespace("fence");
    let store = std::sync::Arc::new(PgStore::open(&pg.url(), &ns).unwrap());
    let run = store.begin_run(RunKind::Apply, Some("site.star")).unwrap();
    store.queue_hosts(run, &["web".to_owned()]).unwrap();
    let fence = |attempt| Fence {
        run,
        target: "web".into(),
        attempt,
    };
    assert_eq!(store.claim(run, "web", 1, "w1").unwrap(), Claimed::Owned);
    let first = FencedStore::new(store.clone(), fence(1));
    let event = |kind: &str| Event {
        ts_ms: 1,
        target: Some("web".into()),
        resource: Some("r".into()),
        kind: kind.into(),
        data: serde_json::json!({}),
    };
    first.append_event(run, &event("resource_started")).unwrap();
    assert_eq!(store.claim(run, "web", 2, "w2").unwrap(), Claimed::Owned);
    // An older delivery can no longer claim it.
    assert_eq!(
        store.claim(run, "web", 1, "w1").unwrap(),
        Claimed::Superseded { latest: 2 }
    );
    let err = first.append_event(run, &event("stale")).unwrap_err();
    assert!(
        format!("{:?}", miette::Report::new(err)).contains("E-FENCED"),
        "refused as fenced"
    );
    assert!(first.lost().load(std::sync::atomic::Ordering::SeqCst));
    let notified = ["restart".to_owned()];
    let unit = UnitRecord {
        target: "web",
        resource: "r",
        status: "ok",
        record: None,
        notified: &notified,
        withdrawn: &[],
    };
    assert!(first.record_unit(run, &unit).is_err());
    assert!(first.add_pending("web", "restart", "r", run).is_err());
    assert!(
        store.pending("web").unwrap().is_empty(),
        "nothing half written"
    );
    assert!(!store.heartbeat(&fence(1)).unwrap());

    let second = FencedStore::new(store.clone(), fence(2));
    second
        .append_event(run, &event("resource_finished"))
        .unwrap();
    second.record_unit(run, &unit).unwrap();
    assert_eq!(
        store.pending("web").unwrap(),
        [("restart".to_owned(), "r".to_owned())]
    );
    let kinds: Vec<String> = store
        .events(run)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["resource_started", "resource_finished"]);
    assert!(store.heartbeat(&fence(2)).unwrap());
    assert!(
        !store
            .finish_claim(&fence(1), "done", &serde_json::json!({}))
            .unwrap()
    );
    assert!(
        store
            .finish_claim(&fence(2), "done", &serde_json::json!({}))
            .unwrap()
    );
    assert_eq!(store.claim(run, "web", 3, "w3").unwrap(), Claimed::Finished);
    assert_eq!(store.claim(run, "db", 1, "w3").unwrap(), Claimed::Unknown);
}

/// The issue's scale check: 48 hosts (3 sshd × 16 loopback ports), three workers, one
/// killed with SIGKILL in the middle of the run: every host is applied (each claim done,
/// each handler ran once), and a second run finds everything unchanged.
#[test]
fn forty_eight_hosts_three_workers_one_killed_mid_run_converge() {
    let pg = pg_server();
    let nats = NatsServer::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ns = fresh_namespace("fleet48");
    let url = pg.url();
    let p = Project::new(&dir.path().join("proj"));
    let servers: Vec<Sshd> = (0..3)
        .map(|i| Sshd::start_ports(&dir.path().join(format!("sshd{i}")), &p.public_key(), 16))
        .collect();
    let mut inventory = String::new();
    let mut known = String::new();
    let mut names = Vec::new();
    for s in &servers {
        let mut key = s.host_key_pub.split_whitespace();
        let (kind, b64) = (key.next().unwrap(), key.next().unwrap());
        for port in &s.ports {
            let name = format!("h{:02}", names.len() + 1);
            inventory.push_str(&format!(
                "[[targets]]\nname = \"{name}\"\naddress = \"127.0.0.1:{port}\"\nuser = \"{}\"\nlabels = {{ role = \"test\" }}\n\n",
                whoami()
            ));
            known.push_str(&format!("[127.0.0.1]:{port} {kind} {b64}\n"));
            names.push(name);
        }
    }
    assert_eq!(names.len(), 48);
    std::fs::write(p.root.join("inventory.toml"), inventory).unwrap();
    std::fs::write(p.root.join(".froyo/known_hosts"), known).unwrap();
    std::fs::write(
        p.root.join("froyo.toml"),
        format!("[project]\nname = {ns:?}\n\n[queue]\nack_wait = \"5s\"\n"),
    )
    .unwrap();
    let out = dir.path().join("out");
    std::fs::write(
        p.root.join("site.star"),
        format!(
            r#"
load("@stdlib//linux.star", "directory", "file", "command")
def main(host):
    d = directory("{out}/" + host.name, mode = "0755")
    conf = file("{out}/%s/app.conf" % host.name, content = "port = 80\n")
    require(conf, d)
    slow = command("slow", shell = "sleep 1; touch {out}/%s/slow" % host.name, creates = "{out}/%s/slow" % host.name)
    require(slow, conf)
    restart = handler("linux.exec::command", "restart app", shell = "echo restarted >> {out}/%s/restarts.log" % host.name)
    notify(conf, restart)
"#,
            out = out.display()
        ),
    )
    .unwrap();
    let started = Instant::now();
    let mut workers = Workers(
        (0..3)
            .map(|i| {
                spawn(
                    &p.root,
                    &url,
                    &["worker", "--queue", &nats.url(), "--concurrency", "4"],
                    &dir.path().join(format!("worker{i}.log")),
                )
            })
            .collect(),
    );
    let apply: Vec<String> = [
        "apply",
        "--yes",
        "site.star",
        "--on",
        "role=test",
        "--parallelism",
        "12",
        "--queue",
        &nats.url(),
    ]
    .map(str::to_owned)
    .to_vec();
    let controller = {
        let (root, url, apply) = (p.root.clone(), url.clone(), apply.clone());
        std::thread::spawn(move || {
            let args: Vec<&str> = apply.iter().map(String::as_str).collect();
            froyo_at(&root, Some(&url), &args)
        })
    };
    // Once a few hosts are done, kill the worker holding the most hosts in progress.
    let store = PgStore::open(&url, &ns).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let (victim, held) = loop {
        assert!(Instant::now() < deadline, "the run never got going");
        if controller.is_finished() {
            let r = controller.join().unwrap();
            let logs: String = (0..3)
                .map(|i| {
                    std::fs::read_to_string(dir.path().join(format!("worker{i}.log")))
                        .unwrap_or_default()
                })
                .collect();
            panic!(
                "the controller ended first: {}
{}
{logs}",
                r.code, r.stderr
            );
        }
        let claims = store
            .runs(1)
            .unwrap()
            .first()
            .map(|r| store.claims(r.id).unwrap())
            .unwrap_or_default();
        let done = claims.iter().filter(|c| c.status == "done").count();
        let mut running: Vec<&str> = claims
            .iter()
            .filter(|c| c.status == "running")
            .map(|c| c.worker.as_str())
            .collect();
        running.sort();
        if done >= 6 && !running.is_empty() {
            let busiest = *running
                .iter()
                .max_by_key(|w| running.iter().filter(|x| x == w).count())
                .unwrap();
            let held: Vec<String> = claims
                .iter()
                .filter(|c| c.status == "running" && c.worker == busiest)
                .map(|c| c.target.clone())
                .collect();
            break (
                busiest.rsplit(':').next().unwrap().parse::<u32>().unwrap(),
                held,
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        Command::new("kill")
            .args(["-KILL", &victim.to_string()])
            .status()
            .unwrap()
            .success()
    );
    let first = controller.join().unwrap();
    let took = started.elapsed();
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    let run = last_run(&store);
    let claims = store.claims(run).unwrap();
    assert_eq!(claims.len(), 48);
    assert!(claims.iter().all(|c| c.status == "done"), "{claims:#?}");
    // The hosts the killed worker held were taken over by a later attempt (one may have
    // finished in the instant before the kill).
    let taken: Vec<_> = claims
        .iter()
        .filter(|c| held.contains(&c.target) && c.attempt >= 2)
        .collect();
    assert!(!taken.is_empty(), "{held:?} {claims:#?}");
    assert!(
        taken
            .iter()
            .all(|c| !c.worker.ends_with(&format!(":{victim}"))),
        "{taken:#?}"
    );
    for n in &names {
        // Exactly once where no worker was killed; at least once (at most twice) on
        // the hosts the killed worker held, where a kill between a change and its record
        // runs the handler again.
        let ran = std::fs::read_to_string(out.join(n).join("restarts.log")).unwrap();
        assert!(
            ran == "restarted\n" || (held.contains(n) && ran == "restarted\nrestarted\n"),
            "{n}: the handler ran once (twice at most on a host of the killed worker): {ran:?}"
        );
        assert!(store.pending(n).unwrap().is_empty(), "{n}");
    }
    let args: Vec<&str> = apply.iter().map(String::as_str).collect();
    let second = froyo_at(&p.root, Some(&url), &args);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        summary_counts(&second.stderr).starts_with("Apply: 0 changed, 144 unchanged, 0 failed"),
        "{}",
        second.stderr
    );
    eprintln!("48 hosts, 3 workers (one killed): first run {took:?}");
    for w in &mut workers.0 {
        if w.id() != victim {
            assert!(stop(w));
        }
    }
}
