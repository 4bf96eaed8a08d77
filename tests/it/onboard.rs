//! `froyo onboard ssh` and `froyo onboard rollback` against a real sshd on loopback that
//! reads the system's drop-in directory and accepts passwords, for a user the test
//! creates (with passwordless sudo, as a cloud image's first user has). Checked with the
//! OpenSSH client, `visudo`, `id` and the state database.
//!
//! These tests edit `/etc/ssh/sshd_config.d/` and `/etc/sudoers.d/` of the machine (they
//! run as root in CI), one at a time, and remove what they add.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use froyo::state::Store;

use crate::froyo_stdin;
use crate::sshd::Sshd;

/// The tests share the machine's sshd drop-in directory.
static SYSTEM_SSH: Mutex<()> = Mutex::new(());

const DROPIN: &str = "/etc/ssh/sshd_config.d/50-froyo.conf";
const BROKEN: &str = "/etc/ssh/sshd_config.d/00-froyo-test-broken.conf";

/// A login user with a password and passwordless sudo; removed on drop, with whatever
/// onboarding created for `created`.
struct Users {
    admin: String,
    created: String,
    password: String,
}

impl Users {
    fn new(tag: &str) -> Users {
        let id = std::process::id() % 100_000;
        let u = Users {
            admin: format!("fadm{tag}{id}"),
            created: format!("fnew{tag}{id}"),
            password: format!("pw-{tag}-{id}-Quokka"),
        };
        let ok = Command::new("useradd")
            .args(["-m", "-s", "/bin/bash", &u.admin])
            .status()
            .unwrap()
            .success();
        assert!(ok, "useradd {}", u.admin);
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(chpasswd.stdin.take().unwrap(), "{}:{}", u.admin, u.password).unwrap();
        assert!(chpasswd.wait().unwrap().success());
        std::fs::write(
            format!("/etc/sudoers.d/{}", u.admin),
            format!("{} ALL=(ALL) NOPASSWD: ALL\n", u.admin),
        )
        .unwrap();
        u
    }
}

impl Drop for Users {
    fn drop(&mut self) {
        // `<created>x` is the batch test's second user.
        let second = format!("{}x", self.created);
        for user in [&self.admin, &self.created, &second] {
            let _ = Command::new("userdel")
                .args(["-f", "-r", user])
                .stderr(Stdio::null())
                .status();
        }
        let _ = std::fs::remove_file(format!("/etc/sudoers.d/{}", self.admin));
        for user in [&self.created, &second] {
            let _ = std::fs::remove_file(format!("/etc/sudoers.d/froyo-{user}"));
        }
        let _ = std::fs::remove_file(DROPIN);
        let _ = std::fs::remove_file(BROKEN);
    }
}

/// Does the OpenSSH client get in with this password (askpass, no key)?
fn password_login(port: u16, user: &str, password: &str, dir: &Path) -> bool {
    let askpass = dir.join("askpass.sh");
    std::fs::write(
        &askpass,
        format!("#!/bin/sh\nprintf '%s\\n' '{password}'\n"),
    )
    .unwrap();
    Command::new("chmod")
        .arg("700")
        .arg(&askpass)
        .status()
        .unwrap();
    Command::new("ssh")
        .args(["-p", &port.to_string()])
        .args([
            "-o",
            "PreferredAuthentications=password,keyboard-interactive",
        ])
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
        ])
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
        ])
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .arg(format!("{user}@127.0.0.1"))
        .arg("true")
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// Does the OpenSSH client get in with the project key, checking the host key against
/// the project's known_hosts (as froyo recorded it)?
fn key_login(port: u16, user: &str, root: &Path) -> bool {
    Command::new("ssh")
        .args(["-p", &port.to_string(), "-i"])
        .arg(root.join(".froyo/keys/id_ed25519"))
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
        ])
        .arg(format!(
            "UserKnownHostsFile={}",
            root.join(".froyo/known_hosts").display()
        ))
        .args(["-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes"])
        .arg(format!("{user}@127.0.0.1"))
        .arg("true")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn fingerprint(pubkey: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pubkey)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

