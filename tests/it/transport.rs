//! The runner over real transports: local child processes and real OpenSSH servers on
//! loopback, driven through the real `froyo` binary (and the library where a test needs
//! to reach into a session, e.g. to kill the runner mid-command).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use froyo::inventory::Inventory;
use froyo::transport::{CallError, Connector};
use serde_json::{Value, json};

use crate::froyo;
use crate::sshd::{Project, Sshd, keygen, runner_processes_under, whoami};

fn setup(dir: &Path, n: usize, user: &str) -> (Project, Vec<Sshd>) {
    let p = Project::new(&dir.join("project"));
    let servers: Vec<Sshd> = (0..n)
        .map(|i| Sshd::start(&dir.join(format!("sshd{i}")), &p.public_key()))
        .collect();
    let named: Vec<(String, &Sshd)> = servers
        .iter()
        .enumerate()
        .map(|(i, s)| (format!("t{}", i + 1), s))
        .collect();
    let named_ref: Vec<(&str, &Sshd)> = named.iter().map(|(n, s)| (n.as_str(), *s)).collect();
    p.inventory(&named_ref, user);
    (p, servers)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn facts_from_three_sshd_targets() {
    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 3, &whoami());
    p.trust(&servers.iter().collect::<Vec<_>>());
    let run = froyo(&p.root, &["facts", "--on", "name~t*", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let v: Value = serde_json::from_str(&run.stdout).unwrap();
    let hosts: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(hosts, ["t1", "t2", "t3"]);
    for h in ["t1", "t2", "t3"] {
        let basic = &v[h]["os.basic"];
        assert!(!basic["kernel"].as_str().unwrap().is_empty(), "{basic}");
        assert!(!basic["hostname"].as_str().unwrap().is_empty(), "{basic}");
        assert_eq!(basic["arch"], "x86_64");
        assert!(v[h]["hw.cpu"]["count"].as_u64().unwrap() >= 1);
        assert!(
            v[h]["pkg.manifest"]
                .as_object()
                .is_some_and(|m| m.contains_key("openssh-server")),
            "dpkg manifest"
        );
    }
    // The runner deleted its file and exited on every target.
    for s in &servers {
        assert!(
            s.leftovers().is_empty(),
            "left in TMPDIR: {:?}",
            s.leftovers()
        );
        assert!(s.runner_processes().is_empty(), "runner still running");
    }
    // One field, human output.
    let run = froyo(&p.root, &["facts", "--on", "name~t*", "os.basic.arch"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout.matches("os.basic.arch: x86_64").count(),
        3,
        "{}",
        run.stdout
    );
}

#[test]
fn unknown_host_key_is_refused_with_its_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 1, &whoami());
    let run = froyo(&p.root, &["facts", "--on", "t1"]);
    assert_eq!(run.code, 1);
    let fp = String::from_utf8(
        Command::new("ssh-keygen")
            .arg("-lf")
            .arg(servers[0].dir.join("host_ed25519.pub"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        run.stderr.contains("E-TARGET") && run.stderr.contains("unknown host key"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&fp),
        "fingerprint {fp} missing:\n{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains(&format!("ssh-keyscan -p {}", servers[0].port)),
        "{}",
        run.stderr
    );
    assert!(servers[0].leftovers().is_empty());
}

#[test]
fn changed_host_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 1, &whoami());
    let other = dir.path().join("other_host_key");
    keygen(&other);
    let other_pub = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut parts = other_pub.split_whitespace();
    std::fs::write(
        p.root.join(".froyo/known_hosts"),
        format!(
            "[127.0.0.1]:{} {} {}\n",
            servers[0].port,
            parts.next().unwrap(),
            parts.next().unwrap()
        ),
    )
    .unwrap();
    let run = froyo(&p.root, &["facts", "--on", "t1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("E-TARGET") && run.stderr.contains("CHANGED"),
        "{}",
        run.stderr
    );
    assert!(
        servers[0].leftovers().is_empty(),
        "nothing may be uploaded to an impostor"
    );
}

#[test]
fn a_key_the_server_does_not_accept_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 1, &whoami());
    p.trust(&[&servers[0]]);
    std::fs::write(servers[0].dir.join("authorized_keys"), "").unwrap();
    let run = froyo(&p.root, &["facts", "--on", "t1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("E-TARGET") && run.stderr.contains("was refused"),
        "{}",
        run.stderr
    );
    // And a key file that does not exist at all.
    std::fs::remove_file(&p.key).unwrap();
    let run = froyo(&p.root, &["facts", "--on", "t1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("cannot load the SSH key"),
        "{}",
        run.stderr
    );
}

#[test]
fn local_facts_and_no_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_froyo"))
        .args(["facts", "--json"])
        .current_dir(dir.path())
        .env("TMPDIR", &tmp)
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        !v["local"]["os.basic"]["kernel"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "runner file left behind"
    );
    assert!(runner_processes_under(&tmp).is_empty());
}

/// Becoming root through `sudo -n` as an unprivileged SSH user, and the clear error when
/// sudo would want a password. Needs root to create the users (CI runs as root).
#[test]
fn become_uses_sudo_without_a_password() {
    assert_eq!(whoami(), "root", "this test creates system users");
    let ok_user = "froyo-it-sudo";
    let no_user = "froyo-it-nosudo";
    for u in [ok_user, no_user] {
        let _ = Command::new("userdel").args(["-r", u]).output();
        let st = Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", u])
            .status()
            .unwrap();
        assert!(st.success());
        // A new account's password is locked (`!`), and sshd without PAM refuses locked
        // accounts even with a key: `*` means "no password" without locking.
        assert!(
            Command::new("usermod")
                .args(["-p", "*", u])
                .status()
                .unwrap()
                .success()
        );
    }
    let sudoers = format!("/etc/sudoers.d/{ok_user}");
    std::fs::write(&sudoers, format!("{ok_user} ALL=(ALL) NOPASSWD: ALL\n")).unwrap();
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            for u in ["froyo-it-sudo", "froyo-it-nosudo"] {
                let _ = Command::new("userdel").args(["-r", u]).output();
            }
        }
    }
    let _cleanup = Cleanup(sudoers);

    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 1, ok_user);
    // The unprivileged users must be able to reach the key files and TMPDIR.
    for d in [
        dir.path().to_owned(),
        servers[0].dir.clone(),
        servers[0].tmp.clone(),
    ] {
        let _ = Command::new("chmod").arg("755").arg(&d).status();
    }
    let _ = Command::new("chmod")
        .arg("1777")
        .arg(&servers[0].tmp)
        .status();
    p.trust(&[&servers[0]]);
    let inv = Inventory::load(&p.root, &Default::default()).unwrap();
    let target = inv.targets.iter().find(|t| t.name == "t1").unwrap().clone();
    let connector = Connector::at_root(&p.root);
    let rt = runtime();
    rt.block_on(async {
        let id = |s: froyo::transport::Session| async move {
            let r = s
                .call(
                    "exec",
                    json!({"argv": ["id", "-u"]}),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
            s.close().await;
            r["stdout"].as_str().unwrap().trim().to_owned()
        };
        let plain = connector.open(&target, false).await.unwrap();
        assert_ne!(id(plain).await, "0");
        let root = connector.open(&target, true).await.unwrap();
        assert_eq!(id(root).await, "0");
        let mut no = target.clone();
        no.user = Some(no_user.into());
        let err = connector.open(&no, true).await.unwrap_err();
        assert!(err.message.contains("sudo needs a password"), "{err:?}");
    });
    assert!(
        servers[0].leftovers().is_empty(),
        "{:?}",
        servers[0].leftovers()
    );
}

