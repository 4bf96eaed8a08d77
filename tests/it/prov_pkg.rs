//! `linux.pkg` through the real wasmtime host and the local runner against the real
//! apt/dpkg of this machine: two tiny packages built with `dpkg-deb`, served from a
//! `file:` repository the test creates, refreshed without touching the Debian mirrors.
//!
//! Everything that touches apt/dpkg is in ONE test, so two tests never fight over the
//! dpkg lock. It runs as root (like the `linux.user` test) and cleans up after itself,
//! also when it fails, and before it starts (a previous run may have been killed).

use std::path::{Path, PathBuf};
use std::process::Command;

use froyo::provider_host::{ErrorClass, Limits, Operation, ProviderHost};
use serde_json::{Value, json};

use crate::providers::{converge, local_session, validated};

const P: &str = "linux.pkg";
const TY: &str = "linux.pkg::package";
const HELLO: &str = "froyo-it-hello";
const EXTRA: &str = "froyo-it-extra";
const NOPE: &str = "froyo-it-no-such-package";
const REPO: &str = "/var/tmp/froyo-it-pkg-repo";
const LIST: &str = "/etc/apt/sources.list.d/froyo-it-pkg.list";

/// Held by every test that runs apt or dpkg (`cue.rs` has the quick start's), so two of
/// them never fight over the dpkg lock.
pub static DPKG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn sh(argv: &[&str], cwd: &Path) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Purges the test packages and removes the repository, its list and apt's copy of its
/// index. Errors are ignored: any of it may already be gone.
fn cleanup() {
    let _ = Command::new("dpkg")
        .args(["--purge", HELLO, EXTRA])
        .output();
    let _ = std::fs::remove_file(LIST);
    let _ = std::fs::remove_dir_all(REPO);
    // apt names its copies after the URI: `_var_tmp_froyo-it-pkg-repo_._Packages` etc.
    if let Ok(entries) = std::fs::read_dir("/var/lib/apt/lists") {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .contains("froyo-it-pkg-repo")
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

struct Guard;

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup();
    }
}

/// Builds `NAME_VERSION_all.deb` in the repository; it ships
/// `/usr/share/NAME/VERSION` holding the version.
fn build_deb(name: &str, version: &str) {
    let tree = tempfile::tempdir().unwrap();
    let root = tree.path();
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: froyo tests <it@froyo.invalid>\n\
             Section: misc\nPriority: optional\nDescription: froyo integration test package\n"
        ),
    )
    .unwrap();
    let share = root.join("usr/share").join(name);
    std::fs::create_dir_all(&share).unwrap();
    std::fs::write(share.join("VERSION"), format!("{version}\n")).unwrap();
    let deb = format!("{REPO}/{name}_{version}_all.deb");
    sh(
        &[
            "dpkg-deb",
            "--root-owner-group",
            "--build",
            &root.display().to_string(),
            &deb,
        ],
        Path::new("/"),
    );
}

/// Writes the repository's index and refreshes apt's copy of it, and of nothing else.
fn publish() {
    let packages = sh(
        &["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
        Path::new(REPO),
    );
    std::fs::write(Path::new(REPO).join("Packages"), packages).unwrap();
    std::fs::write(LIST, format!("deb [trusted=yes] file:{REPO} ./\n")).unwrap();
    sh(
        &[
            "apt-get",
            "update",
            "-q",
            "-o",
            &format!("Dir::Etc::sourcelist={LIST}"),
            "-o",
            "Dir::Etc::sourceparts=-",
            "-o",
            "APT::Get::List-Cleanup=0",
        ],
        Path::new("/"),
    );
}

/// The installed version of `name`, from dpkg itself.
fn installed(name: &str) -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f=${db:Status-Abbrev} ${Version}", name])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The abbreviation is three characters wide ("ii "), then the separator.
    text.strip_prefix("ii  ").map(str::to_owned)
}

fn shipped(name: &str) -> Option<String> {
    std::fs::read_to_string(PathBuf::from("/usr/share").join(name).join("VERSION"))
        .ok()
        .map(|s| s.trim().to_owned())
}

fn pkg(id: &str, config: Value) -> froyo::provider_host::Resource {
    validated(TY, id, config)
}

