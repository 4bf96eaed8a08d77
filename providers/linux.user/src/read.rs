//! `read`: ONE `file.read` each of `/etc/passwd` and `/etc/group` for the whole batch,
//! `/etc/shadow` once only when a present user's `password_hash` is managed, and for
//! authorized keys ONE `file.stat` of every `~/.ssh` and `~/.ssh/authorized_keys` of the
//! batch plus a `file.read` of each existing key file.

use froyo_provider_sdk::runner::{self, FileKind, ReadResult, StatEntry};
use froyo_provider_sdk::{Actual, ProviderError, Resource, Result};

use crate::config::{Config, Presence};
use crate::state::{Db, KeysState, Meta, shadow_hash, ssh_paths, to_json};

/// The runner ops `read` uses, so its choices can be tested with a fake runner.
pub trait Ops {
    fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>>;
    fn read(&mut self, path: &str) -> Result<ReadResult>;
}

pub struct Live;

impl Ops for Live {
    fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>> {
        runner::stat(paths)
    }

    fn read(&mut self, path: &str) -> Result<ReadResult> {
        runner::read(path)
    }
}

pub fn read(resources: Vec<Resource>) -> Result<Vec<Actual>> {
    read_with(&mut Live, resources)
}

/// The text of a file read with `file.read`.
pub fn text(ops: &mut impl Ops, path: &str) -> Result<String> {
    ops.read(path)?
        .content
        .ok_or_else(|| ProviderError::permanent(format!("{path} is not UTF-8 text")))
}

/// `/etc/passwd` and `/etc/group`, parsed.
pub fn database(ops: &mut impl Ops) -> Result<Db> {
    let passwd = text(ops, "/etc/passwd")?;
    let group = text(ops, "/etc/group")?;
    Db::parse(&passwd, &group)
}