#[test]
fn killing_the_runner_mid_command_is_a_clean_error() {
    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 1, &whoami());
    p.trust(&[&servers[0]]);
    let inv = Inventory::load(&p.root, &Default::default()).unwrap();
    let rt = runtime();
    for name in ["t1", "local"] {
        let target = inv.targets.iter().find(|t| t.name == name).unwrap().clone();
        rt.block_on(async {
            let session = Connector::at_root(&p.root)
                .open(&target, false)
                .await
                .unwrap();
            let pid = session.ready.pid;
            let started = Instant::now();
            let call = session.call(
                "exec",
                json!({"argv": ["sleep", "30"]}),
                Duration::from_secs(60),
            );
            let killer = async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert!(
                    Command::new("kill")
                        .args(["-9", &pid.to_string()])
                        .status()
                        .unwrap()
                        .success()
                );
            };
            let (result, ()) = tokio::join!(call, killer);
            match result {
                Err(CallError::Session(msg)) => assert!(
                    msg.contains("exited") || msg.contains("went away"),
                    "{name}: {msg}"
                ),
                other => panic!("{name}: expected a session error, got {other:?}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: took {:?}",
                started.elapsed()
            );
            // Later calls fail at once too.
            let again = session
                .call(
                    "facts.collect",
                    json!({"facts": ["os.basic"]}),
                    Duration::from_secs(5),
                )
                .await;
            assert!(matches!(again, Err(CallError::Session(_))), "{again:?}");
        });
    }
}

/// `host.facts.*` in a playbook is gathered live (once per host) by `froyo graph`.
#[test]
fn playbooks_read_live_facts() {
    let dir = tempfile::tempdir().unwrap();
    let (p, servers) = setup(dir.path(), 1, &whoami());
    p.trust(&[&servers[0]]);
    std::fs::write(
        p.root.join("site.star"),
        "def main(host):\n    basic = host.facts.os.basic\n    if basic.family == \"debian\" and \"openssh-server\" in host.facts.pkg.manifest:\n        resource(\"linux.file::file\", \"/etc/motd\", content = \"%s on %s\\n\" % (basic.distro, host.facts.os.basic.arch))\n",
    )
    .unwrap();
    for on in ["local", "t1"] {
        let run = froyo(&p.root, &["graph", "site.star", "--on", on]);
        assert_eq!(run.code, 0, "{on}: {}", run.stderr);
        let g: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(g["nodes"][0]["host"], on);
        assert_eq!(
            g["nodes"][0]["config"]["content"], "debian on x86_64\n",
            "{on}"
        );
    }
    // A typo is an error with a suggestion, never None.
    std::fs::write(
        p.root.join("typo.star"),
        "def main(host):\n    print(host.facts.os.basci)\n",
    )
    .unwrap();
    let run = froyo(&p.root, &["graph", "typo.star", "--on", "t1"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("E-FACT-UNKNOWN")
            && run.stderr.contains("did you mean `host.facts.os.basic`"),
        "{}",
        run.stderr
    );
    assert!(servers[0].leftovers().is_empty());
}
