//! The machine the runner acts on: where its system files are and which tools it has.
//!
//! Everything that reads `/etc` or looks up a system tool (`useradd`, `visudo`,
//! `sshd`, `ip`, …) goes through [`Host`], whose root is `/` in the binary. Tests point
//! the root at a scratch directory to exercise the onboarding ops on real files without
//! touching the machine's own `/etc`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::OpError;

/// The `PATH` given to every program the runner starts, and searched for tools.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The target machine, seen from the runner.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/"),
        }
    }
}

impl Host {
    /// A host whose system files and tools live under `root` instead of `/`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Where the system path `abs` (such as `/etc/passwd`) is on this host.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// The first executable `name` in [`DEFAULT_PATH`], as a host path.
    pub fn which(&self, name: &str) -> Option<PathBuf> {
        DEFAULT_PATH
            .split(':')
            .map(|dir| self.path(dir).join(name))
            .find(|p| is_executable(p))
    }

    /// Users and groups from this host's `/etc/passwd` and `/etc/group`.
    ///
    /// Only the files are read: accounts from LDAP or other NSS sources have no names
    /// here, which `file.stat` reports as a null `owner`/`group`.
    pub fn accounts(&self) -> Accounts {
        let read = |p: &str| fs::read_to_string(self.path(p)).unwrap_or_default();
        Accounts::parse(&read("/etc/passwd"), &read("/etc/group"))
    }
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// The parsed account databases.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    pub users: Vec<User>,
    pub groups: Vec<Group>,
}

impl Accounts {
    /// Parses the two files; malformed lines are skipped.
    pub fn parse(passwd: &str, group: &str) -> Self {
        let users = passwd
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() < 7 || f[0].is_empty() {
                    return None;
                }
                Some(User {
                    name: f[0].to_string(),
                    uid: f[2].parse().ok()?,
                    gid: f[3].parse().ok()?,
                    home: f[5].to_string(),
                    shell: f[6].to_string(),
                })
            })
            .collect();
        let groups = group
            .lines()
            .filter_map(|line| {
                let f: Vec<&str> = line.split(':').collect();
                if f.len() < 4 || f[0].is_empty() {
                    return None;
                }
                Some(Group {
                    name: f[0].to_string(),
                    gid: f[2].parse().ok()?,
                    members: f[3]
                        .split(',')
                        .filter(|m| !m.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
            })
            .collect();
        Self { users, groups }
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn user_name(&self, uid: u32) -> Option<&str> {
        self.users
            .iter()
            .find(|u| u.uid == uid)
            .map(|u| u.name.as_str())
    }

    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// A user name or a numeric uid, as `owner` arguments accept.
    pub fn resolve_uid(&self, spec: &str) -> Result<u32, OpError> {
        if let Ok(uid) = spec.parse::<u32>() {
            return Ok(uid);
        }
        self.user(spec)
            .map(|u| u.uid)
            .ok_or_else(|| OpError::permanent(format!("unknown user `{spec}`")))
    }

    /// A group name or a numeric gid, as `group` arguments accept.
    pub fn resolve_gid(&self, spec: &str) -> Result<u32, OpError> {
        if let Ok(gid) = spec.parse::<u32>() {
            return Ok(gid);
        }
        self.group(spec)
            .map(|g| g.gid)
            .ok_or_else(|| OpError::permanent(format!("unknown group `{spec}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group_and_skips_junk() {
        let acc = Accounts::parse(
            "root:x:0:0:root:/root:/bin/bash\nbroken\nbob:x:1000:1000:Bob,,,:/home/bob:/bin/sh\n",
            "root:x:0:\nsudo:x:27:bob,alice\nbad:x:notanumber:\n",
        );
        assert_eq!(acc.users.len(), 2);
        assert_eq!(acc.user("bob").map(|u| u.home.as_str()), Some("/home/bob"));
        assert_eq!(acc.user_name(0), Some("root"));
        assert_eq!(
            acc.group("sudo").map(|g| g.members.clone()),
            Some(vec!["bob".into(), "alice".into()])
        );
        assert_eq!(acc.groups.len(), 2);
        assert_eq!(acc.resolve_uid("bob"), Ok(1000));
        assert_eq!(acc.resolve_uid("4242"), Ok(4242));
        assert!(acc.resolve_gid("nope").is_err());
    }

    #[test]
    fn host_paths_are_rooted() {
        let host = Host::with_root("/tmp/sysroot");
        assert_eq!(
            host.path("/etc/passwd"),
            PathBuf::from("/tmp/sysroot/etc/passwd")
        );
        assert_eq!(
            Host::default().path("/etc/passwd"),
            PathBuf::from("/etc/passwd")
        );
    }
}
