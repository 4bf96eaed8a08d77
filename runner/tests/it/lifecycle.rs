//! How a runner starts and ends: the `ready` frame, EOF, `exit`, the TTLs and
//! `--unlink`.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{BIN, Runner, Scratch};

#[test]
fn ready_announces_version_pid_platform_and_every_op() {
    let mut runner = Runner::start();
    let ready = runner.ready.clone();
    assert_eq!(ready["version"], "0.1.0");
    assert!(ready["pid"].as_u64().is_some_and(|p| p > 0), "{ready}");
    assert_eq!(ready["arch"], std::env::consts::ARCH);
    assert_eq!(ready["os"], "linux");
    let caps: Vec<&str> = ready["caps"]
        .as_array()
        .expect("caps")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert_eq!(caps, froyo_runner::ops::OPS);
    let keys: Vec<&String> = ready.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 6, "no unexpected fields: {ready}");
    runner.close_stdin();
    assert!(
        runner
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn eof_on_stdin_exits_zero() {
    let mut runner = Runner::start();
    let started = Instant::now();
    runner.close_stdin();
    let status = runner
        .wait_exit(Duration::from_secs(10))
        .expect("exits on EOF");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "EOF exit took {:?}",
        started.elapsed()
    );
}

#[test]
fn exit_frame_lets_a_running_command_finish_then_exits() {
    let mut runner = Runner::start();
    runner.send_cmd(1, "exec", json!({"argv": ["sleep", "0.3"]}));
    runner.send(&json!({"type": "exit"}));
    // Started after `exit`: never runs, never answered.
    runner.send_cmd(2, "exec", json!({"argv": ["/bin/echo", "too late"]}));
    let answer = runner.answer(1);
    assert_eq!(answer["type"], "done", "{answer}");
    let status = runner
        .wait_exit(Duration::from_secs(10))
        .expect("exits after `exit`");
    assert!(status.success(), "{status}");
    assert!(
        runner.next_frame().is_none(),
        "no answer to a command sent after `exit`"
    );
}

#[test]
fn exit_kills_commands_still_running_after_the_grace_period() {
    let mut runner = Runner::start();
    runner.send_cmd(1, "exec", json!({"argv": ["sleep", "30"]}));
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    runner.send(&json!({"type": "exit"}));
    let answer = runner.answer(1);
    assert_eq!(answer["class"], "transient", "{answer}");
    let status = runner.wait_exit(Duration::from_secs(10)).expect("exits");
    assert!(status.success());
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "exit took {took:?}"
    );
}

#[test]
fn idle_secs_makes_it_exit_on_its_own() {
    let mut runner = Runner::start_with(BIN, &["--idle-secs", "1"]);
    let started = Instant::now();
    let status = runner
        .wait_exit(Duration::from_secs(10))
        .expect("exits when idle");
    assert!(status.success(), "{status}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "exited after only {took:?}"
    );
}

#[test]
fn idle_clock_restarts_with_each_frame() {
    let mut runner = Runner::start_with(BIN, &["--idle-secs", "1"]);
    for id in 1..=3 {
        std::thread::sleep(Duration::from_millis(600));
        runner.ok(id, "file.stat", json!({"paths": ["/"]}));
    }
    assert!(
        runner.wait_exit(Duration::from_millis(100)).is_none(),
        "still alive after 1.8 s of activity"
    );
    assert!(
        runner
            .wait_exit(Duration::from_secs(10))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn total_ttl_ends_the_session_even_while_busy() {
    let mut runner = Runner::start_with(BIN, &["--ttl-secs", "1", "--idle-secs", "100"]);
    runner.send_cmd(1, "exec", json!({"argv": ["sleep", "30"]}));
    let started = Instant::now();
    let status = runner
        .wait_exit(Duration::from_secs(15))
        .expect("exits at the TTL");
    assert!(status.success(), "{status}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn unlink_removes_the_executable_before_ready() {
    let dir = Scratch::new("unlink");
    let copy = dir.join("froyo-runner-copy");
    std::fs::copy(BIN, &copy).expect("copy the runner");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut runner = Runner::start_with(&copy, &["--unlink"]);
    assert!(!copy.exists(), "`--unlink` left {}", copy.display());
    // Still fully working without its file.
    let result = runner.ok(1, "exec", json!({"argv": ["/bin/echo", "alive"]}));
    assert_eq!(result["stdout"], "alive\n");
}

#[test]
fn without_unlink_the_executable_stays() {
    let _runner = Runner::start();
    assert!(std::path::Path::new(BIN).exists());
}

#[test]
fn bad_arguments_exit_2_without_a_session() {
    let status = std::process::Command::new(BIN)
        .arg("--frobnicate")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(2));
}
