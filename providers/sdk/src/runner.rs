//! Typed runner ops on the target. The host forwards each call to the runner as one
//! command (`runner/PROTOCOL.md`); arguments and results travel as JSON text, and the
//! types below mirror the protocol so a provider never writes that JSON by hand.
//!
//! Argument types leave out unset optional fields, because the runner rejects unknown
//! fields and treats a missing field as its documented default. Every op needs a
//! capability from the provider's manifest: `runner:exec` for [`exec`], `runner:file`
//! for the others; the host refuses an undeclared one.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{ProviderError, Result};

/// `exec`: run a program. Exactly one of `argv` and `shell`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExecArgs {
    /// Program and arguments, run directly (a bare name is looked up in `PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// A script for `/bin/sh -c` (no rc files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Added to the minimal environment (`PATH`, `LANG=C.UTF-8`), overriding it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Absolute working directory; default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Written to the program's stdin; default: stdin is `/dev/null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Default 600000 (10 minutes); past it the program is killed (`transient`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Bytes kept per stream; default 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u64>,
    /// Stream `stdout`/`stderr` events while the program runs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

impl ExecArgs {
    /// Runs `argv` directly.
    pub fn argv<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ExecArgs {
            argv: Some(argv.into_iter().map(Into::into).collect()),
            ..Default::default()
        }
    }

    /// Runs `script` with `/bin/sh -c`.
    pub fn shell(script: impl Into<String>) -> Self {
        ExecArgs {
            shell: Some(script.into()),
            ..Default::default()
        }
    }
}

/// Result of `exec`. A non-zero `rc` is a successful call, not an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Exit code, or `None` when a signal ended the program.
    pub rc: Option<i32>,
    pub signal: Option<i32>,
    /// Output decoded as UTF-8, invalid sequences replaced by U+FFFD.
    pub stdout: String,
    pub stderr: String,
    /// Either stream went past `max_output` and was cut.
    pub truncated: bool,
    pub duration_ms: u64,
}

impl ExecResult {
    /// The program exited with status 0.
    pub fn success(&self) -> bool {
        self.rc == Some(0)
    }
}

/// `file.stat`: describe many paths in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatArgs {
    pub paths: Vec<String>,
    /// Hash regular files (default true).
    pub sha256: bool,
    /// Larger files are not hashed; default 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hash_bytes: Option<u64>,
}

impl StatArgs {
    /// Stats `paths`, hashing regular files.
    pub fn new(paths: Vec<String>) -> Self {
        StatArgs {
            paths,
            sha256: true,
            max_hash_bytes: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct StatResult {
    stats: Vec<StatEntry>,
}

/// What one path is. Symlinks are described themselves, not followed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatEntry {
    pub path: String,
    pub exists: bool,
    pub kind: Option<FileKind>,
    pub size: Option<u64>,
    /// Four octal digits, such as `"0644"`.
    pub mode: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Names from the target's `/etc/passwd` and `/etc/group`; `None` when unknown.
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Seconds since the Unix epoch.
    pub mtime: Option<i64>,
    /// Lowercase hex; regular files only, when asked for and not too large.
    pub sha256: Option<String>,
    /// Symlinks only: the raw target.
    pub link_target: Option<String>,
    /// A problem with this path alone, such as permission denied.
    pub error: Option<String>,
}

/// The kind of a path in [`StatEntry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// `file.read`: one regular file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadArgs {
    pub path: String,
    /// Larger files are a permanent error; default 16 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

impl ReadArgs {
    pub fn new(path: impl Into<String>) -> Self {
        ReadArgs {
            path: path.into(),
            max_bytes: None,
        }
    }
}

/// Result of `file.read`: exactly one of `content` (valid UTF-8) and `content_b64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResult {
    pub content: Option<String>,
    pub content_b64: Option<String>,
    pub size: u64,
    pub sha256: String,
}

/// `file.write`: replace a file atomically, or fix only its metadata when the content is
/// already the same. Unset metadata keeps the current file's, else `0644` and the
/// runner's user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteArgs {
    pub path: String,
    /// Exactly one of `content` and `content_b64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_b64: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A name or a numeric id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `conflict` unless the current file has this sha256; `""`: no regular file yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_sha256: Option<String>,
}

