//! `diff`: compares a desired config with the actual state `read` recorded and plans at
//! most one operation, whose payload says exactly what `apply` does. Pure, so every case
//! is unit-tested on recorded states.
//!
//! Fields left out of a config are not managed and never compared. A file's content is
//! shown as a unified diff, except when it is sensitive (never shown) or the current
//! content was not read (too large, binary): then the plan only says that it differs.

use froyo_provider_sdk::diff::unified_diff;
use froyo_provider_sdk::runner::FileKind;
use froyo_provider_sdk::{Actual, Operation, ProviderError, Resource, Result};
use serde::{Deserialize, Serialize};

use crate::config::{
    Config, DirectoryConfig, DirectoryState, FileConfig, FileState, SymlinkConfig, SymlinkState,
    normalize_mode, same_mode, same_principal,
};
use crate::state::{State, kind_name};

/// What `apply` does, chosen by `diff` (the operation's payload).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Payload {
    /// Write the whole file (`file.write`, atomic), after validating the new content.
    WriteFile {
        path: String,
        content: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        /// The sha256 the file had when planned (`""`: no regular file), so a file that
        /// changed since the plan is a `conflict` instead of being overwritten unseen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expect_sha256: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        validate: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        backup: bool,
    },
    /// Change only mode, owner or group of an existing file whose content is not managed.
    FileMetadata {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// `dir.ensure`, then `chown -R` of the contents when they differ.
    EnsureDir {
        path: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        chown_contents: bool,
    },
    /// `symlink.ensure`, then `chown -h` when owner or group is managed.
    EnsureSymlink {
        path: String,
        target: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// Edit one line (`linux.file::line`): the file is read again at apply time, edited
    /// and written back conditional on what was read, so several lines of one file each
    /// apply on top of the others (a write that lost a race is retried).
    EditLine { line: crate::line::LineConfig },
    /// The same for a managed block (`linux.file::block`).
    EditBlock { block: crate::block::BlockConfig },
    /// `file.remove`, after a backup of a regular file when asked for.
    Remove {
        path: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        recursive: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        backup: bool,
    },
}

/// One planned operation, before it gets the resource's id and type.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    kind: &'static str,
    summary: String,
    diff: Option<String>,
    payload: Payload,
}

/// The operations that turn `actual` into `desired`: none when in sync, else one.
pub fn plan(desired: &Resource, actual: &Actual) -> Result<Vec<Operation>> {
    let config = Config::parse(desired)?;
    let state = State::parse(&actual.state)?;
    let step = match &config {
        Config::File(c) => plan_file(c, state.as_ref()),
        Config::Directory(c) => plan_directory(c, state.as_ref()),
        Config::Symlink(c) => plan_symlink(c, state.as_ref()),
        Config::Line(c) => plan_line(c, state.as_ref()),
        Config::Block(c) => plan_block(c, state.as_ref()),
    }
    .map_err(|e| e.context(&desired.id))?;
    Ok(step
        .into_iter()
        .map(|step| Operation {
            id: desired.id.clone(),
            type_name: desired.type_name.clone(),
            kind: step.kind.to_owned(),
            summary: step.summary,
            diff: step.diff,
            // A payload is plain strings and booleans: serializing it cannot fail.
            payload: serde_json::to_string(&step.payload).unwrap_or_default(),
        })
        .collect())
}

/// What removing a resource's path takes (`destroy`): the plan for its config with
/// `state = "absent"`, so destroy refuses exactly what an `absent` config refuses.
pub fn removal(config: &Config, state: Option<&State>) -> Result<Option<Payload>> {
    let step = match config {
        Config::File(c) => plan_file(
            &FileConfig {
                state: FileState::Absent,
                content: None,
                ..c.clone()
            },
            state,
        ),
        Config::Directory(c) => plan_directory(
            &DirectoryConfig {
                state: DirectoryState::Absent,
                ..c.clone()
            },
            state,
        ),
        Config::Symlink(c) => plan_symlink(
            &SymlinkConfig {
                state: SymlinkState::Absent,
                ..c.clone()
            },
            state,
        ),
        // Destroying a line leaves its file as it is.
        Config::Line(_) | Config::Block(_) => Ok(None),
    }?;
    Ok(step.map(|s| s.payload))
}