#[test]
fn linux_pkg_installs_upgrades_pins_and_removes_with_real_apt() {
    let _dpkg = DPKG.lock().unwrap_or_else(|e| e.into_inner());
    cleanup();
    let _guard = Guard;
    std::fs::create_dir_all(REPO).unwrap();
    build_deb(HELLO, "1.0");
    publish();

    let (rt, session) = local_session();
    let mut host = ProviderHost::builtin(Limits::default(), None).unwrap();
    host.runtime = Some(rt.handle().clone());
    let run =
        |resources: &[froyo::provider_host::Resource]| converge(&host, P, &session, resources);

    // present: installs the only version there is, then nothing to do.
    let hello = [pkg("hello", json!({"name": HELLO}))];
    assert_eq!(run(&hello), ["create hello: install froyo-it-hello 1.0"]);
    assert_eq!(installed(HELLO).as_deref(), Some("1.0"));
    assert_eq!(shipped(HELLO).as_deref(), Some("1.0"));
    assert!(run(&hello).is_empty());

    // 2.0 is published: `present` accepts any installed version.
    build_deb(HELLO, "2.0");
    build_deb(EXTRA, "1.0");
    publish();
    assert!(run(&hello).is_empty());

    // A pinned version, up and down (both versions stay in the repository).
    let pinned = |v: &str| [pkg("hello", json!({"name": HELLO, "version": v}))];
    assert_eq!(
        run(&pinned("2.0")),
        ["update hello: upgrade froyo-it-hello 1.0 → 2.0"]
    );
    assert_eq!(shipped(HELLO).as_deref(), Some("2.0"));
    assert!(run(&pinned("2.0")).is_empty());
    assert_eq!(
        run(&pinned("1.0")),
        ["update hello: downgrade froyo-it-hello 2.0 → 1.0"]
    );
    assert_eq!(installed(HELLO).as_deref(), Some("1.0"));

    // latest upgrades to the candidate, then is satisfied.
    let latest = [pkg("hello", json!({"name": HELLO, "state": "latest"}))];
    assert_eq!(
        run(&latest),
        ["update hello: upgrade froyo-it-hello 1.0 → 2.0"]
    );
    assert_eq!(shipped(HELLO).as_deref(), Some("2.0"));
    assert!(run(&latest).is_empty());

    // names: one transaction for what is missing; the installed one is left alone.
    let both = [pkg(
        "both",
        json!({"name": "both", "names": [HELLO, EXTRA]}),
    )];
    assert_eq!(run(&both), ["create both: install froyo-it-extra 1.0"]);
    assert_eq!(installed(EXTRA).as_deref(), Some("1.0"));
    assert_eq!(installed(HELLO).as_deref(), Some("2.0"));

    // absent removes, then nothing to do.
    let absent = [pkg("hello", json!({"name": HELLO, "state": "absent"}))];
    assert_eq!(run(&absent), ["delete hello: remove froyo-it-hello"]);
    assert_eq!(installed(HELLO), None);
    assert_eq!(shipped(HELLO), None);
    assert!(run(&absent).is_empty());

    // destroy removes what is left of a resource, and then has nothing to do.
    let out = host.destroy(P, Some(session.clone()), &both[0]).unwrap();
    assert!(out.changed, "{}", out.output);
    assert_eq!(installed(EXTRA), None);
    let out = host.destroy(P, Some(session.clone()), &both[0]).unwrap();
    assert!(!out.changed, "{}", out.output);

    // A package apt does not know. With update_cache false it is refused at plan time,
    // naming it (left out, apply would run `apt-get update` against the real mirrors,
    // which this test must not depend on).
    let nope = [pkg("nope", json!({"name": NOPE, "update_cache": false}))];
    let actual = host.read(P, Some(session.clone()), &nope).unwrap();
    let state: Value = serde_json::from_str(&actual[0].state).unwrap();
    assert_eq!(
        state,
        json!({"manager": "apt", "packages": [{"name": NOPE, "installed": null, "candidate": null}]})
    );
    let err = host.diff(P, &nope[0], &actual[0]).unwrap_err();
    assert_eq!(err.class, Some(ErrorClass::Permanent), "{err}");
    assert_eq!(
        err.message,
        format!(
            "nope: apt knows no installable version of {NOPE} (update_cache is false, so the package index was not refreshed)"
        )
    );
    // The same name reaching apt-get (an op planned before the package vanished from
    // the index) fails with apt's own words, as a permanent error.
    let op = Operation {
        id: "nope".into(),
        type_name: TY.into(),
        kind: "create".into(),
        summary: format!("install {NOPE}"),
        diff: None,
        payload: json!({"manager": "apt", "refresh": false, "changes": [{"action": "install", "name": NOPE}]})
            .to_string(),
    };
    let err = host.apply(P, Some(session.clone()), &op).unwrap_err();
    assert_eq!(err.class, Some(ErrorClass::Permanent), "{err}");
    assert_eq!(
        err.message,
        format!("nope: apt cannot find a package to install: E: Unable to locate package {NOPE}")
    );
}
