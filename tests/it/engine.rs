//! Plan, apply, state and drift end to end: the real `froyo` binary on project
//! directories, against the local machine and loopback sshd targets, with the state in a
//! real SQLite file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use froyo::state::{RunStatus, SqliteStore, Store};

use crate::sshd::{Project, Sshd, whoami};
use crate::{Run, froyo};

/// A project directory with `froyo.toml` and an output directory for its resources.
pub(crate) struct Proj {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) out: PathBuf,
}

impl Proj {
    pub(crate) fn new(playbook: &str) -> Proj {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("proj");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("froyo.toml"), "[project]\nname = \"it\"\n").unwrap();
        let p = Proj {
            _tmp: tmp,
            root,
            out,
        };
        p.playbook(playbook);
        p
    }

    /// Writes `site.star`; `OUT` in the text is replaced by the output directory.
    fn playbook(&self, text: &str) {
        std::fs::write(
            self.root.join("site.star"),
            text.replace("OUT", &self.out.display().to_string()),
        )
        .unwrap();
    }

    pub(crate) fn run(&self, args: &[&str]) -> Run {
        froyo(&self.root, args)
    }

    pub(crate) fn store(&self) -> SqliteStore {
        SqliteStore::open_project(&self.root).unwrap()
    }
}

const SITE: &str = r#"
load("@stdlib//linux.star", "directory", "file", "command")
d = directory("OUT", mode = "0755")
conf = file("OUT/app.conf", content = "port = 80\n", mode = "0644")
require(conf, d)
seed = command("seed", shell = "echo seeded >> OUT/seed.log", creates = "OUT/seed.log")
require(seed, d)
restart = handler("linux.exec::command", "restart app", shell = "echo restarted >> OUT/restarts.log")
notify(conf, restart)
"#;

#[test]
fn apply_is_idempotent_and_drift_is_found_and_fixed() {
    let p = Proj::new(SITE);
    let first = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains("Plan: 2 to add, 0 to change, 0 to remove, 2 to run."),
        "{}",
        first.stdout
    );
    assert_eq!(
        std::fs::read_to_string(p.out.join("app.conf")).unwrap(),
        "port = 80\n"
    );
    assert_eq!(
        std::fs::read_to_string(p.out.join("restarts.log")).unwrap(),
        "restarted\n",
        "the handler ran once, after its notifier"
    );

    // Nothing to do: exit 0 with every resource unchanged, and the handler stays quiet.
    let plan = p.run(&["plan", "--detailed-exitcode", "site.star"]);
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("= 4 unchanged"), "{}", plan.stdout);
    let again = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        std::fs::read_to_string(p.out.join("restarts.log")).unwrap(),
        "restarted\n"
    );

    // A hand edit: drift names it (exit 2), --remediate fixes it, then no drift.
    std::fs::write(p.out.join("app.conf"), "port = 8080\n").unwrap();
    let drift = p.run(&["drift"]);
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("~ linux.file::file[")
            && drift.stdout.contains("-port = 8080")
            && drift.stdout.contains("+port = 80"),
        "{}",
        drift.stdout
    );
    let fix = p.run(&["drift", "--remediate"]);
    assert_eq!(fix.code, 0, "{}", fix.stderr);
    assert_eq!(
        std::fs::read_to_string(p.out.join("app.conf")).unwrap(),
        "port = 80\n"
    );
    assert_eq!(p.run(&["drift"]).code, 0);

    // Everything is in the state: runs, events before and after each step.
    let store = p.store();
    let runs = store.runs(10).unwrap();
    assert!(
        runs.iter().all(|r| r.status == RunStatus::Succeeded),
        "{runs:?}"
    );
    let first_run = runs.last().unwrap().id;
    let kinds: Vec<String> = store
        .events(first_run)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(
        kinds.iter().filter(|k| *k == "operation_started").count() >= 4,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"handler_notified".to_owned()), "{kinds:?}");
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_failure_skips_its_dependents_and_a_later_apply_finishes() {
    let p = Proj::new(
        r#"
load("@stdlib//linux.star", "directory", "file", "command")
d = directory("OUT", mode = "0755")
gate = command("gate", shell = "test -f OUT/allow", creates = "OUT/never")
require(gate, d)
after = file("OUT/after.txt", content = "after\n")
require(after, gate)
other = file("OUT/other.txt", content = "other\n")
require(other, d)
"#,
    );
    let first = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(first.code, 1, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first.stderr.contains("linux.exec::command[gate]") && first.stderr.contains("site.star:4"),
        "the failure names the resource and its file:line: {}",
        first.stderr
    );
    assert!(first.stderr.contains("skipped"), "{}", first.stderr);
    assert!(
        !p.out.join("after.txt").exists(),
        "a dependent of a failure must not run"
    );
    assert!(
        p.out.join("other.txt").exists(),
        "independent resources still run"
    );
    std::fs::write(p.out.join("allow"), "").unwrap();
    let second = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(second.code, 0, "{}\n{}", second.stdout, second.stderr);
    assert!(p.out.join("after.txt").exists());
}

