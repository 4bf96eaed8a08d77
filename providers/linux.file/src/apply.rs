//! `apply` and `destroy`: carry out a planned payload with runner ops. `file.write` is
//! atomic on the runner's side and conditional on the sha256 seen at plan time, so a
//! file changed since the plan fails with `conflict` rather than being overwritten.
//!
//! The runner has no op that changes only a file's metadata: `file.write` always takes
//! the content. It does, however, only chown/chmod in place when the content is the
//! same, so a metadata change on a file whose content is not managed reads the current
//! content and writes it back unchanged (conditional on its sha256). That limits such
//! changes to files of at most 16 MiB (`file.read`'s limit). Owners and groups of
//! symlinks and of a directory's contents have no runner op either: they use `chown`
//! through `exec`.

use froyo_provider_sdk::runner::{
    self, DirEnsureArgs, ExecArgs, ExecResult, FileKind, RemoveArgs, SymlinkEnsureArgs, WriteArgs,
};
use froyo_provider_sdk::{ApplyResult, Operation, ProviderError, Resource, Result, log};
use serde_json::{Value, json};

use crate::config::Config;
use crate::plan::{Payload, removal};
use crate::state::State;

pub fn apply(op: &Operation) -> Result<ApplyResult> {
    let payload: Payload = serde_json::from_str(&op.payload)
        .map_err(|e| ProviderError::permanent(format!("{}: malformed payload: {e}", op.id)))?;
    run(payload).map_err(|e| e.context(&op.id))
}

pub fn destroy(resource: &Resource) -> Result<ApplyResult> {
    let config = Config::parse(resource).map_err(|e| e.context(&resource.id))?;
    let entry = runner::stat(&[config.path().to_owned()])?;
    let state = entry.first().map(State::from_stat).transpose()?.flatten();
    match removal(&config, state.as_ref()).map_err(|e| e.context(&resource.id))? {
        Some(payload) => run(payload).map_err(|e| e.context(&resource.id)),
        None => Ok(ApplyResult {
            changed: false,
            output: "{}".into(),
        }),
    }
}

/// What an edit of a text file writes besides the content.
struct TextTarget<'a> {
    path: &'a str,
    mode: Option<&'a str>,
    owner: Option<&'a str>,
    group: Option<&'a str>,
    validate: Option<&'a str>,
}

/// `EditLine`/`EditBlock`: read, edit, write conditional on the read; a conflict (another
/// edit of the same file in between) is retried on the new content.
fn edit_text(
    t: TextTarget,
    edit: impl Fn(Option<&str>) -> Result<Option<String>>,
) -> Result<ApplyResult> {
    let path = t.path.to_owned();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let entry = runner::stat(std::slice::from_ref(&path))?;
        let state = entry.first().map(State::from_stat).transpose()?.flatten();
        let (current, sha) = match &state {
            None => (None, String::new()),
            Some(s) if s.kind == FileKind::File => {
                let r = runner::read(&path)?;
                let text = r.content.ok_or_else(|| {
                    ProviderError::permanent(format!(
                        "{path} is not UTF-8 text: its lines cannot be edited"
                    ))
                })?;
                (Some(text), r.sha256)
            }
            Some(s) => {
                return Err(ProviderError::permanent(format!(
                    "{path} is {}, not a regular file",
                    crate::state::kind_name(s.kind)
                )));
            }
        };
        let unchanged_result = ApplyResult {
            changed: false,
            output: "{}".into(),
        };
        let Some(new) = edit(current.as_deref())? else {
            return Ok(unchanged_result);
        };
        let unchanged = current.as_deref() == Some(new.as_str());
        if unchanged && t.mode.is_none() && t.owner.is_none() && t.group.is_none() {
            return Ok(unchanged_result);
        }
        let payload = Payload::WriteFile {
            path: path.clone(),
            content: new,
            mode: t.mode.and_then(crate::config::normalize_mode),
            owner: t.owner.map(str::to_owned),
            group: t.group.map(str::to_owned),
            expect_sha256: Some(sha),
            validate: t.validate.filter(|_| !unchanged).map(str::to_owned),
            backup: false,
        };
        match run(payload) {
            Err(e) if e.class == froyo_provider_sdk::ErrorClass::Conflict && attempt < 5 => {
                continue;
            }
            other => return other,
        }
    }
}