fn plan_file(c: &FileConfig, state: Option<&State>) -> Result<Option<Step>> {
    let content = c.desired_content()?;
    let mode = c.mode.as_deref().and_then(normalize_mode);
    let s = match (c.state, state) {
        (FileState::Absent, None) => return Ok(None),
        (FileState::Absent, Some(s)) => {
            if s.kind == FileKind::Dir {
                return Err(ProviderError::permanent(format!(
                    "{} is a directory, not a file: remove it with linux.file::directory",
                    c.path
                )));
            }
            return Ok(Some(Step {
                kind: "delete",
                summary: format!("- {}", short_kind(s.kind)),
                diff: None,
                payload: Payload::Remove {
                    path: c.path.clone(),
                    recursive: false,
                    backup: c.backup && s.kind == FileKind::File,
                },
            }));
        }
        (FileState::File, Some(s)) if matches!(s.kind, FileKind::Dir | FileKind::Other) => {
            return Err(ProviderError::permanent(format!(
                "{} is {}, not a regular file; linux.file does not replace it",
                c.path,
                kind_name(s.kind)
            )));
        }
        (FileState::File, None) => None,
        (FileState::File, Some(s)) if s.kind == FileKind::Symlink => None,
        (FileState::File, Some(s)) => Some(s),
    };
    let Some(s) = s else {
        // Absent, or a symlink that the runner replaces by the file.
        let text = content.as_ref().map(|d| d.text.clone()).unwrap_or_default();
        let sensitive = content.as_ref().is_some_and(|d| d.sensitive);
        let mut details = vec![if sensitive {
            "sensitive content".to_owned()
        } else if text.is_empty() {
            "empty".to_owned()
        } else {
            plural(text.len(), "byte")
        }];
        details.extend(metadata_details(
            mode.as_deref(),
            c.owner.as_deref(),
            c.group.as_deref(),
        ));
        let (kind, summary) = match state {
            Some(link) => (
                "update",
                format!(
                    "replace symlink → {} with a file ({})",
                    link.link_target.as_deref().unwrap_or("?"),
                    details.join(", ")
                ),
            ),
            None => ("create", format!("+ file ({})", details.join(", "))),
        };
        let diff = Some(unified_diff("", &text, &c.path)).filter(|d| !sensitive && !d.is_empty());
        return Ok(Some(Step {
            kind,
            summary,
            diff,
            payload: Payload::WriteFile {
                path: c.path.clone(),
                content: text,
                mode,
                owner: c.owner.clone(),
                group: c.group.clone(),
                expect_sha256: Some(String::new()),
                validate: c.validate.clone(),
                backup: false,
            },
        }));
    };

    let mut changes = Vec::new();
    let mut diff = None;
    let new_content = content.filter(|d| s.sha256.as_deref() != Some(d.sha256().as_str()));
    if let Some(d) = &new_content {
        if d.sensitive || s.sensitive {
            changes.push("(sensitive: content differs)".to_owned());
        } else {
            changes.push("content".to_owned());
            diff = Some(match &s.content {
                Some(old) => unified_diff(old, &d.text, &c.path),
                None => format!(
                    "content differs ({})",
                    plural(s.size.unwrap_or(0) as usize, "byte")
                ),
            });
        }
    }
    changes.extend(metadata_changes(
        s,
        mode.as_deref(),
        c.owner.as_deref(),
        c.group.as_deref(),
    ));
    if changes.is_empty() {
        return Ok(None);
    }
    let payload = match new_content {
        Some(d) => Payload::WriteFile {
            path: c.path.clone(),
            content: d.text,
            mode,
            owner: c.owner.clone(),
            group: c.group.clone(),
            expect_sha256: s.sha256.clone(),
            validate: c.validate.clone(),
            backup: c.backup,
        },
        None => Payload::FileMetadata {
            path: c.path.clone(),
            mode,
            owner: c.owner.clone(),
            group: c.group.clone(),
        },
    };
    Ok(Some(Step {
        kind: "update",
        summary: changes.join(", "),
        diff,
        payload,
    }))
}