#[test]
fn a_pending_handler_survives_a_failed_run() {
    let p = Proj::new(
        r#"
load("@stdlib//linux.star", "directory", "file")
d = directory("OUT", mode = "0755")
conf = file("OUT/app.conf", content = "v1\n")
require(conf, d)
h = handler("linux.exec::command", "reload app", shell = "test -f OUT/allow && echo reloaded >> OUT/reloads.log")
notify(conf, h)
"#,
    );
    let first = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(first.code, 1, "the handler fails: {}", first.stderr);
    let pending = p.store().pending("local").unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    // Nothing changes any more, but the notification is still owed.
    std::fs::write(p.out.join("allow"), "").unwrap();
    let second = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(
        std::fs::read_to_string(p.out.join("reloads.log")).unwrap(),
        "reloaded\n"
    );
    assert!(p.store().pending("local").unwrap().is_empty());
    let third = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(third.code, 0);
    assert_eq!(
        std::fs::read_to_string(p.out.join("reloads.log")).unwrap(),
        "reloaded\n",
        "a handler runs once per notification"
    );
}

#[test]
fn a_saved_plan_applies_exactly_and_is_refused_after_the_target_changed() {
    let p = Proj::new(
        r#"
load("@stdlib//linux.star", "directory", "file")
d = directory("OUT", mode = "0755")
f = file("OUT/a.txt", content = "planned\n")
require(f, d)
"#,
    );
    let plan = p.run(&["plan", "--out", "plan.json", "site.star"]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let ok = p.run(&["apply", "--yes", "--plan", "plan.json"]);
    assert_eq!(ok.code, 0, "{}\n{}", ok.stdout, ok.stderr);
    assert_eq!(
        std::fs::read_to_string(p.out.join("a.txt")).unwrap(),
        "planned\n"
    );

    std::fs::write(p.out.join("a.txt"), "changed by hand\n").unwrap();
    let plan = p.run(&["plan", "--out", "plan.json", "site.star"]);
    assert_eq!(plan.code, 0);
    std::fs::write(p.out.join("a.txt"), "changed again\n").unwrap();
    let refused = p.run(&["apply", "--yes", "--plan", "plan.json"]);
    assert_eq!(refused.code, 1, "{}\n{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("changed since the plan")
            && refused.stderr.contains("linux.file::file["),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(p.out.join("a.txt")).unwrap(),
        "changed again\n",
        "a refused plan changes nothing"
    );
}

/// Runs `froyo` with extra environment variables.
fn froyo_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_froyo"));
    cmd.args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn no_secret_reaches_state_plans_or_output() {
    let secret = "hunter2-c0rrect-h0rse-battery";
    let p = Proj::new(
        r#"
load("@stdlib//linux.star", "directory", "file")
d = directory("OUT", mode = "0755")
token = secret("env://FROYO_IT_TOKEN")
env = file("OUT/app.env", content = fmt("TOKEN={}\n", token), mode = "0600")
require(env, d)
conf = file("OUT/app.conf", content = template("app.conf.j2", vars = {"token": token}), mode = "0600")
require(conf, d)
"#,
    );
    std::fs::write(p.root.join("app.conf.j2"), "token: {{ token }}\n").unwrap();
    let env = [("FROYO_IT_TOKEN", secret)];
    let mut outputs = Vec::new();
    for args in [
        &["plan", "--diff", "--out", "plan.json", "site.star"][..],
        &["apply", "--yes", "--diff", "site.star"][..],
        &["apply", "--yes", "--json", "site.star"][..],
        &["drift", "--json"][..],
    ] {
        let run = froyo_env(&p.root, args, &env);
        assert_eq!(run.code, 0, "{args:?}: {}\n{}", run.stdout, run.stderr);
        outputs.push(format!("{}{}", run.stdout, run.stderr));
    }
    // The secret did reach the target, where it belongs (so the checks below can fail).
    assert_eq!(
        std::fs::read_to_string(p.out.join("app.env")).unwrap(),
        format!("TOKEN={secret}\n")
    );
    assert_eq!(
        std::fs::read_to_string(p.out.join("app.conf")).unwrap(),
        format!("token: {secret}\n")
    );
    for o in &outputs {
        assert!(!o.contains(secret), "a secret in output: {o}");
    }
    let plan = std::fs::read_to_string(p.root.join("plan.json")).unwrap();
    assert!(!plan.contains(secret), "a secret in the plan file");
    for entry in std::fs::read_dir(p.root.join(".froyo")).unwrap().flatten() {
        if entry.path().is_file() {
            let bytes = std::fs::read(entry.path()).unwrap();
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret in {}",
                entry.path().display()
            );
        }
    }
}

