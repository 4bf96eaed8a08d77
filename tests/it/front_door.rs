//! The front door a newcomer meets: the README's two commands, `cargo run` picking `froyo`,
//! and the build's check of the extra rustup targets (`.cargo/check-targets`), which must
//! stop a build in its first seconds, before any dependency compiles. `.ci/front-door` runs
//! the README's main job itself, verbatim, in a fresh clone.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::repo;

/// The first line of the ```` ```sh ```` block after `<!-- NAME… -->` in README.md (the
/// same rule as `.ci/front-door`).
fn readme_command(name: &str) -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let marker = format!("<!-- {name}");
    let mut lines = readme.lines().skip_while(|l| !l.starts_with(&marker));
    assert!(lines.next().is_some(), "README.md has no `{marker}` marker");
    let mut lines = lines.skip_while(|l| !l.starts_with("```"));
    lines.next();
    lines.next().expect("a command after the marker").to_owned()
}

#[test]
fn ci_runs_exactly_the_readme_test_command() {
    let test_command = readme_command("test-command");
    let ci = std::fs::read_to_string(repo().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l == test_command),
        "`.ci/run` must call the README's test command `{test_command}` verbatim:\n{ci}"
    );
    assert!(
        ci.lines().any(|l| l == ".ci/front-door"),
        "`.ci/run` must check the front door"
    );
    let main = readme_command("main-job");
    assert!(main.starts_with("cargo run "), "{main}");
}

/// `cargo run` in the workspace root means the `froyo` binary (it used to stop with "could
/// not determine which binary to run").
#[test]
fn cargo_run_picks_froyo() {
    let out = Command::new(cargo())
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defaults = meta["workspace_default_members"].as_array().unwrap();
    assert_eq!(defaults.len(), 1, "{defaults:?}");
    let froyo = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == defaults[0])
        .unwrap();
    assert_eq!(froyo["name"], "froyo");
    assert_eq!(froyo["default_run"], "froyo");
}

/// The real cargo of the toolchain (not rustup's proxy), so a test can run it without
/// rustup on PATH.
fn cargo() -> PathBuf {
    let out = Command::new("rustup")
        .args(["which", "cargo"])
        .current_dir(repo())
        .output()
        .expect("rustup");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn real_rustc() -> String {
    let out = Command::new("rustup")
        .args(["which", "rustc"])
        .current_dir(repo())
        .output()
        .expect("rustup");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A `rustc` that is the real one but reports `sysroot` as its sysroot: a toolchain without
/// the extra targets, without uninstalling anything from the machine's toolchain.
fn rustc_with_sysroot(dir: &Path, sysroot: &Path) -> PathBuf {
    let path = dir.join("rustc");
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --print ] && [ \"$2\" = sysroot ]; then echo {}; exit 0; fi\nexec {} \"$@\"\n",
            sysroot.display(),
            real_rustc()
        ),
    )
    .unwrap();
    make_executable(&path);
    path
}

fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_missing_target_stops_the_build_before_anything_compiles() {
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path().join("sysroot");
    std::fs::create_dir(&sysroot).unwrap();
    let rustc = rustc_with_sysroot(dir.path(), &sysroot);
    let target_dir = dir.path().join("target");
    let out = Command::new(cargo())
        .args(["build", "--offline", "-p", "froyo", "--target-dir"])
        .arg(&target_dir)
        .current_dir(repo())
        .env("RUSTC", &rustc)
        // No rustup: the check cannot add the targets itself.
        .env("PATH", "/usr/bin:/bin")
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTUP_HOME")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("rustup target add wasm32-wasip2 x86_64-unknown-linux-musl"),
        "{stderr}"
    );
    // Nothing was compiled: the check ran on cargo's first call to rustc.
    let deps = target_dir.join("debug/deps");
    let compiled = std::fs::read_dir(&deps).map(|d| d.count()).unwrap_or(0);
    assert_eq!(compiled, 0, "{} has {compiled} entries", deps.display());
}

/// With rustup on PATH the check adds exactly the missing targets to the pinned toolchain
/// and says so. rustup here is a recording stand-in: the real one would download into the
/// machine's toolchain, which other builds are using.
#[test]
fn missing_targets_are_added_with_rustup_when_it_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let sysroot = dir.path().join("sysroot");
    let musl = sysroot.join("lib/rustlib/x86_64-unknown-linux-musl/lib");
    std::fs::create_dir_all(&musl).unwrap();
    std::fs::write(musl.join("libstd-0123.rlib"), "").unwrap();
    let rustc = rustc_with_sysroot(dir.path(), &sysroot);
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("rustup.log");
    std::fs::write(
        bin.join("rustup"),
        format!(
            "#!/bin/sh\necho \"$@\" >> {log}\n[ \"$1\" = target ] || exit 0\nshift 2\n[ \"$1\" = --toolchain ] && shift 2\nfor t in \"$@\"; do mkdir -p {s}/lib/rustlib/$t/lib && touch {s}/lib/rustlib/$t/lib/libstd-x.rlib; done\n",
            log = log.display(),
            s = sysroot.display()
        ),
    )
    .unwrap();
    make_executable(&bin.join("rustup"));
    let out = Command::new("bash")
        .arg(repo().join(".cargo/check-targets"))
        .arg("--ensure")
        .arg(&rustc)
        .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
        .env_remove("RUSTUP_TOOLCHAIN")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("adding the missing Rust target(s) wasm32-wasip2 with rustup"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "target add --toolchain 1.95.0 wasm32-wasip2\n"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "added: wasm32-wasip2\n"
    );
}