/// The current text of a file whose lines are edited (`None`: no file).
fn current_text<'s>(path: &str, state: Option<&'s State>) -> Result<Option<&'s str>> {
    Ok(match state {
        None => None,
        Some(s) if s.kind == FileKind::File => match &s.content {
            Some(text) => Some(text.as_str()),
            None if s.size == Some(0) => Some(""),
            None => {
                return Err(ProviderError::permanent(format!(
                    "{path} is not UTF-8 text under {} bytes: its lines cannot be edited",
                    crate::state::MAX_DIFF_BYTES
                )));
            }
        },
        Some(s) => {
            return Err(ProviderError::permanent(format!(
                "{path} is {}, not a regular file",
                kind_name(s.kind)
            )));
        }
    })
}

/// An edited text planned as a file with the new content (so the diff and the summary
/// are a file's), carried out by `payload`, which edits again at apply time.
#[allow(clippy::too_many_arguments)]
fn plan_text(
    path: &str,
    new: Option<String>,
    owner: &Option<String>,
    group: &Option<String>,
    mode: &Option<String>,
    validate: &Option<String>,
    state: Option<&State>,
    payload: Payload,
) -> Result<Option<Step>> {
    let Some(new) = new else { return Ok(None) };
    let as_file = FileConfig {
        path: path.to_owned(),
        content: Some(serde_json::Value::String(new)),
        owner: owner.clone(),
        group: group.clone(),
        mode: mode.clone(),
        state: FileState::File,
        validate: validate.clone(),
        backup: false,
    };
    Ok(plan_file(&as_file, state)?.map(|step| Step { payload, ..step }))
}

/// A line (`crate::line::edit`).
fn plan_line(c: &crate::line::LineConfig, state: Option<&State>) -> Result<Option<Step>> {
    let new = crate::line::edit(current_text(&c.path, state)?, c)?;
    let payload = Payload::EditLine { line: c.clone() };
    plan_text(
        &c.path,
        new,
        &c.owner,
        &c.group,
        &c.mode,
        &c.validate,
        state,
        payload,
    )
}

/// A managed block (`crate::block::edit`).
fn plan_block(c: &crate::block::BlockConfig, state: Option<&State>) -> Result<Option<Step>> {
    let new = crate::block::edit(current_text(&c.path, state)?, c)?;
    let payload = Payload::EditBlock { block: c.clone() };
    plan_text(
        &c.path,
        new,
        &c.owner,
        &c.group,
        &c.mode,
        &c.validate,
        state,
        payload,
    )
}

fn plan_directory(c: &DirectoryConfig, state: Option<&State>) -> Result<Option<Step>> {
    let mode = c.mode.as_deref().and_then(normalize_mode);
    match (c.state, state) {
        (DirectoryState::Absent, None) => Ok(None),
        (DirectoryState::Absent, Some(s)) if s.kind == FileKind::Dir && s.link_target.is_some() => {
            Err(ProviderError::permanent(format!(
                "{} is a symlink to a directory ({}); linux.file::directory does not remove it",
                c.path,
                s.link_target.as_deref().unwrap_or("?")
            )))
        }
        (DirectoryState::Absent, Some(s)) if s.kind == FileKind::Dir => Ok(Some(Step {
            kind: "delete",
            summary: if c.recurse {
                "- directory (with its contents)".to_owned()
            } else {
                "- directory".to_owned()
            },
            diff: None,
            payload: Payload::Remove {
                path: c.path.clone(),
                recursive: c.recurse,
                backup: false,
            },
        })),
        (_, Some(s)) if s.kind != FileKind::Dir => Err(ProviderError::permanent(format!(
            "{} is {}, not a directory",
            c.path,
            kind_name(s.kind)
        ))),
        (DirectoryState::Directory, None) => {
            let details = metadata_details(mode.as_deref(), c.owner.as_deref(), c.group.as_deref());
            Ok(Some(Step {
                kind: "create",
                summary: with_details("+ directory", &details),
                diff: None,
                payload: Payload::EnsureDir {
                    path: c.path.clone(),
                    mode,
                    owner: c.owner.clone(),
                    group: c.group.clone(),
                    chown_contents: false,
                },
            }))
        }
        (DirectoryState::Directory, Some(s)) => {
            let mut changes =
                metadata_changes(s, mode.as_deref(), c.owner.as_deref(), c.group.as_deref());
            let chown_contents = c.recurse && s.inner_mismatch.is_some();
            if let Some(first) = s.inner_mismatch.as_deref().filter(|_| c.recurse) {
                changes.push(format!("owner/group of contents ({first})"));
            }
            if changes.is_empty() {
                return Ok(None);
            }
            Ok(Some(Step {
                kind: "update",
                summary: changes.join(", "),
                diff: None,
                payload: Payload::EnsureDir {
                    path: c.path.clone(),
                    mode,
                    owner: c.owner.clone(),
                    group: c.group.clone(),
                    chown_contents,
                },
            }))
        }
        // Every (Absent, Some(_)) case is covered above.
        (DirectoryState::Absent, Some(_)) => Ok(None),
    }
}