/// A diagnostic without miette's line wrapping and gutters.
fn flat(s: &str) -> String {
    s.replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn user_exists(user: &str) -> bool {
    Command::new("id")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn setup(dir: &Path) -> (PathBuf, Sshd, String) {
    let root = dir.join("project");
    std::fs::create_dir_all(&root).unwrap();
    let run = crate::froyo(&root, &["init"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let server = Sshd::start_stock(&dir.join("sshd"));
    let reload = format!("kill -HUP \"$(cat {}/sshd.pid)\"", server.dir.display());
    (root, server, reload)
}

#[test]
fn onboard_locks_down_proves_records_and_rolls_back() {
    let _serial = SYSTEM_SSH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let users = Users::new("a");
    let (root, server, reload) = setup(dir.path());
    let port = server.port;
    // The test can fail: the password works before onboarding.
    assert!(password_login(
        port,
        &users.admin,
        &users.password,
        dir.path()
    ));
    assert!(!key_login(port, &users.created, &root));

    let run = froyo_stdin(
        &root,
        &[
            "onboard",
            "ssh",
            "--host",
            &format!("127.0.0.1:{port}"),
            "--user",
            &users.admin,
            "--password-stdin",
            "--create-user",
            &users.created,
            "--sudo",
            "NOPASSWD: ALL",
            "--lock-down",
            "disable_password_auth",
            "--labels",
            "env=test,role=web",
            "--name",
            "onb1",
            "--reload-cmd",
            &reload,
        ],
        &format!("{}\n", users.password),
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let fp = fingerprint(&server.dir.join("host_ed25519.pub"));
    assert!(
        run.stderr.contains(&fp),
        "fingerprint shown: {}",
        run.stderr
    );
    assert!(run.stdout.contains("onboarded onb1"), "{}", run.stdout);
    assert!(!run.stdout.contains(&users.password) && !run.stderr.contains(&users.password));

    // Key login as the new user works (host key as recorded); passwords are refused.
    assert!(key_login(port, &users.created, &root));
    assert!(!password_login(
        port,
        &users.admin,
        &users.password,
        dir.path()
    ));
    // The sudoers rule is valid.
    let sudoers = format!("/etc/sudoers.d/froyo-{}", users.created);
    let ok = Command::new("visudo")
        .args(["-c", "-q", "-f", &sudoers])
        .status()
        .unwrap();
    assert!(ok.success(), "{sudoers} is valid");
    // In the state, with its fingerprint and labels, and selectable like an inventory
    // target.
    let store = froyo::state::SqliteStore::open_project(&root).unwrap();
    let t = store.onboarded().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].fingerprint, fp);
    assert_eq!(t[0].user, users.created);
    assert_eq!(t[0].labels.get("role").map(String::as_str), Some("web"));
    let facts = crate::froyo(&root, &["facts", "--on", "role=web", "os.basic", "--json"]);
    assert_eq!(facts.code, 0, "{}", facts.stderr);
    assert!(facts.stdout.contains("onb1"), "{}", facts.stdout);
    drop(store);

    // Rollback undoes exactly that, over the key login.
    let run = crate::froyo(
        &root,
        &[
            "onboard",
            "rollback",
            "--host",
            "onb1",
            "--reload-cmd",
            &reload,
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(!user_exists(&users.created), "user removed");
    assert!(!Path::new(&sudoers).exists(), "sudoers removed");
    assert!(!Path::new(DROPIN).exists(), "lock-down removed");
    assert!(password_login(
        port,
        &users.admin,
        &users.password,
        dir.path()
    ));
    let store = froyo::state::SqliteStore::open_project(&root).unwrap();
    assert!(store.onboarded().unwrap().is_empty());
    let known = std::fs::read_to_string(root.join(".froyo/known_hosts")).unwrap_or_default();
    assert!(!known.contains(&format!("[127.0.0.1]:{port}")), "{known}");
}

#[test]
fn a_lock_down_sshd_rejects_is_not_applied() {
    let _serial = SYSTEM_SSH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let users = Users::new("b");
    let (root, server, reload) = setup(dir.path());
    let port = server.port;
    // `sshd -t` on the target now fails (the running test sshd read its config before).
    std::fs::write(BROKEN, "ThisIsNotAnSshdKeyword yes\n").unwrap();

    let run = froyo_stdin(
        &root,
        &[
            "onboard",
            "ssh",
            "--host",
            &format!("127.0.0.1:{port}"),
            "--user",
            &users.admin,
            "--password-stdin",
            "--create-user",
            &users.created,
            "--lock-down",
            "disable_password_auth,disable_root_login",
            "--reload-cmd",
            &reload,
        ],
        &format!("{}\n", users.password),
    );
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("E-ONBOARD"), "{}", run.stderr);
    assert!(
        flat(&run.stderr).contains("nothing was locked down"),
        "{}",
        run.stderr
    );
    assert!(!Path::new(DROPIN).exists(), "no drop-in left behind");
    std::fs::remove_file(BROKEN).unwrap();
    // Passwords still work, and nothing was recorded.
    assert!(password_login(
        port,
        &users.admin,
        &users.password,
        dir.path()
    ));
    let store = froyo::state::SqliteStore::open_project(&root).unwrap();
    assert!(store.onboarded().unwrap().is_empty());
}

/// `--from onboarding.toml`: several hosts in parallel (two loopback servers here, each
/// with its own new user, since both are this machine), password from `password_env`.
#[test]
fn batch_onboarding_from_a_file() {
    let _serial = SYSTEM_SSH.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let users = Users::new("c");
    let (root, s1, _) = setup(dir.path());
    let s2 = Sshd::start_stock(&dir.path().join("sshd2"));
    let second = format!("{}x", users.created);
    std::fs::write(
        root.join("onboarding.toml"),
        format!(
            "[defaults]\nuser = \"{admin}\"\npassword_env = \"FROYO_IT_ONBOARD_PW\"\nsudo = \"NOPASSWD: /usr/bin/true\"\nlabels = {{ fleet = \"batch\" }}\n\n\
             [[hosts]]\nname = \"b1\"\nhost = \"127.0.0.1:{p1}\"\ncreate_user = \"{u1}\"\n\n\
             [[hosts]]\nname = \"b2\"\nhost = \"127.0.0.1:{p2}\"\ncreate_user = \"{u2}\"\nlabels = {{ role = \"db\" }}\n",
            admin = users.admin,
            p1 = s1.port,
            p2 = s2.port,
            u1 = users.created,
            u2 = second,
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["onboard", "ssh", "--from", "onboarding.toml"])
        .current_dir(&root)
        .env("NO_COLOR", "1")
        .env("FROYO_IT_ONBOARD_PW", &users.password)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let removed = Command::new("userdel")
        .args(["-f", "-r", &second])
        .stderr(Stdio::null())
        .status();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("onboarded b1") && stdout.contains("onboarded b2"),
        "{stdout}"
    );
    assert!(
        removed.unwrap().success(),
        "the second user had been created"
    );
    let store = froyo::state::SqliteStore::open_project(&root).unwrap();
    let t = store.onboarded().unwrap();
    assert_eq!(
        t.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["b1", "b2"]
    );
    assert_eq!(t[1].labels.get("fleet").map(String::as_str), Some("batch"));
    assert_eq!(t[1].labels.get("role").map(String::as_str), Some("db"));
}
