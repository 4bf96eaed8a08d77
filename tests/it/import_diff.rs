//! Differential test of `froyo import ansible` against Ansible itself: the same play (a
//! real public role, `tests/fixtures/ansible/roles/users`, MIT) applied to this machine
//! by `ansible-playbook -c local`, and, after the machine is put back, by `froyo apply` of
//! its conversion; what each leaves (the account in passwd, group and shadow, the
//! supplementary group, every file of the home with its mode, owner and sha256) must be
//! byte for byte the same. Needs root and Ansible from PyPI (`tests/run.sh` installs it in
//! `$FROYO_ANSIBLE`, default `/var/tmp/froyo-ansible`); a missing Ansible is a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{fixtures, froyo};

const USER: &str = "froyodiff";

/// Removes the test account (and its home) when dropped, whatever happened.
struct Account;

impl Account {
    fn remove() {
        let _ = Command::new("userdel").args(["-r", USER]).output();
        let _ = Command::new("groupdel").arg(USER).output();
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        Account::remove();
    }
}

fn ansible_bin() -> PathBuf {
    let dir = std::env::var_os("FROYO_ANSIBLE")
        .map_or_else(|| PathBuf::from("/var/tmp/froyo-ansible"), PathBuf::from);
    let bin = dir.join("bin");
    assert!(
        bin.join("ansible-playbook").is_file(),
        "Ansible is needed at {} (tests/run.sh installs it: python3 -m venv DIR && DIR/bin/pip install ansible==12.3.0)",
        dir.display()
    );
    bin
}

/// What the account looks like on this machine.
fn snapshot() -> String {
    let script = format!(
        "getent passwd {USER}; getent group {USER}; getent shadow {USER} | cut -d: -f1,2,4-; id {USER}; \
         getent group adm | tr ',' '\\n' | grep -cx {USER}; \
         cd /home/{USER} && find . -printf '%p %M %u %g\\n' | sort && find . -type f | sort | xargs sha256sum"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn play(dir: &Path) {
    let roles = dir.join("roles/users");
    std::fs::create_dir_all(&roles).unwrap();
    let src = fixtures().join("ansible/roles/users");
    for sub in ["tasks", "defaults", "meta"] {
        std::fs::create_dir_all(roles.join(sub)).unwrap();
        std::fs::copy(
            src.join(sub).join("main.yml"),
            roles.join(sub).join("main.yml"),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("play.yml"),
        format!(
            "- hosts: localhost\n  connection: local\n  gather_facts: false\n  vars:\n    users:\n      - username: {USER}\n        uid: 2991\n        groups: [adm]\n        profile: \"export EDITOR=vi\"\n        ssh_key:\n          - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBnQqkCzp2xvY0gX9wBqd9QqL7rX5Qm0Hc7V1sZ0aaaa a@b\"\n          - \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8hX2yKvH3mT0cN1pQ7rS4uV6wZ9aB2cD5eF8gH1bb c@d\"\n  roles:\n    - users\n"
        ),
    )
    .unwrap();
}

#[test]
fn users_role_leaves_what_ansible_leaves() {
    let bin = ansible_bin();
    let dir = tempfile::tempdir().unwrap();
    play(dir.path());
    Account::remove();
    let _account = Account;

    let run = Command::new(bin.join("ansible-playbook"))
        .args(["-i", "localhost,", "-e"])
        .arg(format!(
            "ansible_python_interpreter={}",
            bin.join("python").display()
        ))
        .arg("play.yml")
        .current_dir(dir.path())
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_NOCOLOR", "1")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "ansible-playbook failed:\n{}",
        String::from_utf8_lossy(&run.stdout)
    );
    let by_ansible = snapshot();
    assert!(
        by_ansible.contains(&format!("{USER}:x:2991:2991::/home/{USER}:/bin/bash")),
        "{by_ansible}"
    );
    assert!(
        by_ansible.contains("./.ssh/authorized_keys -rw------- froyodiff froyodiff"),
        "{by_ansible}"
    );
    Account::remove();
    assert!(!snapshot().contains(USER), "the account was not removed");

    let out = dir.path().join("out");
    let imported = froyo(
        dir.path(),
        &["import", "ansible", "play.yml", "--out", "out"],
    );
    assert_eq!(imported.code, 0, "{}{}", imported.stdout, imported.stderr);
    let applied = froyo(&out, &["apply", "play.star", "--yes"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let by_froyo = snapshot();
    assert_eq!(
        by_froyo, by_ansible,
        "froyo's result differs from Ansible's"
    );

    // And the conversion is idempotent: a second apply changes nothing.
    let again = froyo(&out, &["apply", "play.star", "--yes"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(
        again.stdout.contains("0 changed") || again.stderr.contains("0 changed"),
        "{}{}",
        again.stdout,
        again.stderr
    );
    assert_eq!(snapshot(), by_ansible);
}