fn plan_symlink(c: &SymlinkConfig, state: Option<&State>) -> Result<Option<Step>> {
    let ensure = || Payload::EnsureSymlink {
        path: c.path.clone(),
        target: c.target.clone(),
        owner: c.owner.clone(),
        group: c.group.clone(),
    };
    match (c.state, state) {
        (SymlinkState::Absent, None) => Ok(None),
        (_, Some(s)) if s.kind != FileKind::Symlink => Err(ProviderError::permanent(format!(
            "{} is {}, not a symlink; linux.file::symlink only replaces or removes a symlink",
            c.path,
            kind_name(s.kind)
        ))),
        (SymlinkState::Absent, Some(s)) => Ok(Some(Step {
            kind: "delete",
            summary: format!("- symlink → {}", s.link_target.as_deref().unwrap_or("?")),
            diff: None,
            payload: Payload::Remove {
                path: c.path.clone(),
                recursive: false,
                backup: false,
            },
        })),
        (SymlinkState::Link, None) => {
            let details = metadata_details(None, c.owner.as_deref(), c.group.as_deref());
            Ok(Some(Step {
                kind: "create",
                summary: with_details(&format!("+ symlink → {}", c.target), &details),
                diff: None,
                payload: ensure(),
            }))
        }
        (SymlinkState::Link, Some(s)) => {
            let mut changes = Vec::new();
            if s.link_target.as_deref() != Some(c.target.as_str()) {
                changes.push(format!(
                    "target {} → {}",
                    s.link_target.as_deref().unwrap_or("?"),
                    c.target
                ));
            }
            changes.extend(metadata_changes(
                s,
                None,
                c.owner.as_deref(),
                c.group.as_deref(),
            ));
            if changes.is_empty() {
                return Ok(None);
            }
            Ok(Some(Step {
                kind: "update",
                summary: changes.join(", "),
                diff: None,
                payload: ensure(),
            }))
        }
    }
}

/// `mode 0600 → 0644`, `owner root → www-data`, … for the managed fields that differ.
fn metadata_changes(
    s: &State,
    mode: Option<&str>,
    owner: Option<&str>,
    group: Option<&str>,
) -> Vec<String> {
    let mut changes = Vec::new();
    if let Some(mode) = mode.filter(|m| !same_mode(m, s.mode.as_deref())) {
        changes.push(format!(
            "mode {} → {mode}",
            s.mode.as_deref().unwrap_or("?")
        ));
    }
    if let Some(owner) = owner.filter(|o| !same_principal(o, s.owner.as_deref(), s.uid)) {
        changes.push(format!(
            "owner {} → {owner}",
            shown_principal(s.owner.as_deref(), s.uid)
        ));
    }
    if let Some(group) = group.filter(|g| !same_principal(g, s.group.as_deref(), s.gid)) {
        changes.push(format!(
            "group {} → {group}",
            shown_principal(s.group.as_deref(), s.gid)
        ));
    }
    changes
}

fn metadata_details(mode: Option<&str>, owner: Option<&str>, group: Option<&str>) -> Vec<String> {
    let mut details = Vec::new();
    if let Some(mode) = mode {
        details.push(format!("mode {mode}"));
    }
    if let Some(owner) = owner {
        details.push(format!("owner {owner}"));
    }
    if let Some(group) = group {
        details.push(format!("group {group}"));
    }
    details
}

fn with_details(head: &str, details: &[String]) -> String {
    if details.is_empty() {
        head.to_owned()
    } else {
        format!("{head} ({})", details.join(", "))
    }
}

fn shown_principal(name: Option<&str>, id: Option<u32>) -> String {
    match (name, id) {
        (Some(name), _) => name.to_owned(),
        (None, Some(id)) => id.to_string(),
        (None, None) => "?".to_owned(),
    }
}

