//! Argument and result types of every op, so the controller builds `args` and reads
//! `result` with the same definitions the runner uses.
//!
//! Arguments reject unknown fields: the controller ships the runner it talks to, so a
//! field the runner does not know is a bug worth a loud `permanent` error rather than a
//! silently ignored setting. Results always carry every field (absent values are
//! `null`), so their shape does not depend on the target.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `exec`: run a program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecArgs {
    /// Program and arguments, run directly. Exactly one of `argv` and `shell`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argv: Option<Vec<String>>,
    /// A script for `/bin/sh -c` (which reads no rc files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Added to the minimal environment (`PATH`, `LANG=C.UTF-8`), overriding it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Absolute working directory; default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// Written to the program's stdin, which is then closed; default: no stdin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdin: Option<String>,
    /// Default 600000 (10 minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Bytes kept per stream; default 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output: Option<u64>,
    /// Send `stdout`/`stderr` events while the program runs.
    #[serde(default)]
    pub stream: bool,
}

/// Result of `exec`. A non-zero `rc` is a successful command, not an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// Exit code, or null when a signal ended the program.
    pub rc: Option<i32>,
    /// The signal that ended the program, if any.
    pub signal: Option<i32>,
    /// Output decoded as UTF-8, invalid sequences replaced by U+FFFD.
    pub stdout: String,
    pub stderr: String,
    /// True when either stream went past `max_output` and was cut.
    pub truncated: bool,
    pub duration_ms: u64,
}

/// `file.stat`: describe many paths in one round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatArgs {
    pub paths: Vec<String>,
    /// Hash regular files; default true.
    #[serde(default = "yes")]
    pub sha256: bool,
    /// Files larger than this are not hashed (`sha256` is null); default 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_hash_bytes: Option<u64>,
}

/// Result of `file.stat`: one entry per requested path, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatResult {
    pub stats: Vec<StatEntry>,
}

/// What one path is. Symlinks are described themselves, not followed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatEntry {
    pub path: String,
    pub exists: bool,
    pub kind: Option<FileKind>,
    pub size: Option<u64>,
    /// Permission bits as four octal digits, such as `"0644"`.
    pub mode: Option<String>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Names from the target's `/etc/passwd` and `/etc/group`; null when unknown.
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Modification time, whole seconds since the Unix epoch.
    pub mtime: Option<i64>,
    /// Lowercase hex; regular files only, when asked and not too large.
    pub sha256: Option<String>,
    /// Symlinks only.
    pub link_target: Option<String>,
    /// A problem with this path alone, such as permission denied.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// `file.read`: fetch one file's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadArgs {
    pub path: String,
    /// Larger files are a permanent error; default 16 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
}

/// Result of `file.read`. Exactly one of `content` (the bytes are valid UTF-8) and
/// `content_b64` (standard alphabet, padded) is set; the other is null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReadResult {
    pub content: Option<String>,
    pub content_b64: Option<String>,
    pub size: u64,
    pub sha256: String,
}

/// `file.write`: replace a file atomically.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteArgs {
    pub path: String,
    /// Exactly one of `content` and `content_b64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_b64: Option<String>,
    /// Default: the current file's mode, else `0644`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// User or group name, or a numeric id. Default: the current file's, else the
    /// runner's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Conflict unless the current file has this sha256; `""` means "must not exist".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_sha256: Option<String>,
}

/// Result of `file.write`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteResult {
    pub changed: bool,
    pub sha256: String,
    /// Null when there was no regular file before.
    pub previous_sha256: Option<String>,
}

/// `file.remove`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveArgs {
    pub path: String,
    /// Needed to remove a non-empty directory.
    #[serde(default)]
    pub recursive: bool,
}

/// Result of ops that only say whether they changed something.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Changed {
    pub changed: bool,
}

/// `dir.ensure`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirEnsureArgs {
    pub path: String,
    /// Default: leave an existing directory's mode, `0755` for a new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Create missing parents (mode `0755`); default true.
    #[serde(default = "yes")]
    pub parents: bool,
}

