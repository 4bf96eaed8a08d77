//! What differs between package managers once the state is known: how versions compare
//! and match, the commands that install, upgrade, downgrade and remove, and how their
//! failures are classified (a lock held by another process is worth a retry, an unknown
//! package is not).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use froyo_provider_sdk::ProviderError;
use froyo_provider_sdk::runner::ExecResult;
use froyo_provider_sdk::shell;
use serde::{Deserialize, Serialize};

use crate::config::Manager;
use crate::plan::{Action, Payload};
use crate::version;

/// Seconds apt waits for the dpkg lock before giving up (then the error is transient).
const APT_LOCK_WAIT: &str = "DPkg::Lock::Timeout=60";

/// One program run by `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

impl Manager {
    /// The order of two versions, where the manager's rules are known here.
    pub fn order(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Manager::Apt => Some(version::dpkg(a, b)),
            Manager::Dnf | Manager::Yum | Manager::Zypper => Some(version::rpm(a, b)),
            Manager::Apk => None,
        }
    }

    /// Whether `have` is the version a user asked for as `want`. rpm-based managers and apk
    /// accept a version without its release (`1.24.0` for `1.24.0-1.el9`, `1.24.0-r7`),
    /// as their install commands do.
    pub fn matches(self, have: &str, want: &str) -> bool {
        have == want
            || match self {
                Manager::Apt => version::dpkg(have, want) == Ordering::Equal,
                Manager::Dnf | Manager::Yum | Manager::Zypper => {
                    version::rpm(have, want) == Ordering::Equal
                }
                Manager::Apk => have.strip_prefix(want).is_some_and(|r| r.starts_with("-r")),
            }
    }

    /// Whether the manager's query lists every version it could install (apk's only gives
    /// the newest), so a pinned version missing from it needs an index refresh.
    pub fn lists_versions(self) -> bool {
        self != Manager::Apk
    }

    /// The command that refreshes the package index, as the plan names it.
    pub fn refresh_label(self) -> &'static str {
        match self {
            Manager::Apt => "apt-get update",
            Manager::Dnf => "dnf makecache",
            Manager::Yum => "yum makecache",
            Manager::Zypper => "zypper refresh",
            Manager::Apk => "apk update",
        }
    }

    /// A package with a pinned version in the manager's install syntax.
    pub fn spec(self, name: &str, version: Option<&str>) -> String {
        match (self, version) {
            (_, None) => name.to_owned(),
            (Manager::Dnf | Manager::Yum, Some(v)) => format!("{name}-{v}"),
            (_, Some(v)) => format!("{name}={v}"),
        }
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// The commands that carry out `payload`, in order; each is one transaction of the
/// manager (apt and zypper install, upgrade and downgrade in one).
pub fn commands(payload: &Payload) -> Vec<Command> {
    let m = payload.manager;
    let specs = |actions: &[Action]| -> Vec<String> {
        payload
            .changes
            .iter()
            .filter(|c| actions.contains(&c.action))
            .map(|c| m.spec(&c.name, c.version.as_deref()))
            .collect()
    };
    let removals = specs(&[Action::Remove]);
    let installs = specs(&[Action::Install]);
    let upgrades = specs(&[Action::Upgrade]);
    let downgrades = specs(&[Action::Downgrade, Action::Change]);
    let env: BTreeMap<String, String> = match m {
        Manager::Apt => [("DEBIAN_FRONTEND".to_owned(), "noninteractive".to_owned())].into(),
        _ => BTreeMap::new(),
    };
    let mut out: Vec<Vec<String>> = Vec::new();
    if payload.refresh {
        match m {
            Manager::Apt => out.push(argv(&["apt-get", "-q", "-o", APT_LOCK_WAIT, "update"])),
            Manager::Dnf => out.push(argv(&["dnf", "-q", "-y", "makecache", "--refresh"])),
            Manager::Yum => {
                out.push(argv(&["yum", "-q", "clean", "expire-cache"]));
                out.push(argv(&["yum", "-q", "-y", "makecache"]));
            }
            Manager::Zypper => out.push(argv(&["zypper", "--non-interactive", "refresh"])),
            Manager::Apk => out.push(argv(&["apk", "update"])),
        }
    }
    let all: Vec<String> = [&installs, &upgrades, &downgrades]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    match m {
        Manager::Apt => {
            if !all.is_empty() {
                let mut cmd = argv(&[
                    "apt-get",
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "-o",
                    "Dpkg::Options::=--force-confdef",
                    "-o",
                    "Dpkg::Options::=--force-confold",
                    "-o",
                    APT_LOCK_WAIT,
                ]);
                if !downgrades.is_empty() {
                    cmd.push("--allow-downgrades".into());
                }
                cmd.extend(all);
                out.push(cmd);
            }
            if !removals.is_empty() {
                let mut cmd = argv(&["apt-get", "remove", "-y", "-q", "-o", APT_LOCK_WAIT]);
                cmd.extend(removals);
                out.push(cmd);
            }
        }
        Manager::Dnf | Manager::Yum => {
            let tool = m.as_str();
            // `install` leaves an installed package alone, so upgrades and downgrades are
            // their own transactions.
            for (verb, specs) in [
                ("install", installs),
                ("upgrade", upgrades),
                ("downgrade", downgrades),
                ("remove", removals),
            ] {
                if !specs.is_empty() {
                    let mut cmd = argv(&[tool, "-y", verb]);
                    cmd.extend(specs);
                    out.push(cmd);
                }
            }
        }
        Manager::Zypper => {
            if !all.is_empty() {
                let mut cmd = argv(&[
                    "zypper",
                    "--non-interactive",
                    "install",
                    "--auto-agree-with-licenses",
                ]);
                if !downgrades.is_empty() {
                    cmd.push("--oldpackage".into());
                }
                cmd.extend(all);
                out.push(cmd);
            }
            if !removals.is_empty() {
                let mut cmd = argv(&["zypper", "--non-interactive", "remove"]);
                cmd.extend(removals);
                out.push(cmd);
            }
        }
        Manager::Apk => {
            if !all.is_empty() {
                let mut cmd = argv(&["apk", "add"]);
                if !upgrades.is_empty() || !downgrades.is_empty() {
                    cmd.push("--upgrade".into());
                }
                cmd.extend(all);
                out.push(cmd);
            }
            if !removals.is_empty() {
                let mut cmd = argv(&["apk", "del"]);
                cmd.extend(removals);
                out.push(cmd);
            }
        }
    }
    out.into_iter()
        .map(|argv| Command {
            argv,
            env: env.clone(),
        })
        .collect()
}

/// Phrases in a failed command's output that mean another process holds the package
/// database: a retry later can succeed.
const LOCKED: &[&str] = &[
    "Could not get lock",
    "Unable to acquire the dpkg frontend lock",
    "Unable to lock the administration directory",
    "Unable to lock directory",
    "Another app is currently holding the yum lock",
    "System management is locked",
    "Unable to lock database",
    "database is locked",
];

/// Phrases that mean the manager does not know a package or version.
const NOT_FOUND: &[&str] = &[
    "Unable to locate package",
    "has no installation candidate",
    "was not found",
    "No match for argument",
    "No package ",
    "Unable to find a match",
    "not found in package names",
    "No provider of",
    "no such package",
    "unable to select packages",
];

/// The error for a command that did not exit 0.
pub fn failure(m: Manager, cmd: &Command, result: &ExecResult) -> ProviderError {
    let shown = shell::join(&cmd.argv);
    let text = format!("{}\n{}", result.stderr, result.stdout);
    let status = match (result.rc, result.signal) {
        (Some(rc), _) => format!("exit status {rc}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "failed".to_owned(),
    };
    let lines = |phrases: &[&str]| -> Vec<String> {
        text.lines()
            .filter(|l| phrases.iter().any(|p| l.contains(p)))
            .map(|l| l.trim().to_owned())
            .collect()
    };
    // zypper's exit 7 is its "locked" code.
    let locked = lines(LOCKED);
    if !locked.is_empty() || (m == Manager::Zypper && result.rc == Some(7)) {
        return ProviderError::transient(format!(
            "`{shown}`: the package database is locked by another process: {}",
            if locked.is_empty() {
                shell::tail(&text, 500).to_owned()
            } else {
                locked.join("; ")
            }
        ));
    }
    let missing = lines(NOT_FOUND);
    if !missing.is_empty() || (m == Manager::Zypper && result.rc == Some(104)) {
        return ProviderError::permanent(format!(
            "{} cannot find a package to install: {}",
            m.as_str(),
            if missing.is_empty() {
                shell::tail(&text, 500).to_owned()
            } else {
                missing.join("; ")
            }
        ));
    }
    let out = if result.stderr.trim().is_empty() {
        &result.stdout
    } else {
        &result.stderr
    };
    ProviderError::permanent(format!("`{shown}`: {status}: {}", shell::tail(out, 2000)))
}

#[cfg(test)]
mod tests {
    use froyo_provider_sdk::ErrorClass;

    use super::*;
    use crate::plan::Change;

    fn change(action: Action, name: &str, version: Option<&str>) -> Change {
        Change {
            action,
            name: name.into(),
            version: version.map(Into::into),
            from: None,
            to: None,
        }
    }

    fn payload(manager: Manager, refresh: bool, changes: Vec<Change>) -> Payload {
        Payload {
            manager,
            refresh,
            changes,
        }
    }

    fn lines(p: &Payload) -> Vec<String> {
        commands(p).iter().map(|c| c.argv.join(" ")).collect()
    }

    #[test]
    fn apt_one_transaction_with_refresh_and_pins() {
        let p = payload(
            Manager::Apt,
            true,
            vec![
                change(Action::Install, "nginx", None),
                change(Action::Downgrade, "curl", Some("7.88.1-10")),
            ],
        );
        let cmds = commands(&p);
        assert_eq!(cmds[0].env["DEBIAN_FRONTEND"], "noninteractive");
        assert_eq!(
            lines(&p),
            [
                "apt-get -q -o DPkg::Lock::Timeout=60 update",
                "apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 --allow-downgrades nginx curl=7.88.1-10"
            ]
        );
        let p = payload(
            Manager::Apt,
            false,
            vec![change(Action::Remove, "nginx", None)],
        );
        assert_eq!(
            lines(&p),
            ["apt-get remove -y -q -o DPkg::Lock::Timeout=60 nginx"]
        );
    }

    #[test]
    fn dnf_yum_zypper_apk_commands() {
        let changes = vec![
            change(Action::Install, "nginx", Some("1.20.1")),
            change(Action::Upgrade, "curl", None),
        ];
        assert_eq!(
            lines(&payload(Manager::Dnf, true, changes.clone())),
            [
                "dnf -q -y makecache --refresh",
                "dnf -y install nginx-1.20.1",
                "dnf -y upgrade curl"
            ]
        );
        assert_eq!(
            lines(&payload(
                Manager::Yum,
                false,
                vec![change(Action::Downgrade, "nginx", Some("1:1.20.1-9.el7"))]
            )),
            ["yum -y downgrade nginx-1:1.20.1-9.el7"]
        );
        assert_eq!(
            lines(&payload(Manager::Zypper, false, changes.clone())),
            ["zypper --non-interactive install --auto-agree-with-licenses nginx=1.20.1 curl"]
        );
        assert_eq!(
            lines(&payload(Manager::Apk, true, changes)),
            ["apk update", "apk add --upgrade nginx=1.20.1 curl"]
        );
        assert_eq!(
            lines(&payload(
                Manager::Zypper,
                false,
                vec![
                    change(Action::Remove, "a", None),
                    change(Action::Remove, "b", None)
                ]
            )),
            ["zypper --non-interactive remove a b"]
        );
        assert_eq!(
            lines(&payload(
                Manager::Apk,
                false,
                vec![change(Action::Remove, "a", None)]
            )),
            ["apk del a"]
        );
    }

    fn failed(rc: i32, stderr: &str) -> ExecResult {
        ExecResult {
            rc: Some(rc),
            signal: None,
            stdout: "Reading package lists...\n".into(),
            stderr: stderr.into(),
            truncated: false,
            duration_ms: 5,
        }
    }

    #[test]
    fn locks_are_transient_and_unknown_packages_permanent() {
        let cmd = Command {
            argv: argv(&["apt-get", "install", "nginx"]),
            env: BTreeMap::new(),
        };
        let e = failure(
            Manager::Apt,
            &cmd,
            &failed(
                100,
                "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (apt-get)\nE: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n",
            ),
        );
        assert_eq!(e.class, ErrorClass::Transient, "{e}");
        assert!(e.message.contains("held by process 4242"), "{e}");
        let e = failure(
            Manager::Apt,
            &cmd,
            &failed(100, "E: Unable to locate package froyo-nope\n"),
        );
        assert_eq!(e.class, ErrorClass::Permanent);
        assert_eq!(
            e.message,
            "apt cannot find a package to install: E: Unable to locate package froyo-nope"
        );
        let e = failure(
            Manager::Dnf,
            &cmd,
            &failed(
                1,
                "No match for argument: froyo-nope\nError: Unable to find a match: froyo-nope\n",
            ),
        );
        assert!(e.message.starts_with("dnf cannot find"), "{e}");
        let e = failure(
            Manager::Zypper,
            &cmd,
            &failed(
                7,
                "System management is locked by the application with pid 812 (zypper).\nClose this application before trying again.\n",
            ),
        );
        assert_eq!(e.class, ErrorClass::Transient);
        let e = failure(
            Manager::Zypper,
            &cmd,
            &failed(
                104,
                "'froyo-nope' not found in package names. Trying capabilities.\nNo provider of 'froyo-nope' found.\n",
            ),
        );
        assert_eq!(e.class, ErrorClass::Permanent);
        assert!(e.message.contains("No provider of 'froyo-nope'"), "{e}");
        let e = failure(
            Manager::Apk,
            &cmd,
            &failed(
                99,
                "ERROR: Unable to lock database: temporary error (try again later)\nERROR: Failed to open apk database: temporary error (try again later)\n",
            ),
        );
        assert_eq!(e.class, ErrorClass::Transient);
        let e = failure(
            Manager::Apk,
            &cmd,
            &failed(
                1,
                "ERROR: unable to select packages:\n  froyo-nope (no such package):\n    required by: world[froyo-nope]\n",
            ),
        );
        assert!(e.message.contains("froyo-nope (no such package)"), "{e}");
        let e = failure(
            Manager::Apt,
            &cmd,
            &failed(
                100,
                "E: Sub-process /usr/bin/dpkg returned an error code (1)\n",
            ),
        );
        assert_eq!(
            e.message,
            "`apt-get install nginx`: exit status 100: E: Sub-process /usr/bin/dpkg returned an error code (1)"
        );
    }

    #[test]
    fn version_matching() {
        assert!(Manager::Apt.matches("1:2.0-1", "1:2.0-1"));
        assert!(!Manager::Apt.matches("2.0-1", "2.0"));
        assert!(Manager::Dnf.matches("1.24.0-1.el9", "1.24.0"));
        assert!(!Manager::Dnf.matches("1.24.0-1.el9", "1.24"));
        assert!(Manager::Apk.matches("1.24.0-r7", "1.24.0"));
        assert!(!Manager::Apk.matches("1.24.0-r7", "1.24"));
        assert_eq!(Manager::Apt.order("1.0", "2.0"), Some(Ordering::Less));
        assert_eq!(Manager::Apk.order("1.0", "2.0"), None);
    }
}
