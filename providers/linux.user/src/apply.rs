//! `apply` and `destroy`: carry out a planned payload. Commands that exit non-zero are
//! permanent errors with the tail of their stderr. Authorized keys are written with
//! `dir.ensure` and `file.write` (atomic, conditional on the sha256 seen at plan time,
//! so a file changed since the plan fails with `conflict`).

use froyo_provider_sdk::runner::{self, DirEnsureArgs, ExecArgs, RemoveArgs, WriteArgs};
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result};
use serde_json::json;

use crate::config::{Config, Presence};
use crate::plan::{Command, Payload, content_without, merged_content, plan_config};
use crate::read::{Live, database, read_with, text};
use crate::state::ssh_paths;

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    let payload: Payload = serde_json::from_str(&op.payload)
        .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))?;
    run(payload).map_err(|e| e.context(&op.id))
}

pub fn destroy(resource: &Resource) -> Result<ApplyResult> {
    let payload = match Config::parse(resource).map_err(|e| e.context(&resource.id))? {
        Config::Keys(k) => Some(Payload::RemoveKeys {
            user: k.user,
            keys: k.keys,
            exclusive: k.exclusive,
        }),
        config => {
            let actual = read_with(&mut Live, vec![resource.clone()])?;
            let state = actual.first().map(|a| a.state.as_str()).unwrap_or("null");
            let absent = match config {
                Config::User(mut u) => {
                    u.state = Presence::Absent;
                    Config::User(u)
                }
                Config::Group(mut g) => {
                    g.state = Presence::Absent;
                    Config::Group(g)
                }
                keys => keys,
            };
            plan_config(&absent, state)
                .map_err(|e| e.context(&resource.id))?
                .map(|step| step.payload)
        }
    };
    match payload {
        Some(payload) => run(payload).map_err(|e| e.context(&resource.id)),
        None => Ok(unchanged()),
    }
}

fn unchanged() -> ApplyResult {
    ApplyResult {
        changed: false,
        output: "{}".into(),
    }
}

fn run(payload: Payload) -> Result<ApplyResult> {
    match payload {
        Payload::Exec { commands } => {
            for command in &commands {
                run_command(command)?;
            }
            let ran: Vec<&Vec<String>> = commands.iter().map(|c| &c.argv).collect();
            Ok(ApplyResult {
                changed: true,
                output: json!({ "commands": ran }).to_string(),
            })
        }
        Payload::WriteKeys {
            user,
            keys,
            exclusive,
            expect_sha256,
        } => {
            let target = KeysTarget::resolve(&user)?;
            let dir_changed = runner::dir_ensure(&DirEnsureArgs {
                mode: Some("0700".into()),
                owner: Some(user.clone()),
                group: target.group.clone(),
                ..DirEnsureArgs::new(&target.dir)
            })?;
            let current = target.current()?;
            let content = merged_content(current.as_deref(), &keys, exclusive);
            let written = runner::write(&WriteArgs {
                path: target.file.clone(),
                content: Some(content),
                mode: Some("0600".into()),
                owner: Some(user.clone()),
                group: target.group.clone(),
                expect_sha256,
                ..Default::default()
            })?;
            Ok(ApplyResult {
                changed: dir_changed || written.changed,
                output: json!({"path": target.file, "sha256": written.sha256}).to_string(),
            })
        }
        Payload::RemoveKeys {
            user,
            keys,
            exclusive,
        } => {
            let target = KeysTarget::resolve(&user)?;
            if exclusive {
                let changed = runner::remove(&RemoveArgs {
                    path: target.file.clone(),
                    recursive: false,
                })?;
                return Ok(ApplyResult {
                    changed,
                    output: json!({"path": target.file}).to_string(),
                });
            }
            let Some(current) = target.current()? else {
                return Ok(unchanged());
            };
            let content = content_without(&current, &keys);
            if content == current {
                return Ok(unchanged());
            }
            let written = runner::write(&WriteArgs {
                path: target.file.clone(),
                content: Some(content),
                ..Default::default()
            })?;
            Ok(ApplyResult {
                changed: written.changed,
                output: json!({"path": target.file, "sha256": written.sha256}).to_string(),
            })
        }
    }
}

/// Where a user's authorized keys live, resolved at apply time (the user may have been
/// created since the plan).
struct KeysTarget {
    dir: String,
    file: String,
    group: Option<String>,
}

impl KeysTarget {
    fn resolve(user: &str) -> Result<KeysTarget> {
        let db = database(&mut Live)?;
        let entry = db
            .user(user)
            .ok_or_else(|| ProviderError::permanent(format!("user {user} does not exist")))?;
        let (dir, file) = ssh_paths(&entry.home);
        Ok(KeysTarget {
            dir,
            file,
            group: db.group_name(entry.gid).map(str::to_owned),
        })
    }

    /// The file's current text, `None` when it does not exist.
    fn current(&self) -> Result<Option<String>> {
        let stat = runner::stat(std::slice::from_ref(&self.file))?;
        match stat.first() {
            Some(entry) if entry.exists => Ok(Some(text(&mut Live, &self.file)?)),
            _ => Ok(None),
        }
    }
}

fn run_command(command: &Command) -> Result<()> {
    let mut args = ExecArgs::argv(command.argv.clone());
    args.stdin = command.stdin.clone();
    let result = runner::exec(&args)?;
    check(command, result.rc, &result.stderr)
}

/// An error unless the command exited 0, with the tail of its stderr.
pub fn check(command: &Command, rc: Option<i32>, stderr: &str) -> Result<()> {
    if rc == Some(0) {
        return Ok(());
    }
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n");
    let status = match rc {
        Some(rc) => format!("exited {rc}"),
        None => "was killed".to_owned(),
    };
    let mut message = format!("`{}` {status}", command.argv.join(" "));
    if !tail.is_empty() {
        message.push_str(&format!(": {tail}"));
    }
    Err(ProviderError::permanent(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_carry_the_tail_of_stderr() {
        let c = Command {
            argv: vec!["useradd".into(), "x".into()],
            stdin: None,
        };
        assert!(check(&c, Some(0), "").is_ok());
        let e = check(&c, Some(9), "useradd: user 'x' already exists\n").unwrap_err();
        assert_eq!(
            e.message,
            "`useradd x` exited 9: useradd: user 'x' already exists"
        );
        assert_eq!(
            check(&c, None, "").unwrap_err().message,
            "`useradd x` was killed"
        );
    }
}
