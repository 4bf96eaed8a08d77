//! The onboarding composites (`user.ensure`, `authorized_keys.ensure`, `sudoers.*`,
//! `sshd.*`) called through the library against a scratch system root, so they edit
//! real files without touching this machine's `/etc`. The system tools they call
//! (`useradd`, `visudo`, `sshd`) are small scripts in the scratch root that behave
//! like the real ones for the cases under test and log how they were called.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use froyo_runner::error::OpError;
use froyo_runner::host::Host;
use froyo_runner::ops::{self, Ctx};
use froyo_runner::protocol::{ErrorClass, EventKind};
use serde_json::{Value, json};

use crate::harness::{Runner, Scratch};

/// A scratch system root with `/etc` account files and fake tools.
struct Sysroot {
    dir: Scratch,
    host: Host,
}

impl Sysroot {
    fn new(name: &str) -> Self {
        let dir = Scratch::new(name);
        for sub in ["etc/sudoers.d", "etc/ssh", "usr/sbin", "home/alice"] {
            fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        fs::write(
            dir.join("etc/passwd"),
            format!(
                "root:x:0:0:root:/root:/bin/bash\nalice:x:{0}:{0}::{1}:/bin/sh\n",
                test_uid(),
                dir.p("home/alice")
            ),
        )
        .expect("passwd");
        fs::write(
            dir.join("etc/group"),
            format!(
                "root:x:0:\nalice:x:{}:\nops:x:2000:\nwheel:x:10:alice\n",
                test_uid()
            ),
        )
        .expect("group");
        let host = Host::with_root(&dir.path);
        Self { dir, host }
    }

    fn tool(&self, name: &str, script: &str) {
        let path = self.dir.join(&format!("usr/sbin/{name}"));
        let body = script.replace("ROOT", &self.dir.p(""));
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write tool");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod tool");
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Runs an op. Retries "text file busy": a fake tool written a moment ago can
    /// still be open for writing in a child another test thread is forking.
    fn call(&self, op: &str, args: Value) -> Result<Value, OpError> {
        let cancel = AtomicBool::new(false);
        let events = |_: EventKind, _: String| {};
        let ctx = Ctx {
            id: 1,
            host: &self.host,
            cancel: &cancel,
            events: &events,
        };
        for _ in 0..50 {
            match ops::dispatch(&ctx, op, args.clone()) {
                Err(e) if e.message.contains("Text file busy") => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                other => return other,
            }
        }
        ops::dispatch(&ctx, op, args)
    }

    fn ok(&self, op: &str, args: Value) -> Value {
        self.call(op, args.clone())
            .unwrap_or_else(|e| panic!("{op} {args} failed: {e}"))
    }

    fn err(&self, op: &str, args: Value) -> OpError {
        match self.call(op, args.clone()) {
            Ok(v) => panic!("{op} {args} should fail, got {v}"),
            Err(e) => e,
        }
    }
}

/// The uid the scratch user gets: a foreign one when we are root (so ownership
/// changes are really exercised), else our own.
fn test_uid() -> u32 {
    if is_root() { 4321 } else { own_uid() }
}

/// Our uid, as the owner of a directory we just created (no libc needed).
fn own_uid() -> u32 {
    let probe = Scratch::new("uid");
    fs::metadata(&probe.path).map(|m| m.uid()).unwrap_or(0)
}

fn is_root() -> bool {
    own_uid() == 0
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).map(|m| m.mode() & 0o7777).unwrap_or(0)
}

const USERADD: &str = r#"echo "useradd $*" >> ROOT/log
uid=1500; shell=/bin/sh; home=
while [ $# -gt 1 ]; do
  case "$1" in
    -u) uid=$2; shift 2;; -s) shell=$2; shift 2;; -d) home=$2; shift 2;;
    -g|-G) shift 2;; *) shift;;
  esac
done
[ -n "$home" ] || home=/home/$1
grep -q "^$1:" ROOT/etc/passwd && { echo "useradd: user '$1' already exists" >&2; exit 9; }
echo "$1:x:$uid:$uid::$home:$shell" >> ROOT/etc/passwd"#;