pub fn read_with(ops: &mut impl Ops, resources: Vec<Resource>) -> Result<Vec<Actual>> {
    let configs = resources
        .iter()
        .map(|r| Config::parse(r).map_err(|e| e.context(&r.id)))
        .collect::<Result<Vec<Config>>>()?;
    if configs.is_empty() {
        return Ok(Vec::new());
    }
    let db = database(ops)?;

    let wants_shadow = configs.iter().any(|c| {
        matches!(c, Config::User(u) if u.state == Presence::Present
            && u.password_hash.is_some() && db.user(&u.name).is_some())
    });
    let shadow = if wants_shadow {
        Some(text(ops, "/etc/shadow")?)
    } else {
        None
    };

    // Authorized keys: one stat for the .ssh dirs and files of all users that exist.
    let mut paths = Vec::new();
    for c in &configs {
        if let Config::Keys(k) = c
            && let Some(u) = db.user(&k.user)
        {
            let (dir, file) = ssh_paths(&u.home);
            paths.push(dir);
            paths.push(file);
        }
    }
    let stats = if paths.is_empty() {
        Vec::new()
    } else {
        ops.stat(&paths)?
    };
    let meta = |path: &str| -> Result<Option<Meta>> {
        match stats.iter().find(|e| e.path == path) {
            Some(entry) => Meta::from_stat(entry),
            None => Err(ProviderError::permanent(format!(
                "file.stat said nothing of {path}"
            ))),
        }
    };

    let mut actuals = Vec::with_capacity(configs.len());
    for (resource, config) in resources.iter().zip(&configs) {
        let state = match config {
            Config::User(u) => {
                let mut state = db.user_state(&u.name);
                if let (Some(s), Some(want), Some(shadow)) =
                    (state.as_mut(), &u.password_hash, &shadow)
                {
                    s.password_matches = Some(shadow_hash(shadow, &u.name) == Some(want.as_str()));
                }
                to_json(&state)
            }
            Config::Group(g) => to_json(&db.group_state(&g.name)),
            Config::Keys(k) => {
                let state = match db.user(&k.user) {
                    None => KeysState::default(),
                    Some(u) => {
                        let (dir, file) = ssh_paths(&u.home);
                        let file_meta = meta(&file).map_err(|e| e.context(&resource.id))?;
                        let content = match &file_meta {
                            Some(m) if m.kind == FileKind::File => {
                                Some(text(ops, &file).map_err(|e| e.context(&resource.id))?)
                            }
                            _ => None,
                        };
                        KeysState {
                            home: Some(u.home.clone()),
                            group: db.group_name(u.gid).map(str::to_owned),
                            dir: meta(&dir).map_err(|e| e.context(&resource.id))?,
                            file: file_meta,
                            content,
                        }
                    }
                };
                to_json(&state)
            }
        };
        actuals.push(Actual {
            id: resource.id.clone(),
            state,
        });
    }
    Ok(actuals)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{AUTHORIZED_KEYS, GROUP, USER};
    use crate::state::tests::{GROUP as GROUP_TEXT, PASSWD};

    #[derive(Default)]
    struct Fake {
        files: Vec<(String, String, &'static str)>,
        calls: Vec<String>,
    }

    impl Ops for Fake {
        fn stat(&mut self, paths: &[String]) -> Result<Vec<StatEntry>> {
            self.calls.push(format!("file.stat {}", paths.join(" ")));
            Ok(paths
                .iter()
                .map(|p| match self.files.iter().find(|(f, _, _)| f == p) {
                    Some((_, content, owner)) => StatEntry {
                        path: p.clone(),
                        exists: true,
                        kind: Some(if content == "<dir>" {
                            FileKind::Dir
                        } else {
                            FileKind::File
                        }),
                        mode: Some(if content == "<dir>" { "0700" } else { "0600" }.into()),
                        owner: Some((*owner).into()),
                        sha256: Some("abc".into()),
                        ..Default::default()
                    },
                    None => StatEntry {
                        path: p.clone(),
                        ..Default::default()
                    },
                })
                .collect())
        }

        fn read(&mut self, path: &str) -> Result<ReadResult> {
            self.calls.push(format!("file.read {path}"));
            let (_, content, _) = self
                .files
                .iter()
                .find(|(f, _, _)| f == path)
                .ok_or_else(|| ProviderError::permanent("no such file"))?;
            Ok(ReadResult {
                content: Some(content.clone()),
                content_b64: None,
                size: content.len() as u64,
                sha256: "abc".into(),
            })
        }
    }

    fn fake() -> Fake {
        Fake {
            files: vec![
                ("/etc/passwd".into(), PASSWD.into(), "root"),
                ("/etc/group".into(), GROUP_TEXT.into(), "root"),
                (
                    "/etc/shadow".into(),
                    "deploy:$6$s$h:19000::::::\n".into(),
                    "root",
                ),
                ("/home/deploy/.ssh".into(), "<dir>".into(), "deploy"),
                (
                    "/home/deploy/.ssh/authorized_keys".into(),
                    "ssh-ed25519 AAAA one\n".into(),
                    "deploy",
                ),
            ],
            calls: Vec::new(),
        }
    }

    fn resource(id: &str, type_name: &str, config: Value) -> Resource {
        Resource {
            id: id.into(),
            type_name: type_name.into(),
            config: config.to_string(),
        }
    }

    fn state(a: &Actual) -> Value {
        serde_json::from_str(&a.state).unwrap()
    }

    #[test]
    fn one_read_of_each_database_for_the_batch() {
        let mut fake = fake();
        let actuals = read_with(
            &mut fake,
            vec![
                resource(
                    "deploy",
                    USER,
                    json!({"name": "deploy", "shell": "/bin/zsh"}),
                ),
                resource("ghost", USER, json!({"name": "ghost"})),
                resource("docker", GROUP, json!({"name": "docker"})),
                resource("nogroup", GROUP, json!({"name": "nogroup", "gid": 5000})),
                resource(
                    "keys",
                    AUTHORIZED_KEYS,
                    json!({"user": "deploy", "keys": ["ssh-ed25519 AAAA one"]}),
                ),
                resource(
                    "app-keys",
                    AUTHORIZED_KEYS,
                    json!({"user": "app", "keys": []}),
                ),
                resource(
                    "ghost-keys",
                    AUTHORIZED_KEYS,
                    json!({"user": "ghost", "keys": []}),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            fake.calls,
            [
                "file.read /etc/passwd",
                "file.read /etc/group",
                "file.stat /home/deploy/.ssh /home/deploy/.ssh/authorized_keys /srv/app/.ssh /srv/app/.ssh/authorized_keys",
                "file.read /home/deploy/.ssh/authorized_keys",
            ]
        );
        assert_eq!(
            state(&actuals[0]),
            json!({"uid": 1001, "gid": 1001, "group": "deploy", "groups": ["docker", "sudo"],
                   "home": "/home/deploy", "shell": "/bin/bash"})
        );
        assert_eq!(actuals[1].state, "null");
        assert_eq!(
            state(&actuals[2]),
            json!({"gid": 999, "members": ["app", "deploy"]})
        );
        assert_eq!(actuals[3].state, "null");
        assert_eq!(
            state(&actuals[4]),
            json!({"home": "/home/deploy", "group": "deploy",
                   "dir": {"kind": "dir", "mode": "0700", "owner": "deploy", "sha256": "abc"},
                   "file": {"kind": "file", "mode": "0600", "owner": "deploy", "sha256": "abc"},
                   "content": "ssh-ed25519 AAAA one\n"})
        );
        assert_eq!(
            state(&actuals[5]),
            json!({"home": "/srv/app", "group": "app", "dir": null, "file": null, "content": null})
        );
        assert_eq!(
            state(&actuals[6]),
            json!({"home": null, "group": null, "dir": null, "file": null, "content": null})
        );
    }

    #[test]
    fn shadow_is_read_only_for_managed_password_hashes() {
        let mut fake = fake();
        let actuals = read_with(
            &mut fake,
            vec![
                resource(
                    "deploy",
                    USER,
                    json!({"name": "deploy", "password_hash": "$6$s$h"}),
                ),
                resource("root", USER, json!({"name": "root", "password_hash": "!"})),
            ],
        )
        .unwrap();
        assert_eq!(
            fake.calls,
            [
                "file.read /etc/passwd",
                "file.read /etc/group",
                "file.read /etc/shadow"
            ]
        );
        assert_eq!(state(&actuals[0])["password_matches"], true);
        assert_eq!(state(&actuals[1])["password_matches"], false);
    }

    #[test]
    fn secret_password_hashes_are_refused() {
        let e = read_with(
            &mut fake(),
            vec![resource(
                "deploy",
                USER,
                json!({"name": "deploy", "password_hash": {"$secret": "vault:x"}}),
            )],
        )
        .unwrap_err();
        assert!(e.message.contains("secrets are resolved by the engine"));
    }
}
