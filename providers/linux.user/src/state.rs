//! The account databases as text (`/etc/passwd`, `/etc/group`, `/etc/shadow`) and the
//! actual states `read` reports and `diff` reads back:
//!
//! - user: `null` when absent, else `{"uid", "gid", "group", "groups", "home", "shell"}`
//!   (`group`: the primary group's name, `null` when no group has that gid; `groups`: the
//!   supplementary groups listing the user, sorted), plus `"password_matches": bool` only
//!   when the config manages `password_hash` (the hash itself never leaves the target);
//! - group: `null` when absent, else `{"gid", "members"}`;
//! - authorized_keys: `{"home", "group", "dir", "file", "content"}`: `home` and `group`
//!   (the user's home and primary group name) are `null` when the user does not exist
//!   (yet); `dir` and `file` describe `~/.ssh` and `~/.ssh/authorized_keys`
//!   (`{"kind", "mode", "owner", "sha256"}`, `null` when missing); `content` is the
//!   file's text.

use froyo_provider_sdk::runner::{FileKind, StatEntry};
use froyo_provider_sdk::{ProviderError, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// One line of `/etc/group`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

/// Lines that are not entries: blank, comments, NIS `+`/`-` lines.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect())
}

fn id(field: &str, line: &[&str], file: &str) -> Result<u32> {
    field.parse().map_err(|_| {
        ProviderError::permanent(format!("{file}: bad id `{field}` in `{}`", line.join(":")))
    })
}

pub fn parse_passwd(text: &str) -> Result<Vec<PasswdEntry>> {
    entries(text)
        .map(|f| {
            if f.len() < 7 {
                return Err(ProviderError::permanent(format!(
                    "/etc/passwd: malformed line `{}`",
                    f.join(":")
                )));
            }
            Ok(PasswdEntry {
                name: f[0].to_owned(),
                uid: id(f[2], &f, "/etc/passwd")?,
                gid: id(f[3], &f, "/etc/passwd")?,
                home: f[5].to_owned(),
                shell: f[6].to_owned(),
            })
        })
        .collect()
}

pub fn parse_group(text: &str) -> Result<Vec<GroupEntry>> {
    entries(text)
        .map(|f| {
            if f.len() < 4 {
                return Err(ProviderError::permanent(format!(
                    "/etc/group: malformed line `{}`",
                    f.join(":")
                )));
            }
            Ok(GroupEntry {
                name: f[0].to_owned(),
                gid: id(f[2], &f, "/etc/group")?,
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect(),
            })
        })
        .collect()
}

/// The password hash of `user` in `/etc/shadow`'s text.
pub fn shadow_hash<'a>(text: &'a str, user: &str) -> Option<&'a str> {
    entries(text)
        .find(|f| f.len() >= 2 && f[0] == user)
        .map(|f| f[1])
}

/// The account databases of one target, parsed.
#[derive(Debug, Clone, Default)]
pub struct Db {
    pub users: Vec<PasswdEntry>,
    pub groups: Vec<GroupEntry>,
}

impl Db {
    pub fn parse(passwd: &str, group: &str) -> Result<Db> {
        Ok(Db {
            users: parse_passwd(passwd)?,
            groups: parse_group(group)?,
        })
    }

    pub fn user(&self, name: &str) -> Option<&PasswdEntry> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn group(&self, name: &str) -> Option<&GroupEntry> {
        self.groups.iter().find(|g| g.name == name)
    }

    pub fn group_name(&self, gid: u32) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.gid == gid)
            .map(|g| g.name.as_str())
    }

    /// The state of a user (`None`: no such user).
    pub fn user_state(&self, name: &str) -> Option<UserState> {
        let u = self.user(name)?;
        let mut groups: Vec<String> = self
            .groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == name))
            .map(|g| g.name.clone())
            .collect();
        groups.sort();
        groups.dedup();
        Some(UserState {
            uid: u.uid,
            gid: u.gid,
            group: self.group_name(u.gid).map(str::to_owned),
            groups,
            home: u.home.clone(),
            shell: u.shell.clone(),
            password_matches: None,
        })
    }

    pub fn group_state(&self, name: &str) -> Option<GroupState> {
        self.group(name).map(|g| GroupState {
            gid: g.gid,
            members: g.members.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    pub uid: u32,
    pub gid: u32,
    pub group: Option<String>,
    pub groups: Vec<String>,
    pub home: String,
    pub shell: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_matches: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysState {
    pub home: Option<String>,
    pub group: Option<String>,
    pub dir: Option<Meta>,
    pub file: Option<Meta>,
    pub content: Option<String>,
}

/// What `file.stat` said of a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub kind: FileKind,
    pub mode: Option<String>,
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

impl Meta {
    pub fn from_stat(entry: &StatEntry) -> Result<Option<Meta>> {
        if let Some(error) = &entry.error {
            return Err(ProviderError::permanent(format!(
                "cannot stat {}: {error}",
                entry.path
            )));
        }
        Ok(entry.exists.then(|| Meta {
            kind: entry.kind.unwrap_or(FileKind::Other),
            mode: entry.mode.clone(),
            owner: entry
                .owner
                .clone()
                .or_else(|| entry.uid.map(|u| u.to_string())),
            sha256: entry.sha256.clone(),
        }))
    }
}

/// `~/.ssh` and `~/.ssh/authorized_keys` of a home directory.
pub fn ssh_paths(home: &str) -> (String, String) {
    let dir = format!("{}/.ssh", home.trim_end_matches('/'));
    let file = format!("{dir}/authorized_keys");
    (dir, file)
}

pub fn parse_state<T: DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json)
        .map_err(|e| ProviderError::permanent(format!("malformed actual state: {e}")))
}

pub fn to_json<T: Serialize>(state: &T) -> String {
    // Plain fields: serializing cannot fail.
    serde_json::to_string(state).unwrap_or_else(|_| "null".to_owned())
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
# a comment
deploy:x:1001:1001:Deploy,,,:/home/deploy:/bin/bash
app:x:998:998::/srv/app:/usr/sbin/nologin
+@nis
";

    pub const GROUP: &str = "\
root:x:0:
daemon:x:1:
sudo:x:27:deploy
docker:x:999:app,deploy
deploy:x:1001:
app:x:998:
";

    #[test]
    fn parses_recorded_databases() {
        let db = Db::parse(PASSWD, GROUP).unwrap();
        assert_eq!(db.users.len(), 4);
        assert_eq!(
            db.user("app").unwrap(),
            &PasswdEntry {
                name: "app".into(),
                uid: 998,
                gid: 998,
                home: "/srv/app".into(),
                shell: "/usr/sbin/nologin".into()
            }
        );
        assert_eq!(db.group("docker").unwrap().members, ["app", "deploy"]);
        let deploy = db.user_state("deploy").unwrap();
        assert_eq!(deploy.group.as_deref(), Some("deploy"));
        assert_eq!(deploy.groups, ["docker", "sudo"]);
        assert!(db.user_state("nobody").is_none());
        assert_eq!(db.group_state("sudo").unwrap().gid, 27);
    }

    #[test]
    fn malformed_lines_are_errors() {
        assert!(parse_passwd("x:1:2\n").is_err());
        assert!(parse_group("g:x:notanumber:\n").is_err());
    }

    #[test]
    fn finds_shadow_hashes() {
        let shadow = "root:*:19000:0:99999:7:::\ndeploy:$6$s$h:19000:0:99999:7:::\n";
        assert_eq!(shadow_hash(shadow, "deploy"), Some("$6$s$h"));
        assert_eq!(shadow_hash(shadow, "app"), None);
    }
}