fn run(payload: Payload) -> Result<ApplyResult> {
    let (changed, output) = match payload {
        Payload::EditLine { line: c } => {
            let t = TextTarget {
                path: &c.path,
                mode: c.mode.as_deref(),
                owner: c.owner.as_deref(),
                group: c.group.as_deref(),
                validate: c.validate.as_deref(),
            };
            return edit_text(t, |cur| crate::line::edit(cur, &c));
        }
        Payload::EditBlock { block: c } => {
            let t = TextTarget {
                path: &c.path,
                mode: c.mode.as_deref(),
                owner: c.owner.as_deref(),
                group: c.group.as_deref(),
                validate: c.validate.as_deref(),
            };
            return edit_text(t, |cur| crate::block::edit(cur, &c));
        }
        Payload::WriteFile {
            path,
            content,
            mode,
            owner,
            group,
            expect_sha256,
            validate,
            backup,
        } => {
            let mut output = serde_json::Map::new();
            let staged = validate.as_deref().filter(|v| v.contains("%s"));
            let after = validate.as_deref().filter(|v| !v.contains("%s"));
            if let Some(command) = staged {
                validate_staged(
                    command,
                    &path,
                    &content,
                    mode.as_deref(),
                    owner.as_deref(),
                    group.as_deref(),
                )?;
            }
            if backup && let Some(copy) = backup_file(&path)? {
                output.insert("backup".into(), copy.into());
            }
            let previous = if after.is_some() {
                Snapshot::take(&path)?
            } else {
                None
            };
            let args = WriteArgs {
                path: path.clone(),
                content: Some(content),
                mode,
                owner,
                group,
                expect_sha256,
                ..Default::default()
            };
            let written = runner::write(&args)?;
            if let Some(command) = after.filter(|_| written.changed) {
                validate_written(command, &path, previous)?;
            }
            output.insert("sha256".into(), written.sha256.into());
            output.insert("previous_sha256".into(), written.previous_sha256.into());
            (written.changed, Value::Object(output))
        }
        Payload::FileMetadata {
            path,
            mode,
            owner,
            group,
        } => {
            let current = runner::read(&path)?;
            let args = WriteArgs {
                path,
                content: current.content,
                content_b64: current.content_b64,
                mode,
                owner,
                group,
                expect_sha256: Some(current.sha256),
            };
            let written = runner::write(&args)?;
            (written.changed, json!({"sha256": written.sha256}))
        }
        Payload::EnsureDir {
            path,
            mode,
            owner,
            group,
            chown_contents,
        } => {
            let args = DirEnsureArgs {
                path: path.clone(),
                mode,
                owner: owner.clone(),
                group: group.clone(),
                parents: true,
            };
            let mut changed = runner::dir_ensure(&args)?;
            if chown_contents && let Some(spec) = chown_spec(owner.as_deref(), group.as_deref()) {
                // `PATH/.` is the directory even when PATH is a symlink to it; inside it,
                // `-h` changes symlinks themselves and never follows them out of the tree.
                let inside = format!("{}/.", path.trim_end_matches('/'));
                check(
                    &runner::exec(&ExecArgs::argv(["chown", "-R", "-h", &spec, "--", &inside]))?,
                    "chown -R",
                )?;
                changed = true;
            }
            (changed, json!({}))
        }
        Payload::EnsureSymlink {
            path,
            target,
            owner,
            group,
        } => {
            let args = SymlinkEnsureArgs {
                path: path.clone(),
                target,
                force: false,
            };
            let linked = runner::symlink_ensure(&args)?;
            let mut changed = linked.changed;
            if let Some(spec) = chown_spec(owner.as_deref(), group.as_deref()) {
                check(
                    &runner::exec(&ExecArgs::argv(["chown", "-h", &spec, "--", &path]))?,
                    "chown -h",
                )?;
                changed = true;
            }
            (changed, json!({"previous_target": linked.previous_target}))
        }
        Payload::Remove {
            path,
            recursive,
            backup,
        } => {
            let copy = if backup { backup_file(&path)? } else { None };
            let changed = runner::remove(&RemoveArgs { path, recursive })?;
            (changed, json!({"backup": copy}))
        }
    };
    Ok(ApplyResult {
        changed,
        output: output.to_string(),
    })
}

/// A regular file's content and metadata, to copy or put back.
struct Snapshot {
    content: Option<String>,
    content_b64: Option<String>,
    sha256: String,
    mode: Option<String>,
    owner: Option<String>,
    group: Option<String>,
}

impl Snapshot {
    /// The regular file at `path`, or `None` when there is none.
    fn take(path: &str) -> Result<Option<Snapshot>> {
        let entry = runner::stat(&[path.to_owned()])?;
        let Some(state) = entry.first().map(State::from_stat).transpose()?.flatten() else {
            return Ok(None);
        };
        if state.kind != FileKind::File {
            return Ok(None);
        }
        let read = runner::read(path)?;
        Ok(Some(Snapshot {
            content: read.content,
            content_b64: read.content_b64,
            sha256: read.sha256,
            mode: state.mode,
            owner: state.owner.or(state.uid.map(|u| u.to_string())),
            group: state.group.or(state.gid.map(|g| g.to_string())),
        }))
    }

