//! `exec`: argv and shell commands, exit codes and signals, environment, stdin,
//! output limits, streaming and timeouts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Runner, Scratch};

#[test]
fn echo_runs_directly() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"argv": ["/bin/echo", "hello", "world"]}));
    assert_eq!(r["rc"], 0);
    assert_eq!(r["signal"], json!(null));
    assert_eq!(r["stdout"], "hello world\n");
    assert_eq!(r["stderr"], "");
    assert_eq!(r["truncated"], false);
    assert!(r["duration_ms"].is_u64());
}

#[test]
fn shell_exit_code_is_a_result_not_an_error() {
    let mut runner = Runner::start();
    let r = runner.ok(
        1,
        "exec",
        json!({"argv": ["sh", "-c", "echo out; echo err >&2; exit 3"]}),
    );
    assert_eq!(
        (r["rc"].clone(), r["stdout"].clone(), r["stderr"].clone()),
        (json!(3), json!("out\n"), json!("err\n"))
    );
    let r = runner.ok(2, "exec", json!({"shell": "exit 4"}));
    assert_eq!(r["rc"], 4);
}

#[test]
fn a_signal_is_reported_with_a_null_rc() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"shell": "kill -9 $$"}));
    assert_eq!(r["rc"], json!(null));
    assert_eq!(r["signal"], 9);
}

#[test]
fn timeout_kills_and_is_transient() {
    let mut runner = Runner::start();
    let started = Instant::now();
    let (class, message) = runner.err(
        1,
        "exec",
        json!({"argv": ["sleep", "10"], "timeout_ms": 200}),
    );
    assert_eq!(class, "transient");
    assert_eq!(message, "timed out after 200 ms");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_huge_timeout_does_not_overflow() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"argv": ["true"], "timeout_ms": u64::MAX}));
    assert_eq!(r["rc"], 0);
}

#[test]
fn missing_program_and_bad_arguments_are_permanent() {
    let mut runner = Runner::start();
    let cases = [
        (
            json!({"argv": ["/nonexistent/froyo-prog"]}),
            "program not found: `/nonexistent/froyo-prog`",
        ),
        (
            json!({"argv": ["froyo-no-such-program"]}),
            "program not found: `froyo-no-such-program`",
        ),
        (json!({"argv": []}), "`argv` is empty"),
        (json!({}), "give one of `argv` and `shell`"),
        (
            json!({"argv": ["true"], "shell": "true"}),
            "give one of `argv` and `shell`, not both",
        ),
        (
            json!({"argv": ["true"], "cwd": "tmp"}),
            "`cwd` must be an absolute path, got `tmp`",
        ),
        (
            json!({"argv": ["true"], "cwd": "/nonexistent-froyo"}),
            "`cwd` `/nonexistent-froyo` is not a directory",
        ),
        (
            json!({"argv": ["true"], "env": {"A=B": "x"}}),
            "invalid environment variable name `A=B`",
        ),
    ];
    for (i, (args, message)) in cases.into_iter().enumerate() {
        let (class, got) = runner.err(i as u64 + 1, "exec", args);
        assert_eq!((class.as_str(), got.as_str()), ("permanent", message));
    }
}

#[test]
fn environment_is_minimal_and_extendable() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"argv": ["env"]}));
    let mut vars: Vec<&str> = r["stdout"].as_str().unwrap_or("").lines().collect();
    vars.sort();
    assert_eq!(
        vars,
        [
            "LANG=C.UTF-8",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ]
    );
    let r = runner.ok(
        2,
        "exec",
        json!({"argv": ["env"], "env": {"LANG": "C", "FOO": "bar"}}),
    );
    let mut vars: Vec<&str> = r["stdout"].as_str().unwrap_or("").lines().collect();
    vars.sort();
    assert_eq!(vars[0], "FOO=bar");
    assert_eq!(vars[1], "LANG=C");
}

#[test]
fn cwd_and_stdin_are_passed() {
    let dir = Scratch::new("cwd");
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"argv": ["pwd"], "cwd": dir.p("")}));
    let got = r["stdout"].as_str().unwrap_or("").trim_end().to_string();
    assert_eq!(
        std::fs::canonicalize(got).ok(),
        std::fs::canonicalize(&dir.path).ok()
    );
    let r = runner.ok(
        2,
        "exec",
        json!({"argv": ["cat"], "stdin": "line one\nline two\n"}),
    );
    assert_eq!(r["stdout"], "line one\nline two\n");
    // Without `stdin` the program reads EOF at once instead of hanging.
    let r = runner.ok(3, "exec", json!({"argv": ["cat"], "timeout_ms": 5000}));
    assert_eq!(r["stdout"], "");
}

#[test]
fn output_past_max_output_is_truncated() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"shell": "head -c 100000 /dev/zero | tr '\\0' x; echo done >&2", "max_output": 1000}));
    assert_eq!(r["stdout"].as_str().map(str::len), Some(1000));
    assert_eq!(r["stderr"], "done\n");
    assert_eq!(r["truncated"], true);
    assert_eq!(
        r["rc"], 0,
        "the program was drained, not blocked on a full pipe"
    );
}

#[test]
fn big_output_within_the_default_limit_is_kept_whole() {
    let mut runner = Runner::start();
    let r = runner.ok(1, "exec", json!({"shell": "seq 1 100000"}));
    let out = r["stdout"].as_str().unwrap_or("");
    assert_eq!(out.lines().count(), 100_000);
    assert_eq!(r["truncated"], false);
}

#[test]
fn stream_sends_output_events_before_done() {
    let mut runner = Runner::start();
    runner.send_cmd(1, "exec", json!({"shell": "echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three", "stream": true}));
    let frames = runner.collect(1);
    let (last, events) = frames.split_last().expect("frames");
    assert_eq!(last["type"], "done");
    let stdout: String = events
        .iter()
        .filter(|e| e["kind"] == "stdout")
        .filter_map(|e| e["data"].as_str())
        .collect();
    let stderr: String = events
        .iter()
        .filter(|e| e["kind"] == "stderr")
        .filter_map(|e| e["data"].as_str())
        .collect();
    assert_eq!(stdout, "one\nthree\n");
    assert_eq!(stderr, "two\n");
    assert!(events.iter().all(|e| e["type"] == "event"));
    assert_eq!(last["result"]["stdout"], "one\nthree\n");
}

#[test]
fn without_stream_there_are_no_events() {
    let mut runner = Runner::start();
    runner.send_cmd(1, "exec", json!({"argv": ["/bin/echo", "x"]}));
    let frames = runner.collect(1);
    assert_eq!(frames.len(), 1, "{frames:?}");
}

#[test]
fn a_background_child_holding_the_pipe_does_not_hang_the_command() {
    let mut runner = Runner::start();
    let started = Instant::now();
    let r = runner.ok(1, "exec", json!({"shell": "sleep 5 & echo started"}));
    assert_eq!(r["stdout"], "started\n");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}