const USERMOD: &str = r#"echo "usermod $*" >> ROOT/log"#;

#[test]
fn user_ensure_creates_once_then_changes_only_what_differs() {
    let root = Sysroot::new("user");
    root.tool("useradd", USERADD);
    root.tool("usermod", USERMOD);
    let r = root.ok(
        "user.ensure",
        json!({"name": "bob", "uid": 1500, "shell": "/bin/sh", "groups": ["ops"]}),
    );
    assert_eq!(r, json!({"changed": true}));
    assert_eq!(root.log(), "useradd -u 1500 -G ops -s /bin/sh -m bob\n");
    let r = root.ok(
        "user.ensure",
        json!({"name": "bob", "uid": 1500, "shell": "/bin/sh"}),
    );
    assert_eq!(
        r,
        json!({"changed": false}),
        "nothing differs: no tool runs"
    );
    assert_eq!(root.log().lines().count(), 1);

    let r = root.ok(
        "user.ensure",
        json!({"name": "alice", "shell": "/bin/bash", "groups": ["ops", "wheel"]}),
    );
    assert_eq!(r, json!({"changed": true}));
    assert_eq!(
        root.log().lines().last(),
        Some("usermod -s /bin/bash -a -G ops alice"),
        "wheel already has alice"
    );

    let r = root.ok(
        "user.ensure",
        json!({"name": "carol", "system": true, "create_home": false}),
    );
    assert_eq!(r, json!({"changed": true}));
    assert_eq!(root.log().lines().last(), Some("useradd -r -M carol"));

    let e = root.err(
        "user.ensure",
        json!({"name": "alice", "groups": ["nogroup"]}),
    );
    assert_eq!(
        (e.class, e.message.as_str()),
        (ErrorClass::Permanent, "unknown group `nogroup`")
    );
    let e = root.err("user.ensure", json!({"name": "-rf"}));
    assert_eq!(e.class, ErrorClass::Permanent);
    let e = root.err("user.ensure", json!({"name": "dave", "home": "/home/x:y"}));
    assert_eq!(e.class, ErrorClass::Permanent);
}

#[test]
fn user_ensure_without_useradd_is_permanent() {
    let root = Sysroot::new("nouseradd");
    let e = root.err("user.ensure", json!({"name": "bob"}));
    assert_eq!(
        (e.class, e.message.as_str()),
        (ErrorClass::Permanent, "`useradd` not found on the target")
    );
}

#[test]
fn authorized_keys_exclusive_and_additive() {
    let root = Sysroot::new("keys");
    let uid = test_uid();
    let ssh = root.dir.join("home/alice/.ssh");
    let file = ssh.join("authorized_keys");
    let k1 = "ssh-ed25519 AAAAC3NzaKEY1 alice@laptop";
    let k2 = "ssh-ed25519 AAAAC3NzaKEY2 alice@desk";
    let r = root.ok(
        "authorized_keys.ensure",
        json!({"user": "alice", "keys": [k1, k2]}),
    );
    assert_eq!(r, json!({"changed": true}));
    assert_eq!(
        fs::read_to_string(&file).ok(),
        Some(format!("{k1}\n{k2}\n"))
    );
    assert_eq!((mode_of(&ssh), mode_of(&file)), (0o700, 0o600));
    let owners = |p: &Path| fs::metadata(p).map(|m| (m.uid(), m.gid())).ok();
    assert_eq!(owners(&ssh), Some((uid, uid)));
    assert_eq!(owners(&file), Some((uid, uid)));
    assert_eq!(
        root.ok(
            "authorized_keys.ensure",
            json!({"user": "alice", "keys": [k1, k2]})
        ),
        json!({"changed": false})
    );

    // Additive: a key already there under another comment counts as present.
    let k3 = "ssh-rsa AAAAB3KEY3 ops";
    let r = root.ok("authorized_keys.ensure", json!({"user": "alice", "keys": ["ssh-ed25519 AAAAC3NzaKEY1 renamed", k3], "exclusive": false}));
    assert_eq!(r, json!({"changed": true}));
    assert_eq!(
        fs::read_to_string(&file).ok(),
        Some(format!("{k1}\n{k2}\n{k3}\n"))
    );

    // Exclusive again: only the listed key stays.
    root.ok(
        "authorized_keys.ensure",
        json!({"user": "alice", "keys": [k3]}),
    );
    assert_eq!(fs::read_to_string(&file).ok(), Some(format!("{k3}\n")));

    let e = root.err(
        "authorized_keys.ensure",
        json!({"user": "nobody-here", "keys": [k1]}),
    );
    assert_eq!(e.message, "unknown user `nobody-here`");
    let e = root.err(
        "authorized_keys.ensure",
        json!({"user": "alice", "keys": ["a\nb"]}),
    );
    assert_eq!(e.class, ErrorClass::Permanent);
}

