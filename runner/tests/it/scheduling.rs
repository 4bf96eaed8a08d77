//! How commands share the runner: concurrency, the in-flight bound, and idempotency
//! keys.

use std::fs;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{BIN, Runner, Scratch};

#[test]
fn two_sleeps_run_concurrently() {
    let mut runner = Runner::start();
    let started = Instant::now();
    runner.send_cmd(1, "exec", json!({"argv": ["sleep", "0.5"]}));
    runner.send_cmd(2, "exec", json!({"argv": ["sleep", "0.5"]}));
    assert_eq!(runner.answer(2)["type"], "done");
    assert_eq!(runner.answer(1)["type"], "done");
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(900),
        "two 0.5 s sleeps took {took:?}"
    );
}

#[test]
fn a_quick_command_is_not_stuck_behind_a_slow_one() {
    let mut runner = Runner::start();
    runner.send_cmd(1, "exec", json!({"argv": ["sleep", "2"]}));
    runner.send_cmd(2, "file.stat", json!({"paths": ["/"]}));
    let first = runner.next_frame().expect("a frame");
    assert_eq!(first["id"], 2, "the stat answers first: {first}");
    assert_eq!(runner.answer(1)["type"], "done");
}

#[test]
fn max_in_flight_bounds_concurrency() {
    let mut runner = Runner::start_with(BIN, &["--max-in-flight", "1"]);
    let started = Instant::now();
    runner.send_cmd(1, "exec", json!({"argv": ["sleep", "0.3"]}));
    runner.send_cmd(2, "exec", json!({"argv": ["sleep", "0.3"]}));
    runner.answer(1);
    runner.answer(2);
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "ran together: {:?}",
        started.elapsed()
    );
}

#[test]
fn idempotency_key_runs_once_and_repeats_the_result() {
    let dir = Scratch::new("idem");
    let log = dir.p("log");
    let mut runner = Runner::start();
    let cmd = |id: u64, key: &str| {
        json!({"type": "cmd", "id": id, "op": "exec", "idempotency_key": key,
               "args": {"shell": format!("sleep 0.2; echo ran >> '{log}'; echo $$")}})
    };
    // The repeat arrives while the first still runs, and once more after it finished.
    runner.send(&cmd(1, "append-once"));
    runner.send(&cmd(2, "append-once"));
    let first = runner.answer(1);
    let second = runner.answer(2);
    runner.send(&cmd(3, "append-once"));
    let third = runner.answer(3);
    assert_eq!(first["type"], "done");
    assert_eq!(first["result"], second["result"]);
    assert_eq!(first["result"], third["result"]);
    assert_eq!(
        (second["id"].clone(), third["id"].clone()),
        (json!(2), json!(3))
    );
    assert_eq!(fs::read_to_string(&log).ok().as_deref(), Some("ran\n"));
    // Another key runs again.
    runner.send(&cmd(4, "another"));
    runner.answer(4);
    assert_eq!(fs::read_to_string(&log).ok().as_deref(), Some("ran\nran\n"));
}

#[test]
fn idempotency_key_repeats_errors_too() {
    let mut runner = Runner::start();
    let frame = json!({"type": "cmd", "id": 1, "op": "file.read", "idempotency_key": "k", "args": {"path": "/nonexistent-froyo"}});
    runner.send(&frame);
    let first = runner.answer(1);
    let mut again = frame.clone();
    again["id"] = json!(2);
    runner.send(&again);
    let second = runner.answer(2);
    assert_eq!(first["type"], "error");
    assert_eq!(
        (first["class"].clone(), first["message"].clone()),
        (second["class"].clone(), second["message"].clone())
    );
}

#[test]
fn idempotency_key_reused_for_another_op_is_a_conflict() {
    let mut runner = Runner::start();
    runner.send(&json!({"type": "cmd", "id": 1, "op": "file.stat", "idempotency_key": "k", "args": {"paths": ["/"]}}));
    runner.answer(1);
    runner.send(
        &json!({"type": "cmd", "id": 2, "op": "facts.collect", "idempotency_key": "k", "args": {}}),
    );
    let frame = runner.answer(2);
    assert_eq!(frame["class"], "conflict", "{frame}");
}