/// `symlink.ensure`: make `path` a symlink to `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SymlinkEnsureArgs {
    pub path: String,
    /// Stored as given; may be relative.
    pub target: String,
    /// Replace a regular file or an empty directory at `path`.
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymlinkEnsureResult {
    pub changed: bool,
    /// The old target when `path` was a symlink.
    pub previous_target: Option<String>,
}

/// `net.connect`: open a TCP connection from the target and close it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectArgs {
    /// A host name or an IP address.
    pub host: String,
    pub port: u16,
    /// For each address tried; default 5000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// Result of `net.connect`. A refused or timed-out connection is a result, not an error:
/// the caller decides what failing means.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectResult {
    pub connected: bool,
    /// The address that answered (`ip:port`), when one did.
    pub address: Option<String>,
    /// Why no address answered.
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// `facts.collect`. An empty or missing list collects every fact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactsArgs {
    #[serde(default)]
    pub facts: Vec<String>,
}

/// Fact `os.basic`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OsBasic {
    /// `debian`, `rhel`, `alpine`, `arch`, `suse` or `unknown`.
    pub family: String,
    /// `ID` from os-release, such as `ubuntu`.
    pub distro: Option<String>,
    pub version: Option<String>,
    pub codename: Option<String>,
    pub arch: String,
    pub kernel: String,
    pub hostname: String,
    /// `systemd`, `openrc`, `sysvinit` or `unknown`.
    pub init: String,
}

/// Fact `hw.cpu`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HwCpu {
    /// Physical cores (distinct package and core ids); `threads` when unknown.
    pub count: u32,
    /// Logical processors.
    pub threads: u32,
    pub model: Option<String>,
}

/// One entry of fact `net.ifaces`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetIface {
    pub name: String,
    pub mac: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    pub addrs: Vec<IfaceAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IfaceAddr {
    pub ip: String,
    pub prefix: u8,
    /// `inet` or `inet6`.
    pub family: String,
}

/// One value of fact `pkg.manifest`, keyed by package name (`name:arch` for a second
/// architecture of the same package).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PkgEntry {
    pub version: String,
    pub arch: Option<String>,
}

/// `user.ensure`: create or adjust a local user with `useradd`/`usermod`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserEnsureArgs {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Primary group (name or gid); default: what `useradd` picks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Supplementary groups to add the user to; other memberships are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// `useradd --system`; only used when creating.
    #[serde(default)]
    pub system: bool,
    /// Only used when creating; default true.
    #[serde(default = "yes")]
    pub create_home: bool,
}

/// `authorized_keys.ensure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizedKeysArgs {
    pub user: String,
    pub keys: Vec<String>,
    /// The file holds exactly `keys`; when false, missing keys are appended and
    /// others kept. Default true.
    #[serde(default = "yes")]
    pub exclusive: bool,
}

/// `sudoers.ensure`: write `/etc/sudoers.d/<name>` after `visudo -cf` accepts it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SudoersEnsureArgs {
    /// Letters, digits, `_` and `-` only: sudo skips files with a `.` in the name.
    pub name: String,
    /// A final newline is added when missing.
    pub content: String,
}

/// `sudoers.remove` and `sshd.unharden`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    pub name: String,
}

/// `sshd.harden`: write `/etc/ssh/sshd_config.d/<name>.conf`, keep it only if
/// `sshd -t` accepts the result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshdHardenArgs {
    #[serde(default = "default_sshd_name")]
    pub name: String,
    /// Keyword → value, written one per line in keyword order.
    pub settings: BTreeMap<String, SettingValue>,
}

/// An sshd setting value; booleans are written `yes`/`no`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Bool(bool),
    Int(i64),
    Str(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshdHardenResult {
    pub changed: bool,
    /// The file's content before, null when it did not exist.
    pub previous: Option<String>,
    /// Whether `/etc/ssh/sshd_config` has an `Include` covering `sshd_config.d`;
    /// when false the file has no effect.
    pub included: bool,
}

fn yes() -> bool {
    true
}

fn default_sshd_name() -> String {
    String::from("50-froyo")
}