fn plural(n: usize, unit: &str) -> String {
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

fn short_kind(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Other => "special file",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::config::{DIRECTORY, FILE, SYMLINK, sha256_hex};

    fn resource(type_name: &str, config: Value) -> Resource {
        Resource {
            id: "r".into(),
            type_name: type_name.into(),
            config: config.to_string(),
        }
    }

    fn diff(type_name: &str, config: Value, state: Value) -> Result<Vec<Operation>> {
        plan(
            &resource(type_name, config),
            &Actual {
                id: "r".into(),
                state: state.to_string(),
            },
        )
    }

    fn payload(op: &Operation) -> Payload {
        serde_json::from_str(&op.payload).unwrap()
    }

    /// A recorded state of a regular file holding `content`.
    fn file_state(content: &str, mode: &str, owner: &str) -> Value {
        json!({"kind": "file", "mode": mode, "owner": owner, "group": owner, "uid": 0, "gid": 0,
               "sha256": sha256_hex(content.as_bytes()), "size": content.len(), "link_target": null})
    }

    #[test]
    fn a_file_in_sync_plans_nothing() {
        let config = json!({"path": "/etc/motd", "content": "hello\n", "mode": "644", "owner": "root",
                            "state": "file", "backup": false});
        assert_eq!(
            diff(FILE, config, file_state("hello\n", "0644", "root")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn fields_left_out_are_not_managed() {
        let config = json!({"path": "/etc/motd", "state": "file", "backup": false});
        assert_eq!(
            diff(FILE, config, file_state("anything", "0600", "nobody")).unwrap(),
            vec![]
        );
    }

    #[test]
    fn a_mode_change_only() {
        let config = json!({"path": "/etc/motd", "content": "hello\n", "mode": "0644", "state": "file", "backup": false});
        let ops = diff(FILE, config, file_state("hello\n", "0600", "root")).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str(), &ops[0].diff),
            ("update", "mode 0600 → 0644", &None)
        );
        assert_eq!(
            payload(&ops[0]),
            Payload::FileMetadata {
                path: "/etc/motd".into(),
                mode: Some("0644".into()),
                owner: None,
                group: None
            }
        );
    }

    #[test]
    fn a_content_change_gives_a_unified_diff() {
        let mut state = file_state("a\nb\nc\n", "0644", "root");
        state["content"] = json!("a\nb\nc\n");
        let config = json!({"path": "/etc/app.conf", "content": "a\nB\nc\n", "owner": "www-data",
                            "state": "file", "backup": true});
        let ops = diff(FILE, config, state).unwrap();
        assert_eq!(ops[0].summary, "content, owner root → www-data");
        assert_eq!(
            ops[0].diff.as_deref(),
            Some("--- a/etc/app.conf\n+++ b/etc/app.conf\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n")
        );
        assert_eq!(
            payload(&ops[0]),
            Payload::WriteFile {
                path: "/etc/app.conf".into(),
                content: "a\nB\nc\n".into(),
                mode: None,
                owner: Some("www-data".into()),
                group: None,
                expect_sha256: Some(sha256_hex(b"a\nb\nc\n")),
                validate: None,
                backup: true,
            }
        );
    }

    #[test]
    fn content_that_was_not_read_only_says_that_it_differs() {
        let config =
            json!({"path": "/var/big", "content": "small\n", "state": "file", "backup": false});
        let mut state = file_state("x", "0644", "root");
        state["size"] = json!(5_000_000);
        let ops = diff(FILE, config, state).unwrap();
        assert_eq!(ops[0].summary, "content");
        assert_eq!(
            ops[0].diff.as_deref(),
            Some("content differs (5000000 bytes)")
        );
    }

    #[test]
    fn an_absent_file_is_created() {
        let config = json!({"path": "/etc/motd", "content": "hello\n", "mode": "644", "state": "file", "backup": false});
        let ops = diff(FILE, config, Value::Null).unwrap();
        assert_eq!(ops[0].kind, "create");
        assert_eq!(ops[0].summary, "+ file (6 bytes, mode 0644)");
        assert_eq!(
            ops[0].diff.as_deref(),
            Some("--- a/etc/motd\n+++ b/etc/motd\n@@ -0,0 +1,1 @@\n+hello\n")
        );
        let Payload::WriteFile {
            expect_sha256,
            mode,
            ..
        } = payload(&ops[0])
        else {
            panic!("not a write")
        };
        assert_eq!(
            (expect_sha256.as_deref(), mode.as_deref()),
            (Some(""), Some("0644"))
        );
        // Without content, a new file is created empty.
        let ops = diff(
            FILE,
            json!({"path": "/x", "state": "file", "backup": false}),
            Value::Null,
        )
        .unwrap();
        assert_eq!(
            (ops[0].summary.as_str(), &ops[0].diff),
            ("+ file (empty)", &None)
        );
    }

    #[test]
    fn state_absent_deletes_and_is_then_in_sync() {
        let config = json!({"path": "/etc/motd", "state": "absent", "backup": true});
        let ops = diff(FILE, config.clone(), file_state("x", "0644", "root")).unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            ("delete", "- file")
        );
        assert_eq!(
            payload(&ops[0]),
            Payload::Remove {
                path: "/etc/motd".into(),
                recursive: false,
                backup: true
            }
        );
        assert_eq!(diff(FILE, config, Value::Null).unwrap(), vec![]);
    }

    #[test]
    fn sensitive_content_is_never_shown() {
        let mut state = file_state("old secret\n", "0600", "root");
        state["content"] = json!("old secret\n");
        let marker = json!({"$content": {"source": "template", "path": "t/db.j2", "sha256": "x",
                                         "text": "new secret\n", "sensitive": true}});
        let config = json!({"path": "/etc/db.conf", "content": marker, "mode": "0640", "state": "file", "backup": false});
        let ops = diff(FILE, config.clone(), state).unwrap();
        assert_eq!(
            ops[0].summary,
            "(sensitive: content differs), mode 0600 → 0640"
        );
        assert_eq!(ops[0].diff, None);
        let ops = diff(FILE, config, Value::Null).unwrap();
        assert_eq!(
            (ops[0].summary.as_str(), &ops[0].diff),
            ("+ file (sensitive content, mode 0640)", &None)
        );
        // A state that `read` marked sensitive hides a plain string's diff too.
        let mut state = file_state("old\n", "0600", "root");
        state["sensitive"] = json!(true);
        let config =
            json!({"path": "/etc/db.conf", "content": "new\n", "state": "file", "backup": false});
        let ops = diff(FILE, config, state).unwrap();
        assert_eq!(
            (ops[0].summary.as_str(), &ops[0].diff),
            ("(sensitive: content differs)", &None)
        );
    }

    #[test]
    fn content_known_only_at_apply_time_is_refused() {
        let marker =
            json!({"$content": {"source": "asset", "path": "files/logo.png", "sha256": "x"}});
        let config =
            json!({"path": "/srv/logo.png", "content": marker, "state": "file", "backup": false});
        let e = diff(FILE, config, Value::Null).unwrap_err();
        assert_eq!(e.class, froyo_provider_sdk::ErrorClass::Permanent);
        assert!(
            e.message.contains("content is only known at apply time"),
            "{}",
            e.message
        );
    }

    #[test]
    fn a_file_resource_does_not_touch_a_directory() {
        let dir = json!({"kind": "dir", "mode": "0755", "owner": "root", "group": "root",
                         "sha256": null, "size": 4096, "link_target": null});
        let e = diff(
            FILE,
            json!({"path": "/etc", "state": "file", "backup": false}),
            dir.clone(),
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "r: /etc is a directory, not a regular file; linux.file does not replace it"
        );
        assert!(
            diff(
                FILE,
                json!({"path": "/etc", "state": "absent", "backup": false}),
                dir
            )
            .is_err()
        );
    }

    #[test]
    fn a_symlink_is_replaced_by_the_file() {
        let link = json!({"kind": "symlink", "mode": "0777", "owner": "root", "group": "root",
                          "sha256": null, "size": 4, "link_target": "/tmp/x"});
        let ops = diff(
            FILE,
            json!({"path": "/etc/x", "content": "y", "state": "file", "backup": false}),
            link,
        )
        .unwrap();
        assert_eq!(ops[0].kind, "update");
        assert_eq!(
            ops[0].summary,
            "replace symlink → /tmp/x with a file (1 byte)"
        );
    }

    fn dir_state(mode: &str, owner: &str) -> Value {
        json!({"kind": "dir", "mode": mode, "owner": owner, "group": owner, "uid": 33, "gid": 33,
               "sha256": null, "size": 4096, "link_target": null})
    }

    #[test]
    fn directories() {
        let config = json!({"path": "/srv/www", "mode": "750", "owner": "www-data", "state": "directory", "recurse": false});
        let ops = diff(DIRECTORY, config.clone(), Value::Null).unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            ("create", "+ directory (mode 0750, owner www-data)")
        );
        assert_eq!(
            diff(DIRECTORY, config.clone(), dir_state("0750", "www-data")).unwrap(),
            vec![]
        );
        let ops = diff(DIRECTORY, config, dir_state("0755", "root")).unwrap();
        assert_eq!(ops[0].summary, "mode 0755 → 0750, owner root → www-data");

        // With recurse, contents whose owner differs are chowned too.
        let config =
            json!({"path": "/srv/www", "owner": "www-data", "state": "directory", "recurse": true});
        let mut state = dir_state("0755", "www-data");
        state["inner_mismatch"] = json!("/srv/www/index.html");
        let ops = diff(DIRECTORY, config, state).unwrap();
        assert_eq!(
            ops[0].summary,
            "owner/group of contents (/srv/www/index.html)"
        );
        let Payload::EnsureDir { chown_contents, .. } = payload(&ops[0]) else {
            panic!("not ensure_dir")
        };
        assert!(chown_contents);

        let config = json!({"path": "/srv/www", "state": "absent", "recurse": true});
        let ops = diff(DIRECTORY, config, dir_state("0755", "root")).unwrap();
        assert_eq!(ops[0].summary, "- directory (with its contents)");
        assert_eq!(
            payload(&ops[0]),
            Payload::Remove {
                path: "/srv/www".into(),
                recursive: true,
                backup: false
            }
        );

        let e = diff(
            DIRECTORY,
            json!({"path": "/etc/motd", "state": "directory", "recurse": false}),
            file_state("x", "0644", "root"),
        );
        assert_eq!(
            e.unwrap_err().message,
            "r: /etc/motd is a regular file, not a directory"
        );
    }

    #[test]
    fn symlinks() {
        let config = json!({"path": "/etc/nginx/sites-enabled/app", "target": "../sites-available/app", "state": "link"});
        let ops = diff(SYMLINK, config.clone(), Value::Null).unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            ("create", "+ symlink → ../sites-available/app")
        );
        let link = |target: &str| {
            json!({"kind": "symlink", "mode": "0777", "owner": "root", "group": "root", "sha256": null,
                   "size": 21, "link_target": target})
        };
        assert_eq!(
            diff(SYMLINK, config.clone(), link("../sites-available/app")).unwrap(),
            vec![]
        );
        let ops = diff(SYMLINK, config.clone(), link("/old")).unwrap();
        assert_eq!(ops[0].summary, "target /old → ../sites-available/app");
        assert!(diff(SYMLINK, config, file_state("x", "0644", "root")).is_err());
        let ops = diff(
            SYMLINK,
            json!({"path": "/l", "target": "/t", "state": "absent"}),
            link("/t"),
        )
        .unwrap();
        assert_eq!(
            (ops[0].kind.as_str(), ops[0].summary.as_str()),
            ("delete", "- symlink → /t")
        );
    }

    #[test]
    fn removal_for_destroy_refuses_what_absent_refuses() {
        let file =
            Config::parse(&resource(FILE, json!({"path": "/etc/x", "content": "x"}))).unwrap();
        let state = State::parse(&file_state("x", "0644", "root").to_string()).unwrap();
        assert_eq!(
            removal(&file, state.as_ref()).unwrap(),
            Some(Payload::Remove {
                path: "/etc/x".into(),
                recursive: false,
                backup: false
            })
        );
        assert_eq!(removal(&file, None).unwrap(), None);
        let dir = State::parse(&dir_state("0755", "root").to_string()).unwrap();
        assert!(removal(&file, dir.as_ref()).is_err());
    }

    #[test]
    fn unknown_types_and_fields_are_permanent_errors() {
        let e = diff("linux.file::fifo", json!({"path": "/x"}), Value::Null).unwrap_err();
        assert!(
            e.message
                .starts_with("linux.file has no type `linux.file::fifo`"),
            "{}",
            e.message
        );
        let e = diff(FILE, json!({"path": "/x", "colour": "red"}), Value::Null).unwrap_err();
        assert!(
            e.message.contains("unknown field `colour`"),
            "{}",
            e.message
        );
    }
}