#[test]
fn authorized_keys_refuses_a_symlinked_ssh_dir() {
    let root = Sysroot::new("keylink");
    let elsewhere = root.dir.join("elsewhere");
    fs::create_dir(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, root.dir.join("home/alice/.ssh")).expect("symlink");
    let e = root.err(
        "authorized_keys.ensure",
        json!({"user": "alice", "keys": ["ssh-ed25519 AAAA x"]}),
    );
    assert!(e.message.contains("is a symlink"), "{e}");
    assert_eq!(fs::read_dir(&elsewhere).map(|d| d.count()).ok(), Some(0));
}

const VISUDO: &str = r#"[ "$1" = "-c" ] && [ "$2" = "-f" ] || { echo "unexpected args: $*" >&2; exit 2; }
if grep -q BROKEN "$3"; then echo "$3:1:1: syntax error" >&2; exit 1; fi
echo "$3: parsed OK""#;

#[test]
fn sudoers_is_installed_only_after_visudo_accepts_it() {
    let root = Sysroot::new("sudoers");
    root.tool("visudo", VISUDO);
    let target = root.dir.join("etc/sudoers.d/froyo");
    let r = root.ok(
        "sudoers.ensure",
        json!({"name": "froyo", "content": "froyo ALL=(ALL) NOPASSWD: ALL"}),
    );
    assert_eq!(r, json!({"changed": true}));
    assert_eq!(
        fs::read_to_string(&target).ok().as_deref(),
        Some("froyo ALL=(ALL) NOPASSWD: ALL\n")
    );
    assert_eq!(mode_of(&target), 0o440);
    if is_root() {
        let r = root.ok(
            "sudoers.ensure",
            json!({"name": "froyo", "content": "froyo ALL=(ALL) NOPASSWD: ALL\n"}),
        );
        assert_eq!(r, json!({"changed": false}));
    }
    let e = root.err(
        "sudoers.ensure",
        json!({"name": "froyo", "content": "BROKEN line"}),
    );
    assert_eq!(e.class, ErrorClass::Permanent);
    assert_eq!(
        e.message,
        "`visudo -cf` rejected sudoers `froyo`: froyo:1:1: syntax error"
    );
    assert_eq!(
        fs::read_to_string(&target).ok().as_deref(),
        Some("froyo ALL=(ALL) NOPASSWD: ALL\n"),
        "old file kept"
    );
    let names: Vec<String> = fs::read_dir(root.dir.join("etc/sudoers.d"))
        .expect("list")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names, ["froyo"], "the rejected temp file is gone");
    let e = root.err("sudoers.ensure", json!({"name": "a.b", "content": "x"}));
    assert_eq!(
        e.class,
        ErrorClass::Permanent,
        "sudo would ignore a name with a dot"
    );

    assert_eq!(
        root.ok("sudoers.remove", json!({"name": "froyo"})),
        json!({"changed": true})
    );
    assert_eq!(
        root.ok("sudoers.remove", json!({"name": "froyo"})),
        json!({"changed": false})
    );
}