    fn write_to(self, path: &str) -> Result<()> {
        runner::write(&WriteArgs {
            path: path.to_owned(),
            content: self.content,
            content_b64: self.content_b64,
            mode: self.mode,
            owner: self.owner,
            group: self.group,
            expect_sha256: None,
        })
        .map(drop)
    }
}

/// Copies the current regular file at `path` (with its mode, owner and group) to
/// `PATH.froyo-SHA12.bak` next to it, named after its content so repeated runs do not
/// pile up copies of the same content. Returns the copy's path.
fn backup_file(path: &str) -> Result<Option<String>> {
    let Some(snapshot) = Snapshot::take(path)? else {
        return Ok(None);
    };
    let copy = format!(
        "{path}.froyo-{}.bak",
        &snapshot.sha256[..12.min(snapshot.sha256.len())]
    );
    snapshot.write_to(&copy)?;
    log::info(&format!("backed up {path} to {copy}"));
    Ok(Some(copy))
}

/// `validate` with `%s`: the new content goes to a temporary file next to `path` (with the
/// new mode, owner and group, as some validators check them), the command checks it, and
/// the temporary file is removed whatever the outcome.
fn validate_staged(
    command: &str,
    path: &str,
    content: &str,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Result<()> {
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let temp = format!("{dir}/.{name}.froyo-validate");
    runner::write(&WriteArgs {
        path: temp.clone(),
        content: Some(content.to_owned()),
        mode: Some(mode.unwrap_or("0600").to_owned()),
        owner: owner.map(str::to_owned),
        group: group.map(str::to_owned),
        ..Default::default()
    })?;
    let result = runner::exec(&ExecArgs::shell(
        command.replace("%s", &froyo_provider_sdk::shell::quote(&temp)),
    ));
    runner::remove(&RemoveArgs {
        path: temp,
        recursive: false,
    })?;
    check(&result?, command).map_err(|e| e.context("validation failed; the file was not changed"))
}

/// `validate` without `%s`: runs after the write; on failure the previous file is put back
/// (or the new one removed when there was none).
fn validate_written(command: &str, path: &str, previous: Option<Snapshot>) -> Result<()> {
    let outcome = runner::exec(&ExecArgs::shell(command)).and_then(|r| check(&r, command));
    let Err(e) = outcome else { return Ok(()) };
    match previous {
        Some(snapshot) => snapshot.write_to(path)?,
        None => {
            runner::remove(&RemoveArgs {
                path: path.to_owned(),
                recursive: false,
            })?;
        }
    }
    Err(e.context("validation failed; the previous file was restored"))
}

/// A failed command (non-zero exit or a signal) as a permanent error with its stderr.
fn check(result: &ExecResult, command: &str) -> Result<()> {
    if result.success() {
        return Ok(());
    }
    let status = match (result.rc, result.signal) {
        (Some(rc), _) => format!("exited with {rc}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_owned(),
    };
    let stderr = result.stderr.trim();
    let output = if stderr.is_empty() {
        result.stdout.trim()
    } else {
        stderr
    };
    Err(ProviderError::permanent(if output.is_empty() {
        format!("`{command}` {status}")
    } else {
        format!("`{command}` {status}: {output}")
    }))
}

/// `owner:group`, `owner` or `:group` for chown; `None` when neither is managed.
fn chown_spec(owner: Option<&str>, group: Option<&str>) -> Option<String> {
    match (owner, group) {
        (None, None) => None,
        (Some(o), None) => Some(o.to_owned()),
        (None, Some(g)) => Some(format!(":{g}")),
        (Some(o), Some(g)) => Some(format!("{o}:{g}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chown_specs() {
        assert_eq!(
            chown_spec(Some("root"), Some("adm")).as_deref(),
            Some("root:adm")
        );
        assert_eq!(chown_spec(None, Some("adm")).as_deref(), Some(":adm"));
        assert_eq!(chown_spec(None, None), None);
    }

    #[test]
    fn failed_commands_show_their_stderr() {
        let result = ExecResult {
            rc: Some(1),
            signal: None,
            stdout: String::new(),
            stderr: "line 3: syntax error\n".into(),
            truncated: false,
            duration_ms: 1,
        };
        let e = check(&result, "nginx -t -c %s").unwrap_err();
        assert_eq!(
            e.message,
            "`nginx -t -c %s` exited with 1: line 3: syntax error"
        );
    }
}