/// `n` guarded commands that each take a little while, so a run can be interrupted.
pub(crate) fn slow_playbook(n: usize, sleep: &str) -> String {
    let mut s = String::from(
        "load(\"@stdlib//linux.star\", \"directory\", \"command\")\nd = directory(\"OUT\", mode = \"0755\")\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "require(command(\"step {i}\", shell = \"sleep {sleep} && touch OUT/{i}\", creates = \"OUT/{i}\"), d)\n"
        ));
    }
    s
}

pub(crate) fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_apply_killed_midway_is_finished_by_the_next_and_the_state_stays_sound() {
    let p = Proj::new(&slow_playbook(200, "0.02"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["apply", "--yes", "site.star"])
        .current_dir(&p.root)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let done = |p: &Proj| std::fs::read_dir(&p.out).map(|d| d.count()).unwrap_or(0);
    wait_for("the first resources", Duration::from_secs(60), || {
        done(&p) >= 20
    });
    // SIGKILL: no cleanup of any kind.
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = done(&p);
    assert!(
        partial < 200,
        "the run was not interrupted ({partial} done)"
    );

    let second = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(done(&p), 200);
    let store = p.store();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let runs = store.runs(10).unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[1].status, RunStatus::Interrupted, "{runs:?}");
    assert_eq!(runs[0].status, RunStatus::Succeeded);
    let events = store.events(runs[1].id).unwrap();
    assert!(
        events.iter().any(|e| e.kind == "operation_finished"),
        "the interrupted run's events are kept"
    );
    let plan = p.run(&["plan", "--detailed-exitcode", "site.star"]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
}

#[test]
fn a_second_concurrent_apply_is_refused() {
    let p = Proj::new(&slow_playbook(4, "1"));
    let mut first = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["apply", "--yes", "--per-host", "1", "site.star"])
        .current_dir(&p.root)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the first apply to start", Duration::from_secs(60), || {
        SqliteStore::open_project(&p.root)
            .and_then(|s| s.runs(1))
            .is_ok_and(|r| r.first().is_some_and(|r| r.status == RunStatus::Running))
    });
    let second = p.run(&["apply", "--yes", "site.star"]);
    let status = first.wait().unwrap();
    assert_eq!(second.code, 1, "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("E-LOCKED") && second.stderr.contains("froyo apply"),
        "{}",
        second.stderr
    );
    assert!(status.success());
}