#[test]
fn sudoers_without_visudo_is_permanent_and_writes_nothing() {
    let root = Sysroot::new("novisudo");
    let e = root.err("sudoers.ensure", json!({"name": "froyo", "content": "x"}));
    assert_eq!(
        (e.class, e.message.as_str()),
        (
            ErrorClass::Permanent,
            "`visudo` not found on the target; is sudo installed?"
        )
    );
    assert_eq!(
        fs::read_dir(root.dir.join("etc/sudoers.d"))
            .map(|d| d.count())
            .ok(),
        Some(0)
    );
}

const SSHD: &str = r#"[ "$1" = "-t" ] || exit 2
if grep -rqs Bogus ROOT/etc/ssh/sshd_config.d; then
  echo "line 2: Bad configuration option: Bogus" >&2; exit 255
fi"#;

#[test]
fn sshd_harden_validates_and_restores_on_failure() {
    let root = Sysroot::new("sshd");
    root.tool("sshd", SSHD);
    fs::write(
        root.dir.join("etc/ssh/sshd_config"),
        "Include /etc/ssh/sshd_config.d/*.conf\nPort 22\n",
    )
    .expect("main config");
    let conf = root.dir.join("etc/ssh/sshd_config.d/50-froyo.conf");
    let r = root.ok(
        "sshd.harden",
        json!({"settings": {"PasswordAuthentication": false, "MaxAuthTries": 3}}),
    );
    assert_eq!(
        r,
        json!({"changed": true, "previous": null, "included": true})
    );
    let good = fs::read_to_string(&conf).expect("written");
    assert!(
        good.ends_with("MaxAuthTries 3\nPasswordAuthentication no\n"),
        "{good}"
    );
    assert_eq!(mode_of(&conf), 0o644);
    if is_root() {
        let r = root.ok(
            "sshd.harden",
            json!({"settings": {"PasswordAuthentication": "no", "MaxAuthTries": "3"}}),
        );
        assert_eq!(
            r["changed"], false,
            "same settings as strings render the same"
        );
        assert_eq!(r["previous"], good);
    }

    let e = root.err("sshd.harden", json!({"settings": {"Bogus": "yes"}}));
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(
        e.message.contains("`sshd -t` rejected the configuration"),
        "{e}"
    );
    assert!(
        e.message
            .contains("was restored: line 2: Bad configuration option: Bogus"),
        "{e}"
    );
    assert_eq!(
        fs::read_to_string(&conf).ok(),
        Some(good.clone()),
        "previous file restored"
    );

    // A new drop-in that fails is removed again.
    let e = root.err(
        "sshd.harden",
        json!({"name": "60-extra", "settings": {"Bogus": "yes"}}),
    );
    assert!(e.message.contains("was removed"), "{e}");
    assert!(
        !root
            .dir
            .join("etc/ssh/sshd_config.d/60-extra.conf")
            .exists()
    );

    let e = root.err(
        "sshd.harden",
        json!({"settings": {"Banner": "x\nPermitRootLogin yes"}}),
    );
    assert_eq!(e.class, ErrorClass::Permanent);

    assert_eq!(
        root.ok("sshd.unharden", json!({"name": "50-froyo"})),
        json!({"changed": true})
    );
    assert_eq!(
        root.ok("sshd.unharden", json!({"name": "50-froyo"})),
        json!({"changed": false})
    );
}

#[test]
fn sshd_harden_reports_a_missing_include() {
    let root = Sysroot::new("sshdinc");
    root.tool("sshd", SSHD);
    fs::write(root.dir.join("etc/ssh/sshd_config"), "Port 22\n").expect("main config");
    let r = root.ok("sshd.harden", json!({"settings": {"X11Forwarding": false}}));
    assert_eq!(r["included"], false);
    let e =
        Sysroot::new("nosshd").err("sshd.harden", json!({"settings": {"X11Forwarding": false}}));
    assert!(e.message.starts_with("`sshd` not found"), "{e}");
}

#[test]
fn user_ensure_of_an_existing_user_changes_nothing_on_the_real_host() {
    // Read-only on this machine: root exists with uid 0 everywhere.
    let mut runner = Runner::start();
    let r = runner.ok(1, "user.ensure", json!({"name": "root", "uid": 0}));
    assert_eq!(r, json!({"changed": false}));
}