/// Result of `file.write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteResult {
    pub changed: bool,
    pub sha256: String,
    /// `None` when there was no regular file before.
    pub previous_sha256: Option<String>,
}

/// `file.remove`. A missing path is `changed: false`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveArgs {
    pub path: String,
    /// Needed to remove a non-empty directory.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recursive: bool,
}

/// `dir.ensure`: create a directory or converge an existing one's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirEnsureArgs {
    pub path: String,
    /// Default: keep an existing directory's mode, `0755` for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Create missing parents (default true).
    pub parents: bool,
}

impl DirEnsureArgs {
    pub fn new(path: impl Into<String>) -> Self {
        DirEnsureArgs {
            path: path.into(),
            mode: None,
            owner: None,
            group: None,
            parents: true,
        }
    }
}

/// `symlink.ensure`: make `path` a symlink to `target` (stored verbatim).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymlinkEnsureArgs {
    pub path: String,
    pub target: String,
    /// Replace a regular file or an empty directory at `path`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// Result of `symlink.ensure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymlinkEnsureResult {
    pub changed: bool,
    /// The old target when `path` was a symlink.
    pub previous_target: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Changed {
    changed: bool,
}

/// Runs a program on the target (`exec`, capability `runner:exec`).
pub fn exec(args: &ExecArgs) -> Result<ExecResult> {
    call("exec", imports::exec, args)
}

/// Describes `paths` with sha256 of regular files (`file.stat`): one entry per path, in
/// order.
pub fn stat(paths: &[String]) -> Result<Vec<StatEntry>> {
    stat_with(&StatArgs::new(paths.to_vec()))
}

/// [`stat`] with every argument.
pub fn stat_with(args: &StatArgs) -> Result<Vec<StatEntry>> {
    let result: StatResult = call("file.stat", imports::file_stat, args)?;
    if result.stats.len() != args.paths.len() {
        return Err(ProviderError::permanent(format!(
            "file.stat: asked about {} paths, got {} entries",
            args.paths.len(),
            result.stats.len()
        )));
    }
    Ok(result.stats)
}

/// Reads one regular file (`file.read`, at most 16 MiB).
pub fn read(path: &str) -> Result<ReadResult> {
    read_with(&ReadArgs::new(path))
}

/// [`read`] with every argument.
pub fn read_with(args: &ReadArgs) -> Result<ReadResult> {
    call("file.read", imports::file_read, args)
}

/// Writes a file atomically (`file.write`).
pub fn write(args: &WriteArgs) -> Result<WriteResult> {
    call("file.write", imports::file_write, args)
}

/// Removes a path (`file.remove`); returns whether something was removed.
pub fn remove(args: &RemoveArgs) -> Result<bool> {
    call::<_, Changed>("file.remove", imports::file_remove, args).map(|c| c.changed)
}

/// Creates or converges a directory (`dir.ensure`); returns whether it changed.
pub fn dir_ensure(args: &DirEnsureArgs) -> Result<bool> {
    call::<_, Changed>("dir.ensure", imports::dir_ensure, args).map(|c| c.changed)
}

/// Creates or repoints a symlink (`symlink.ensure`).
pub fn symlink_ensure(args: &SymlinkEnsureArgs) -> Result<SymlinkEnsureResult> {
    call("symlink.ensure", imports::symlink_ensure, args)
}

/// `net.connect`: a TCP connection from the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectArgs {
    pub host: String,
    pub port: u16,
    /// Per address tried; default 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Result of `net.connect`: a refused connection is `connected: false`, not an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectResult {
    pub connected: bool,
    /// The address that answered (`ip:port`).
    pub address: Option<String>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// Tries a TCP connection from the target (`net.connect`, capability `runner:net`).
