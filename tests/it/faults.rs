//! Faults injected on purpose into a running apply (issue 22): signals to `froyo apply`.
//! Each test asserts the outcome a user relies on: what ran is recorded, nothing is half
//! done, the run says it was interrupted, and the next apply converges.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use froyo::state::{RunStatus, Store};

use crate::engine::{Proj, slow_playbook, wait_for};
use crate::fault_log::Recorded;

fn spawn_apply(p: &Proj, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["apply", "--yes", "--per-host", "1"])
        .args(extra)
        .arg("site.star")
        .current_dir(&p.root)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name} {}", child.id());
}

/// Waits at most `limit` for the child; its exit code, its stderr and how long it took.
fn wait_exit(mut child: Child, limit: Duration) -> (i32, String, Duration) {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.code().unwrap_or(-1), err, started.elapsed());
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("froyo apply did not end within {limit:?} of the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count(p: &Proj, prefix: &str) -> usize {
    std::fs::read_dir(&p.out)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .count()
        })
        .unwrap_or(0)
}

/// Steps that mark their start, take `secs`, then mark their end: a step interrupted
/// midway shows as `started-N` without `N`.
fn marked_playbook(n: usize, secs: &str) -> String {
    let mut s = String::from(
        "load(\"@stdlib//linux.star\", \"directory\", \"command\")\nd = directory(\"OUT\", mode = \"0755\")\n",
    );
    for i in 0..n {
        s.push_str(&format!(
            "require(command(\"step {i}\", shell = \"touch OUT/started-{i} && sleep {secs} && touch OUT/done-{i}\", creates = \"OUT/done-{i}\"), d)\n"
        ));
    }
    s
}

/// SIGINT mid-apply: no new resource starts, the one running finishes, the run is recorded
/// as interrupted with exit code 130, and the next apply does the rest.
#[test]
fn sigint_stops_new_work_lets_the_running_step_finish_and_the_next_apply_resumes() {
    let p = Proj::new(&marked_playbook(30, "0.3"));
    let child = spawn_apply(&p, &[]);
    wait_for("three steps done", Duration::from_secs(60), || {
        count(&p, "done-") >= 3
    });
    let before = Recorded::of(&p.store());
    signal(&child, "INT");
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 130, "{stderr}");
    assert!(
        stderr.contains("SIGINT: stopping") && stderr.contains("interrupted by SIGINT"),
        "{stderr}"
    );
    // What ran finished: every step that started also ended.
    let (started, done) = (count(&p, "started-"), count(&p, "done-"));
    assert_eq!(started, done, "a step was cut off midway");
    assert!(done < 30, "the run was not stopped ({done} of 30 done)");
    // Nothing starts after the process ended.
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(count(&p, "started-"), started);
    let store = p.store();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let runs = store.runs(10).unwrap();
    assert_eq!(runs[0].status, RunStatus::Interrupted, "{runs:?}");
    eprintln!("SIGINT: exit 130 {took:?} after the signal, {done} of 30 steps done");
    before.survived(
        &store,
        "faults::sigint_stops_new_work_…",
        "SIGINT mid-apply",
        &format!(
            "exit 130 {:.1} s after, run interrupted, the next apply resumed",
            took.as_secs_f64()
        ),
    );

    let next = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(count(&p, "done-"), 30);
    let said = format!("{}{}", next.stdout, next.stderr);
    assert!(
        said.contains(&format!("{} changed", 30 - done)),
        "only the steps not done before run: {said}"
    );
    let again = p.run(&["plan", "--detailed-exitcode", "site.star"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

/// SIGINT, then SIGTERM while a long step runs: the second signal ends the process at
/// once (exit 143), the run is recorded as interrupted, and the next apply converges.
#[test]
fn sigint_then_sigterm_stops_at_once_and_records_the_run_as_interrupted() {
    let p = Proj::new(&marked_playbook(2, "4"));
    let child = spawn_apply(&p, &[]);
    wait_for("the first step to start", Duration::from_secs(60), || {
        count(&p, "started-") >= 1
    });
    let before = Recorded::of(&p.store());
    signal(&child, "INT");
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, "TERM");
    let (code, stderr, took) = wait_exit(child, Duration::from_secs(3));
    assert_eq!(code, 143, "{stderr}");
    assert!(stderr.contains("SIGTERM: stopped at once"), "{stderr}");
    let store = p.store();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let runs = store.runs(10).unwrap();
    assert_eq!(runs[0].status, RunStatus::Interrupted, "{runs:?}");
    assert_eq!(count(&p, "done-"), 0, "the long step was not waited for");
    eprintln!("SIGINT then SIGTERM: exit 143 {took:?} after the second signal");
    before.survived(
        &store,
        "faults::sigint_then_sigterm_stops_at_once_…",
        "SIGINT, then SIGTERM",
        &format!(
            "exit 143 {:.1} s after SIGTERM, run interrupted",
            took.as_secs_f64()
        ),
    );
    drop(store);

    let next = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(count(&p, "done-"), 2);
    let again = p.run(&["plan", "--detailed-exitcode", "site.star"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
}

/// The older fixture still serves: the plain slow playbook, SIGTERM alone → 143.
#[test]
fn sigterm_alone_ends_the_apply_with_143_and_the_state_sound() {
    let p = Proj::new(&slow_playbook(40, "0.1"));
    let child = spawn_apply(&p, &[]);
    wait_for("the first resources", Duration::from_secs(60), || {
        std::fs::read_dir(&p.out).map(|d| d.count()).unwrap_or(0) >= 3
    });
    let before = Recorded::of(&p.store());
    signal(&child, "TERM");
    let (code, stderr, _) = wait_exit(child, Duration::from_secs(20));
    assert_eq!(code, 143, "{stderr}");
    let store = p.store();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(store.runs(1).unwrap()[0].status, RunStatus::Interrupted);
    before.survived(
        &store,
        "faults::sigterm_alone_ends_the_apply_…",
        "SIGTERM mid-apply",
        "exit 143, run interrupted",
    );
    let next = p.run(&["apply", "--yes", "site.star"]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(std::fs::read_dir(&p.out).unwrap().count(), 40);
}
