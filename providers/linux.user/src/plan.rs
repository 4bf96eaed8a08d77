//! `diff`: pure. Compares a config with the state `read` reported and plans at most one
//! operation, whose payload `apply` carries out:
//!
//! - users and groups: `{"action": "exec", "commands": [{"argv": [...], "stdin"?: "..."}]}`
//!   (`useradd`/`usermod`/`userdel` — never `-r`: a home is kept —, `groupadd`/
//!   `groupmod`/`groupdel`, and `chpasswd -e` with `name:hash` on stdin, so a hash never
//!   appears on a command line);
//! - authorized keys: `{"action": "write_keys", "user", "keys", "exclusive",
//!   "expect_sha256"}`; `apply` resolves the home again, ensures `~/.ssh` (0700) and
//!   writes the file (0600), both owned by the user, conditional on the sha256 seen here.

use froyo_provider_sdk::diff::unified_diff;
use froyo_provider_sdk::runner::FileKind;
use froyo_provider_sdk::{Actual, Operation, ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{Config, GroupConfig, KeysConfig, Presence, UserConfig};
use crate::state::{GroupState, KeysState, UserState, parse_state, ssh_paths};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
}

impl Command {
    fn argv(argv: Vec<String>) -> Command {
        Command { argv, stdin: None }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Payload {
    Exec {
        commands: Vec<Command>,
    },
    WriteKeys {
        user: String,
        keys: Vec<String>,
        exclusive: bool,
        /// The file's sha256 at plan time (`""`: no file); `None` when the user did not
        /// exist yet, so nothing could be seen.
        expect_sha256: Option<String>,
    },
    /// `destroy` of authorized keys: the file when exclusive, else only these keys.
    RemoveKeys {
        user: String,
        keys: Vec<String>,
        exclusive: bool,
    },
}

pub struct Step {
    pub kind: &'static str,
    pub summary: String,
    pub diff: Option<String>,
    pub payload: Payload,
}

pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let config = Config::parse(desired).map_err(|e| e.context(&desired.id))?;
    let step = plan_config(&config, &actual.state).map_err(|e| e.context(&desired.id))?;
    Ok(step
        .into_iter()
        .map(|step| Operation {
            id: desired.id.clone(),
            type_name: desired.type_name.clone(),
            kind: step.kind.to_owned(),
            summary: step.summary,
            diff: step.diff,
            // Plain strings and booleans: serializing cannot fail.
            payload: serde_json::to_string(&step.payload).unwrap_or_default(),
        })
        .collect())
}

pub fn plan_config(config: &Config, state: &str) -> Result<Option<Step>> {
    match config {
        Config::User(c) => Ok(plan_user(
            c,
            parse_state::<Option<UserState>>(state)?.as_ref(),
        )),
        Config::Group(c) => Ok(plan_group(
            c,
            parse_state::<Option<GroupState>>(state)?.as_ref(),
        )),
        Config::Keys(c) => plan_keys(c, &parse_state::<KeysState>(state)?),
    }
}

fn strings<const N: usize>(words: [&str; N]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn exec(kind: &'static str, summary: String, commands: Vec<Command>) -> Option<Step> {
    Some(Step {
        kind,
        summary,
        diff: None,
        payload: Payload::Exec { commands },
    })
}

fn chpasswd(name: &str, hash: &str) -> Command {
    Command {
        argv: strings(["chpasswd", "-e"]),
        stdin: Some(format!("{name}:{hash}\n")),
    }
}

/// Sorted, deduplicated supplementary groups without the primary one.
fn group_set(groups: &[String], primary: Option<&str>) -> Vec<String> {
    let mut set: Vec<String> = groups
        .iter()
        .filter(|g| Some(g.as_str()) != primary)
        .cloned()
        .collect();
    set.sort();
    set.dedup();
    set
}

pub fn plan_user(c: &UserConfig, state: Option<&UserState>) -> Option<Step> {
    let name = &c.name;
    match (c.state, state) {
        (Presence::Absent, None) => None,
        (Presence::Absent, Some(_)) => exec(
            "delete",
            format!("delete user {name} (home kept)"),
            vec![Command::argv(strings(["userdel", name]))],
        ),
        (Presence::Present, None) => {
            let mut argv = strings(["useradd"]);
            let mut details = Vec::new();
            if c.system {
                argv.push("--system".into());
                details.push("system".to_owned());
            }
            if let Some(uid) = c.uid {
                argv.extend(["--uid".into(), uid.to_string()]);
                details.push(format!("uid {uid}"));
            }
            if let Some(group) = &c.group {
                argv.extend(["--gid".into(), group.clone()]);
                details.push(format!("group {group}"));
            }
            if let Some(groups) = &c.groups {
                let set = group_set(groups, c.group.as_deref());
                if !set.is_empty() {
                    argv.extend(["--groups".into(), set.join(",")]);
                    details.push(format!("groups {}", set.join(",")));
                }
            }
            if let Some(shell) = &c.shell {
                argv.extend(["--shell".into(), shell.clone()]);
                details.push(format!("shell {shell}"));
            }
            if let Some(home) = &c.home {
                argv.extend(["--home-dir".into(), home.clone()]);
                details.push(format!("home {home}"));
            }
            if !c.system || c.home.is_some() {
                argv.push("--create-home".into());
            }
            argv.push(name.clone());
            let mut commands = vec![Command::argv(argv)];
            if let Some(hash) = &c.password_hash {
                commands.push(chpasswd(name, hash));
                details.push("password hash".into());
            }
            let mut summary = format!("create user {name}");
            if !details.is_empty() {
                summary.push_str(&format!(" ({})", details.join(", ")));
            }
            exec("create", summary, commands)
        }
        (Presence::Present, Some(s)) => {
            let mut argv = strings(["usermod"]);
            let mut details = Vec::new();
            if let Some(uid) = c.uid.filter(|u| *u != s.uid) {
                argv.extend(["--uid".into(), uid.to_string()]);
                details.push(format!("uid {} → {uid}", s.uid));
            }
            if let Some(group) = c.group.as_ref().filter(|g| s.group.as_ref() != Some(*g)) {
                argv.extend(["--gid".into(), group.clone()]);
                let old = s.group.clone().unwrap_or_else(|| format!("gid {}", s.gid));
                details.push(format!("group {old} → {group}"));
            }
            if let Some(groups) = &c.groups {
                let primary = c.group.as_deref().or(s.group.as_deref());
                let want = group_set(groups, primary);
                let have = group_set(&s.groups, primary);
                if want != have {
                    argv.extend(["--groups".into(), want.join(",")]);
                    let added = want
                        .iter()
                        .filter(|g| !have.contains(g))
                        .map(|g| format!("+{g}"));
                    let removed = have
                        .iter()
                        .filter(|g| !want.contains(g))
                        .map(|g| format!("-{g}"));
                    details.push(format!(
                        "groups {}",
                        added.chain(removed).collect::<Vec<_>>().join(" ")
                    ));
                }
            }
            if let Some(shell) = c.shell.as_ref().filter(|sh| **sh != s.shell) {
                argv.extend(["--shell".into(), shell.clone()]);
                details.push(format!("shell {} → {shell}", s.shell));
            }
            if let Some(home) = c.home.as_ref().filter(|h| **h != s.home) {
                argv.extend(["--home".into(), home.clone()]);
                details.push(format!("home {} → {home}", s.home));
            }
            let mut commands = Vec::new();
            if argv.len() > 1 {
                argv.push(name.clone());
                commands.push(Command::argv(argv));
            }
            if let Some(hash) = &c.password_hash
                && s.password_matches != Some(true)
            {
                commands.push(chpasswd(name, hash));
                details.push("password hash".into());
            }
            if commands.is_empty() {
                return None;
            }
            exec(
                "update",
                format!("update user {name}: {}", details.join(", ")),
                commands,
            )
        }
    }
}

pub fn plan_group(c: &GroupConfig, state: Option<&GroupState>) -> Option<Step> {
    let name = &c.name;
    match (c.state, state) {
        (Presence::Absent, None) => None,
        (Presence::Absent, Some(_)) => exec(
            "delete",
            format!("delete group {name}"),
            vec![Command::argv(strings(["groupdel", name]))],
        ),
        (Presence::Present, None) => {
            let mut argv = strings(["groupadd"]);
            let mut details = Vec::new();
            if c.system {
                argv.push("--system".into());
                details.push("system".to_owned());
            }
            if let Some(gid) = c.gid {
                argv.extend(["--gid".into(), gid.to_string()]);
                details.push(format!("gid {gid}"));
            }
            argv.push(name.clone());
            let mut summary = format!("create group {name}");
            if !details.is_empty() {
                summary.push_str(&format!(" ({})", details.join(", ")));
            }
            exec("create", summary, vec![Command::argv(argv)])
        }
        (Presence::Present, Some(s)) => {
            let gid = c.gid.filter(|g| *g != s.gid)?;
            exec(
                "update",
                format!("update group {name}: gid {} → {gid}", s.gid),
                vec![Command::argv(vec![
                    "groupmod".into(),
                    "--gid".into(),
                    gid.to_string(),
                    name.clone(),
                ])],
            )
        }
    }
}

/// The identity of a key line: its type and base64 blob (options and comment aside).
pub fn key_id(line: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| {
        w.starts_with("ssh-") || w.starts_with("ecdsa-sha2-") || w.starts_with("sk-")
    })?;
    Some((words[at], *words.get(at + 1)?))
}

/// The file's content with the desired keys: exactly them (one per line) when
/// exclusive, else the current content with the missing ones appended.
pub fn merged_content(current: Option<&str>, keys: &[String], exclusive: bool) -> String {
    let mut out = String::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    if !exclusive && let Some(current) = current {
        out.push_str(current);
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        seen.extend(current.lines().filter_map(key_id));
    }
    for key in keys {
        let key = key.trim();
        match key_id(key) {
            Some(id) if seen.contains(&id) => continue,
            Some(id) => seen.push(id),
            None => {}
        }
        out.push_str(key);
        out.push('\n');
    }
    out
}

/// The current content without the given keys (for `destroy` of non-exclusive keys).
pub fn content_without(current: &str, keys: &[String]) -> String {
    let ids: Vec<(&str, &str)> = keys.iter().filter_map(|k| key_id(k)).collect();
    current
        .lines()
        .filter(|l| key_id(l).is_none_or(|id| !ids.contains(&id)))
        .map(|l| format!("{l}\n"))
        .collect()
}

pub fn plan_keys(c: &KeysConfig, s: &KeysState) -> Result<Option<Step>> {
    let user = &c.user;
    let payload = |expect_sha256: Option<String>| Payload::WriteKeys {
        user: user.clone(),
        keys: c.keys.clone(),
        exclusive: c.exclusive,
        expect_sha256,
    };
    let Some(home) = &s.home else {
        return Ok(Some(Step {
            kind: "create",
            summary: format!(
                "authorized keys of {user}: {} (user does not exist yet)",
                plural(c.keys.len(), "key")
            ),
            diff: None,
            payload: payload(None),
        }));
    };
    let (_, path) = ssh_paths(home);
    if let Some(file) = &s.file
        && file.kind != FileKind::File
    {
        return Err(ProviderError::permanent(format!(
            "{path} is not a regular file"
        )));
    }
    if s.file.is_some() && s.content.is_none() {
        return Err(ProviderError::permanent(format!(
            "{path} is not UTF-8 text"
        )));
    }
    let old = s.content.clone().unwrap_or_default();
    let new = merged_content(s.content.as_deref(), &c.keys, c.exclusive);
    if s.file.is_none() && new.is_empty() {
        // No file and no key wanted: nothing to add.
        return Ok(None);
    }
    let mut details = Vec::new();
    if old != new || s.file.is_none() {
        let old_ids: Vec<_> = old.lines().filter_map(key_id).collect();
        let new_ids: Vec<_> = new.lines().filter_map(key_id).collect();
        let added = new_ids.iter().filter(|k| !old_ids.contains(k)).count();
        let removed = old_ids.iter().filter(|k| !new_ids.contains(k)).count();
        if added > 0 {
            details.push(format!("+{}", plural(added, "key")));
        }
        if removed > 0 {
            details.push(format!("-{}", plural(removed, "key")));
        }
        if added == 0 && removed == 0 {
            details.push("content".into());
        }
    }
    let mut meta = |what: &str, m: Option<&crate::state::Meta>, mode: &str| {
        if let Some(m) = m {
            if m.mode.as_deref() != Some(mode) {
                details.push(format!(
                    "{what} mode {} → {mode}",
                    m.mode.as_deref().unwrap_or("?")
                ));
            }
            if m.owner.as_deref() != Some(user) {
                details.push(format!(
                    "{what} owner {} → {user}",
                    m.owner.as_deref().unwrap_or("?")
                ));
            }
        }
    };
    meta("~/.ssh", s.dir.as_ref(), "0700");
    meta("file", s.file.as_ref(), "0600");
    if s.dir.as_ref().is_some_and(|d| d.kind != FileKind::Dir) {
        return Err(ProviderError::permanent(format!(
            "{home}/.ssh is not a directory"
        )));
    }
    if details.is_empty() && s.dir.is_some() {
        return Ok(None);
    }
    let expect = s
        .file
        .as_ref()
        .map(|f| f.sha256.clone().unwrap_or_default())
        .unwrap_or_default();
    let diff = unified_diff(&old, &new, &path);
    Ok(Some(Step {
        kind: if s.file.is_some() { "update" } else { "create" },
        summary: format!("{path}: {}", details.join(", ")),
        diff: (!diff.is_empty()).then_some(diff),
        payload: payload(Some(expect)),
    }))
}

fn plural(n: usize, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{AUTHORIZED_KEYS, GROUP, USER};
    use crate::state::tests::{GROUP as GROUP_TEXT, PASSWD};
    use crate::state::{Db, Meta, to_json};

    fn db() -> Db {
        Db::parse(PASSWD, GROUP_TEXT).unwrap()
    }

    fn diff(type_name: &str, config: Value, state: String) -> Result<Vec<Operation>> {
        plan(
            &Resource {
                id: "r".into(),
                type_name: type_name.into(),
                config: config.to_string(),
            },
            &Actual {
                id: "r".into(),
                state,
            },
        )
    }

    fn user(config: Value, name: &str) -> Vec<Operation> {
        diff(USER, config, to_json(&db().user_state(name))).unwrap()
    }

    fn payload(op: &Operation) -> Value {
        serde_json::from_str(&op.payload).unwrap()
    }

    #[test]
    fn a_user_in_sync_plans_nothing_and_unmanaged_fields_are_ignored() {
        let ops = user(
            json!({"name": "deploy", "uid": 1001, "group": "deploy", "groups": ["sudo", "docker", "deploy"],
                   "shell": "/bin/bash", "home": "/home/deploy", "system": false, "state": "present"}),
            "deploy",
        );
        assert!(ops.is_empty(), "{ops:?}");
        assert!(user(json!({"name": "deploy"}), "deploy").is_empty());
    }

    #[test]
    fn a_missing_user_is_created() {
        let ops = user(
            json!({"name": "web", "uid": 1500, "groups": ["docker"], "shell": "/bin/bash",
                   "password_hash": "$6$s$h", "system": false, "state": "present"}),
            "web",
        );
        assert_eq!(ops[0].kind, "create");
        assert_eq!(
            ops[0].summary,
            "create user web (uid 1500, groups docker, shell /bin/bash, password hash)"
        );
        assert_eq!(
            payload(&ops[0]),
            json!({"action": "exec", "commands": [
                {"argv": ["useradd", "--uid", "1500", "--groups", "docker", "--shell", "/bin/bash", "--create-home", "web"]},
                {"argv": ["chpasswd", "-e"], "stdin": "web:$6$s$h\n"}
            ]})
        );
        let ops = user(json!({"name": "svc", "system": true}), "svc");
        assert_eq!(
            payload(&ops[0])["commands"][0]["argv"],
            json!(["useradd", "--system", "svc"])
        );
    }

    #[test]
    fn only_given_fields_that_differ_are_modified() {
        let ops = user(
            json!({"name": "deploy", "uid": 1002, "groups": ["docker", "adm"], "shell": "/bin/zsh"}),
            "deploy",
        );
        assert_eq!(ops[0].kind, "update");
        assert_eq!(
            ops[0].summary,
            "update user deploy: uid 1001 → 1002, groups +adm -sudo, shell /bin/bash → /bin/zsh"
        );
        assert_eq!(
            payload(&ops[0])["commands"],
            json!([{"argv": ["usermod", "--uid", "1002", "--groups", "adm,docker", "--shell", "/bin/zsh", "deploy"]}])
        );
        // Emptying the supplementary groups.
        let ops = user(json!({"name": "deploy", "groups": []}), "deploy");
        assert_eq!(
            payload(&ops[0])["commands"][0]["argv"],
            json!(["usermod", "--groups", "", "deploy"])
        );
    }

    #[test]
    fn password_hashes_are_set_only_when_they_differ_and_never_shown() {
        let mut state = db().user_state("deploy").unwrap();
        state.password_matches = Some(true);
        let config = json!({"name": "deploy", "password_hash": "$6$s$h"});
        assert!(
            diff(USER, config.clone(), to_json(&Some(&state)))
                .unwrap()
                .is_empty()
        );
        state.password_matches = Some(false);
        let ops = diff(USER, config, to_json(&Some(&state))).unwrap();
        assert_eq!(ops[0].summary, "update user deploy: password hash");
        assert!(!ops[0].summary.contains("$6$"));
        assert_eq!(
            payload(&ops[0])["commands"],
            json!([{"argv": ["chpasswd", "-e"], "stdin": "deploy:$6$s$h\n"}])
        );
    }

    #[test]
    fn absent_users_are_deleted_keeping_their_home() {
        let ops = user(json!({"name": "app", "state": "absent"}), "app");
        assert_eq!(ops[0].kind, "delete");
        assert_eq!(ops[0].summary, "delete user app (home kept)");
        assert_eq!(
            payload(&ops[0])["commands"],
            json!([{"argv": ["userdel", "app"]}])
        );
        assert!(user(json!({"name": "ghost", "state": "absent"}), "ghost").is_empty());
    }

    #[test]
    fn groups() {
        let group = |config: Value, name: &str| {
            diff(GROUP, config, to_json(&db().group_state(name))).unwrap()
        };
        assert!(group(json!({"name": "docker", "gid": 999}), "docker").is_empty());
        assert!(group(json!({"name": "docker"}), "docker").is_empty());
        let ops = group(json!({"name": "docker", "gid": 990}), "docker");
        assert_eq!(ops[0].summary, "update group docker: gid 999 → 990");
        assert_eq!(
            payload(&ops[0])["commands"][0]["argv"],
            json!(["groupmod", "--gid", "990", "docker"])
        );
        let ops = group(json!({"name": "ops", "gid": 3000, "system": true}), "ops");
        assert_eq!(ops[0].summary, "create group ops (system, gid 3000)");
        assert_eq!(
            payload(&ops[0])["commands"][0]["argv"],
            json!(["groupadd", "--system", "--gid", "3000", "ops"])
        );
        let ops = group(json!({"name": "sudo", "state": "absent"}), "sudo");
        assert_eq!(
            payload(&ops[0])["commands"][0]["argv"],
            json!(["groupdel", "sudo"])
        );
    }

    fn keys_state(content: Option<&str>, file_mode: &str, owner: &str) -> KeysState {
        KeysState {
            home: Some("/home/deploy".into()),
            group: Some("deploy".into()),
            dir: Some(Meta {
                kind: FileKind::Dir,
                mode: Some("0700".into()),
                owner: Some("deploy".into()),
                sha256: None,
            }),
            file: content.map(|_| Meta {
                kind: FileKind::File,
                mode: Some(file_mode.into()),
                owner: Some(owner.into()),
                sha256: Some("abc".into()),
            }),
            content: content.map(str::to_owned),
        }
    }

    const A: &str = "ssh-ed25519 AAAAa alice@laptop";
    const B: &str = "ssh-rsa AAAAb bob";

    fn keys(config: Value, state: &KeysState) -> Vec<Operation> {
        diff(AUTHORIZED_KEYS, config, to_json(state)).unwrap()
    }

    #[test]
    fn exclusive_keys_are_exactly_the_listed_ones() {
        let state = keys_state(Some(&format!("{A}\n")), "0600", "deploy");
        assert!(
            keys(
                json!({"user": "deploy", "keys": [A], "exclusive": true}),
                &state
            )
            .is_empty()
        );
        let state = keys_state(Some(&format!("{A}\n")), "0644", "root");
        let ops = keys(
            json!({"user": "deploy", "keys": [B], "exclusive": true}),
            &state,
        );
        assert_eq!(ops[0].kind, "update");
        assert_eq!(
            ops[0].summary,
            "/home/deploy/.ssh/authorized_keys: +1 key, -1 key, file mode 0644 → 0600, file owner root → deploy"
        );
        assert_eq!(
            ops[0].diff.as_deref(),
            Some(
                "--- a/home/deploy/.ssh/authorized_keys\n+++ b/home/deploy/.ssh/authorized_keys\n@@ -1,1 +1,1 @@\n-ssh-ed25519 AAAAa alice@laptop\n+ssh-rsa AAAAb bob\n"
            )
        );
        assert_eq!(
            payload(&ops[0]),
            json!({"action": "write_keys", "user": "deploy", "keys": [B], "exclusive": true, "expect_sha256": "abc"})
        );
    }

    #[test]
    fn non_exclusive_keys_are_added_when_missing() {
        let current = format!("{A}\n# mine\nssh-ed25519 AAAAz other\n");
        let state = keys_state(Some(&current), "0600", "deploy");
        // The same key with another comment is already there.
        let ops = keys(
            json!({"user": "deploy", "keys": ["ssh-ed25519 AAAAa renamed"], "exclusive": false}),
            &state,
        );
        assert!(ops.is_empty(), "{ops:?}");
        let ops = keys(
            json!({"user": "deploy", "keys": [A, B], "exclusive": false}),
            &state,
        );
        assert_eq!(ops[0].summary, "/home/deploy/.ssh/authorized_keys: +1 key");
        assert_eq!(
            merged_content(Some(&current), &[B.to_owned()], false),
            format!("{current}{B}\n")
        );
        assert_eq!(
            content_without(&current, &[A.to_owned()]),
            "# mine\nssh-ed25519 AAAAz other\n"
        );
    }

    #[test]
    fn missing_files_and_users() {
        let mut state = keys_state(None, "0600", "deploy");
        state.dir = None;
        let ops = keys(
            json!({"user": "deploy", "keys": [A], "exclusive": true}),
            &state,
        );
        assert_eq!(ops[0].kind, "create");
        assert_eq!(payload(&ops[0])["expect_sha256"], "");
        assert!(
            keys(
                json!({"user": "deploy", "keys": [], "exclusive": true}),
                &state
            )
            .is_empty()
        );
        let ops = keys(
            json!({"user": "web", "keys": [A, B], "exclusive": true}),
            &KeysState::default(),
        );
        assert_eq!(
            ops[0].summary,
            "authorized keys of web: 2 keys (user does not exist yet)"
        );
        assert_eq!(payload(&ops[0])["expect_sha256"], Value::Null);
        let mut state = keys_state(Some(""), "0600", "deploy");
        state.file.as_mut().unwrap().kind = FileKind::Symlink;
        let e = diff(
            AUTHORIZED_KEYS,
            json!({"user": "deploy", "keys": [A]}),
            to_json(&state),
        )
        .unwrap_err();
        assert!(e.message.contains("not a regular file"), "{}", e.message);
    }
}