#[test]
fn three_sshd_targets_apply_noop_drift_and_remediate() {
    let dir = tempfile::tempdir().unwrap();
    let p = Project::new(&dir.path().join("project"));
    let servers: Vec<Sshd> = (0..3)
        .map(|i| Sshd::start(&dir.path().join(format!("sshd{i}")), &p.public_key()))
        .collect();
    let names = ["t1", "t2", "t3"];
    let named: Vec<(&str, &Sshd)> = names.iter().copied().zip(servers.iter()).collect();
    p.inventory(&named, &whoami());
    p.trust(&servers.iter().collect::<Vec<_>>());
    let out = dir.path().join("out");
    std::fs::write(
        p.root.join("site.star"),
        format!(
            r#"
load("@stdlib//linux.star", "directory", "file", "command")
def main(host):
    d = directory("{out}/" + host.name, mode = "0755")
    for i in range(5):
        require(file("{out}/%s/f%d.txt" % (host.name, i), content = "file %d on %s\n" % (i, host.name)), d)
    require(command("stamp", shell = "hostname > {out}/%s/stamp" % host.name, creates = "{out}/%s/stamp" % host.name), d)
"#,
            out = out.display()
        ),
    )
    .unwrap();
    let on = ["--on", "role=test"];
    let first = froyo(
        &p.root,
        &[&["apply", "--yes", "site.star"][..], &on].concat(),
    );
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);
    for t in names {
        assert_eq!(
            std::fs::read_to_string(out.join(t).join("f3.txt")).unwrap(),
            format!("file 3 on {t}\n")
        );
    }
    let plan = froyo(
        &p.root,
        &[&["plan", "--detailed-exitcode", "site.star"][..], &on].concat(),
    );
    assert_eq!(plan.code, 0, "{}\n{}", plan.stdout, plan.stderr);
    assert!(plan.stdout.contains("= 7 unchanged"), "{}", plan.stdout);

    std::fs::write(out.join("t2/f1.txt"), "edited on t2\n").unwrap();
    let drift = froyo(&p.root, &["drift"]);
    assert_eq!(drift.code, 2, "{}\n{}", drift.stdout, drift.stderr);
    assert!(
        drift.stdout.contains("t2\n  ~ linux.file::file[") && drift.stdout.contains("f1.txt"),
        "{}",
        drift.stdout
    );
    assert!(!drift.stdout.contains("t1/f1.txt"), "{}", drift.stdout);
    let fix = froyo(&p.root, &["drift", "--remediate", "--on", "name=t2"]);
    assert_eq!(fix.code, 0, "{}", fix.stderr);
    assert_eq!(
        std::fs::read_to_string(out.join("t2/f1.txt")).unwrap(),
        "file 1 on t2\n"
    );
    assert_eq!(froyo(&p.root, &["drift"]).code, 0);
    for s in &servers {
        assert!(s.leftovers().is_empty(), "runners cleaned up");
    }
}

#[test]
fn a_resource_after_changes_is_read_again_when_its_turn_comes() {
    // At plan time `made.txt` is missing, so the command plans to run; by its turn the
    // file exists, and its `creates` guard holds.
    let p = Proj::new(
        r#"
load("@stdlib//linux.star", "directory", "file", "command")
d = directory("OUT", mode = "0755")
made = file("OUT/made.txt", content = "x\n")
require(made, d)
once = command("once", shell = "echo ran >> OUT/ran.log", creates = "OUT/made.txt")
require(once, made)
"#,
    );
    let run = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("! linux.exec::command[once]"),
        "{}",
        run.stdout
    );
    assert!(p.out.join("made.txt").exists());
    assert!(
        !p.out.join("ran.log").exists(),
        "the guard was checked again at apply time"
    );
}
