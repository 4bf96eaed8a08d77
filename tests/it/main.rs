//! Integration tests: each drives the real `froyo` binary (or the library end to end) on
//! fixture playbooks under `tests/fixtures/`, with real CUE behind the schema checks.

mod agent;
mod agent_harness;
mod auto_edges;
mod book;
mod book_console;
mod cli;
mod cluster;
mod cue;
mod diagnostics;
mod engine;
mod examples;
mod fault_log;
mod faults;
mod faults_disk;
mod faults_targets;
mod format;
mod front_door;
mod fuzz_corpus;
mod import;
mod import_diff;
mod lsp;
mod netns;
mod observability;
mod onboard;
mod plays;
mod policy;
mod policy_reference;
mod prov_firewall;
mod prov_net;
mod prov_pkg;
mod prov_probes;
mod prov_service;
mod providers;
mod queue;
mod repl;
mod robustness;
mod schema;
mod secrets;
mod shell;
mod sshd;
mod state;
mod transport;
mod webserver;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// `/tmp/froyo-hello`, where `examples/hello.star` writes: held by each test that applies
/// it (the README's main job, the book's hello session), so they take turns.
pub fn hello_dir() -> std::sync::MutexGuard<'static, ()> {
    static HELLO: std::sync::Mutex<()> = std::sync::Mutex::new(());
    HELLO.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn fixtures() -> PathBuf {
    repo().join("tests/fixtures")
}

/// Output of one `froyo` run.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `froyo ARGS` in `cwd` without colour.
pub fn froyo(cwd: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run froyo");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `froyo check --json` parsed.
pub fn check_json(cwd: &Path, file: &str) -> (i32, serde_json::Value) {
    let run = froyo(cwd, &["check", "--json", file]);
    let v = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
        panic!(
            "bad JSON from check {file}: {e}\n{}\n{}",
            run.stdout, run.stderr
        )
    });
    (run.code, v)
}

/// [`froyo`] with `stdin` written to the process.
pub fn froyo_stdin(cwd: &Path, args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