pub fn net_connect(args: &ConnectArgs) -> Result<ConnectResult> {
    call("net.connect", imports::net_connect, args)
}

/// One runner op: arguments to JSON, the import, the result from JSON. Errors keep the
/// runner's class and get the op's name in front.
fn call<A: Serialize, R: DeserializeOwned>(
    op: &str,
    import: imports::Import,
    args: &A,
) -> Result<R> {
    let args = serde_json::to_string(args)
        .map_err(|e| ProviderError::permanent(format!("{op}: cannot encode arguments: {e}")))?;
    let result = import(&args).map_err(|e| ProviderError::from(e).context(op))?;
    serde_json::from_str(&result).map_err(|e| {
        ProviderError::permanent(format!("{op}: malformed result from the runner: {e}"))
    })
}

/// The WIT imports, or stand-ins on a non-wasm target (unit tests), where the generated
/// imports would panic.
mod imports {
    use crate::bindings::froyo::provider::types::ProviderError as WitError;

    pub type Import = fn(&str) -> Result<String, WitError>;

    #[cfg(target_arch = "wasm32")]
    pub use crate::bindings::froyo::provider::runner::{
        dir_ensure, exec, file_read, file_remove, file_stat, file_write, net_connect,
        symlink_ensure,
    };

    /// Each stand-in fails like an import refused by the host would.
    #[cfg(not(target_arch = "wasm32"))]
    macro_rules! stand_ins {
        ($($name:ident),*) => {$(
            pub fn $name(_args: &str) -> Result<String, WitError> {
                Err(WitError {
                    class: crate::ErrorClass::Permanent,
                    message: "runner ops are only available to a provider running in the engine".into(),
                })
            }
        )*};
    }

    #[cfg(not(target_arch = "wasm32"))]
    stand_ins!(
        exec,
        file_stat,
        file_read,
        file_write,
        file_remove,
        dir_ensure,
        symlink_ensure,
        net_connect
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn unset_optional_arguments_are_left_out() {
        let args = serde_json::to_value(ExecArgs::argv(["true"])).unwrap();
        assert_eq!(args, json!({"argv": ["true"]}));
        let args = serde_json::to_value(WriteArgs {
            path: "/x".into(),
            content: Some("hi".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(args, json!({"path": "/x", "content": "hi"}));
        let args = serde_json::to_value(DirEnsureArgs::new("/d")).unwrap();
        assert_eq!(args, json!({"path": "/d", "parents": true}));
        let args = serde_json::to_value(RemoveArgs {
            path: "/x".into(),
            recursive: false,
        })
        .unwrap();
        assert_eq!(args, json!({"path": "/x"}));
    }

    #[test]
    fn parses_a_stat_result() {
        let result: StatResult = serde_json::from_value(json!({"stats": [
            {"path": "/etc/motd", "exists": true, "kind": "file", "size": 3, "mode": "0644",
             "uid": 0, "gid": 0, "owner": "root", "group": "root", "mtime": 1,
             "sha256": "ab", "link_target": null, "error": null},
            {"path": "/nope", "exists": false, "kind": null, "size": null, "mode": null,
             "uid": null, "gid": null, "owner": null, "group": null, "mtime": null,
             "sha256": null, "link_target": null, "error": null}
        ]}))
        .unwrap();
        assert_eq!(result.stats[0].kind, Some(FileKind::File));
        assert_eq!(result.stats[0].mode.as_deref(), Some("0644"));
        assert!(!result.stats[1].exists);
    }

    #[test]
    fn ops_fail_cleanly_outside_the_engine() {
        let e = stat(&["/x".to_owned()]).unwrap_err();
        assert_eq!(e.class, crate::ErrorClass::Permanent);
        assert!(e.message.starts_with("file.stat: "), "{}", e.message);
    }
}
